"""The Windows installer script (packaging/windows/scelmo-desktop.iss) compiled by Inno Setup's ISCC under wine,
installed silently, its self-test step run and uninstalled, by packaging/windows/test_installer_wine.sh with a
stand-in payload. Skipped, saying why, where wine (with 32-bit support: ISCC is 32-bit), mingw-w64, npm or Xvfb is
missing (CI's clean machine has no wine), so it runs where a developer installed them."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "packaging" / "windows" / "test_installer_wine.sh"

pytestmark = pytest.mark.slow  # a wine prefix and an installer run: the full tier only


def _missing() -> str:
    tools = {"wine": "wine", "x86_64-w64-mingw32-gcc": "mingw-w64", "npm": "npm", "xvfb-run": "xvfb"}
    absent = [package for tool, package in tools.items() if shutil.which(tool) is None]
    if not absent and not any(Path("/usr/lib").glob("*/wine/i386-windows")):
        absent.append("wine32 (ISCC.exe is a 32-bit program)")
    return ", ".join(absent)


@pytest.mark.skipif(
    bool(_missing()), reason=f"needs {_missing()} (apt-get install wine wine64 wine32:i386 mingw-w64 xvfb)"
)
def test_the_installer_compiles_installs_self_tests_and_uninstalls_under_wine(tmp_path):
    done = subprocess.run(["bash", str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "the installer's self-test step ran the installed program" in done.stdout
    assert "uninstalled: PASS" in done.stdout
