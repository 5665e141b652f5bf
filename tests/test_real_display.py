"""The venv route opens a real window on a real X display (Xvfb), as a user's double-click would: the xcb
platform plugin loads with the system libraries the README names, the demo opens, and a screen grab taken
from the display server shows the window with its panel list. Skipped, with the reason, where no X server can
be started (not Linux, or Xvfb not installed: ``apt-get install xvfb xauth``)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = Path(sys.executable).with_name("scelmo-desktop")
PANELS = [
    "Data",
    "QC",
    "Clustering",
    "Markers",
    "Compare",
    "Integration",
    "Annotation",
    "Fine-tuning",
    "Treatment & perturbation",
    "Models",
    "Descriptions",
    "Embeddings",
    "Settings",
]


@pytest.fixture
def display():
    """A fresh Xvfb server (its own display number, chosen by the server), stopped afterwards."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the real-display check runs on Linux (Xvfb); the CI matrix runs it on the other systems")
    if shutil.which("Xvfb") is None:
        pytest.skip("no X server can be started here: install xvfb and xauth (apt-get install xvfb xauth)")
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    if not number:
        server.kill()
        pytest.skip("Xvfb did not start")
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


def test_the_app_opens_a_real_window_with_the_demo(display, tmp_path):
    from PIL import Image

    from scelmo_desktop.gui.window_check import verify

    shot = tmp_path / "window.png"
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}  # the real platform, not offscreen
    env.update(DISPLAY=display, SCELMO_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1")
    run = subprocess.run(
        [str(APP), "--demo", "--window-check", str(shot)], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    info = json.loads(Path(str(shot) + ".json").read_text())
    assert info["platform"] == "xcb" and info["panels"] == PANELS
    assert "first_window_seconds" in info  # recorded for benchmarks; a time is never asserted
    assert verify(shot) == []  # screen-sized, a painted window on the bare root, text in the panel list
    blank = tmp_path / "blank.png"  # the check fails on what a missing window would give
    Image.new("L", (1600, 1000)).save(blank)
    Path(str(blank) + ".json").write_text(json.dumps(info))
    assert any("blank" in p or "told from" in p for p in verify(blank))


def test_readme_names_the_system_packages_the_binaries_need():
    """The README's apt-get line for the venv route (and docs/packaging.md's) is the list derived from the Qt binaries."""
    for tool in ("readelf", "dpkg", "apt-cache", "ldconfig"):
        if shutil.which(tool) is None:
            pytest.skip(f"deriving Debian packages needs {tool} (Debian/Ubuntu with binutils)")
    derived = subprocess.run(
        [
            sys.executable,
            str(ROOT / "packaging" / "linux" / "system_deps.py"),
            "--venv",
            sys.prefix,
            "--format",
            "lines",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert derived.returncode == 0, derived.stderr
    packages = derived.stdout.split()
    assert {"libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1"} <= set(packages)  # the ones a hand list missed
    for page in ("README.md", "docs/packaging.md"):  # the README's line, and the installers page's copy of it
        line = re.search(r"^sudo apt-get install (lib[^\n`]+)$", (ROOT / page).read_text(), re.MULTILINE)
        assert line is not None, f"{page} has no 'sudo apt-get install …' line for the venv route"
        assert line.group(1).split() == packages, page
