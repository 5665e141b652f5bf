"""packaging/check_wheels.py: the pins it reads, the platform tags it asks pip for, and when it fails CI. pip's
finder is replaced by a recorded answer here (the real index is asked by .ci/run itself)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packaging"))

import check_wheels  # noqa: E402


def test_every_pin_of_both_files_is_read_with_its_normalised_name():
    pins = check_wheels.read_pins()
    lock_lines = [
        line
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    ]
    assert len([p for p in pins if p.source == "requirements.lock"]) == len(lock_lines)
    names = {p.name: p for p in pins}
    assert names["llama-cpp-python"].version and names["pyside6-essentials"].source == "requirements.lock"
    assert any(p.source == "requirements-knowledge.txt" for p in pins)


def test_a_glibc_target_lists_every_older_manylinux_tag_and_other_platforms_stay_as_given():
    tags = check_wheels.platform_tags("manylinux_2_34_x86_64")
    assert tags[0] == "manylinux_2_34_x86_64" and "manylinux_2_17_x86_64" in tags and "manylinux2014_x86_64" in tags
    assert check_wheels.platform_tags("win_amd64") == ["win_amd64"]


def _pip_answer(available: dict[str, str]):
    """A stand-in for ``subprocess.run`` answering ``pip index versions NAME`` from ``available``."""

    def run(command, **_):
        name = command[command.index("versions") + 1]
        if name in available:
            return subprocess.CompletedProcess(command, 0, f"{name} (x)\nAvailable versions: {available[name]}\n", "")
        return subprocess.CompletedProcess(command, 1, "", f"ERROR: No matching distribution found for {name}")

    return run


def test_a_linux_pin_without_a_wheel_fails_unless_it_has_a_plan_and_other_platforms_only_report(capsys):
    pins = [
        check_wheels.Pin("numpy", "2.4.6", "requirements.lock"),
        check_wheels.Pin("llama-cpp-python", "0.3.36", "x"),
    ]
    linux, windows = check_wheels.LINUX, "win_amd64"
    runner = _pip_answer({"numpy": "2.4.6, 2.4.5"})
    findings = check_wheels.check(pins, [linux, windows], runner=runner, workers=2)
    assert check_wheels.report(findings, [linux, windows]) == 0  # llama-cpp-python is planned: built from its sdist
    assert "plan: build the wheel from the sdist" in capsys.readouterr().out
    pins.append(check_wheels.Pin("mystery", "1.0", "requirements.lock"))
    findings = check_wheels.check(pins, [linux, windows], runner=_pip_answer({"mystery": "0.9"}), workers=2)
    assert check_wheels.report(findings, [linux, windows]) == 1
    out = capsys.readouterr().out
    assert "mystery==1.0 (requirements.lock); wheels exist for 0.9" in out and "no Linux wheel and no plan" in out
    findings = check_wheels.check(pins[2:], [windows], runner=_pip_answer({}), workers=1)
    assert check_wheels.report(findings, [windows]) == 0  # Windows and macOS only report
