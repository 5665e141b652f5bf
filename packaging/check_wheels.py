"""Does every pinned package have an installable wheel on each platform the installers target?

For each pin of ``requirements.lock`` and ``requirements-knowledge.txt`` and each target (Windows x64, Apple-silicon
macOS 11+, Linux x86_64; CPython 3.11), ask pip's own finder which versions have a wheel that platform can install
(``pip index versions NAME --platform P --python-version 3.11 --only-binary=:all:``: a pure-Python
``py3-none-any`` wheel counts for every platform). A pin with no such wheel is reported with the plan for it:
declared in :data:`PLANS` (build from the sdist on the runner, pin another version, or make it optional there), or
"no plan" when nobody has decided yet.

Exit status: 1 when a pin has no wheel on the Linux target and no plan (the Linux build would fail), else 0;
the other platforms only report (they are built on their own runners). Reads the package index pip is configured
with; nothing is downloaded or installed.

    .venv/bin/python packaging/check_wheels.py [--platforms win_amd64,macosx_11_0_arm64,manylinux2014_x86_64]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = (ROOT / "requirements.lock", ROOT / "requirements-knowledge.txt")
LINUX = "manylinux_2_34_x86_64"  # PySide6 6.12's wheels need glibc 2.34 (Debian 12, Ubuntu 22.04, RHEL 9)
PLATFORMS = {
    "win_amd64": "Windows x64",
    "macosx_14_0_arm64": "macOS 14+ (Apple silicon)",
    LINUX: "Linux x86_64 (glibc 2.34+)",
}
PYTHON = "3.11"

# The decided plan for each pin without a wheel: (platform or "*" for all) -> what the build does instead.
PLANS = {
    ("llama-cpp-python", "*"): (
        "build the wheel from the sdist with portable CPU flags (packaging/setup.sh on Linux; the installers "
        "workflow on Windows with MSVC and on macOS), its sha256 recorded in the offline wheelhouse"
    ),
    ("harmonypy", "win_amd64"): (
        "build from the sdist on the Windows runner with MSVC (2.x has a C++ extension); if that fails, harmonypy "
        "0.2.0 (pure Python, the same run_harmony and compute_lisi the app calls)"
    ),
    ("blitzgsea", "*"): "sdist only, pure Python: pip builds it on every platform with no compiler",
    ("pegasuspy", "win_amd64"): (
        "optional on Windows (knowledge extra, read as data only): setup skips it there, and the cell-type sheets "
        "lack pegasus' marker lists, unless the runner builds it from the sdist with MSVC"
    ),
}


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    source: str  # the requirements file that pins it


@dataclass(frozen=True)
class Finding:
    pin: Pin
    platform: str
    installable: bool
    versions: tuple[str, ...]  # the versions with a wheel for that platform (pip's answer)
    error: str = ""

    @property
    def plan(self) -> str:
        return PLANS.get((self.pin.name, self.platform)) or PLANS.get((self.pin.name, "*")) or ""


PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")


def read_pins(paths=REQUIREMENTS) -> list[Pin]:
    """Every ``name==version`` line of ``paths`` (comments and blank lines skipped), names normalised."""
    pins = []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            match = PIN.match(line)
            if match:
                name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
                pins.append(Pin(name, match.group(2), Path(path).name))
    return pins


def platform_tags(platform: str) -> list[str]:
    """The tags a platform installs: pip widens macOS and the legacy manylinux tags itself, not PEP 600's
    ``manylinux_2_N``, so a glibc 2.N target is listed down to 2.17 with the legacy aliases."""
    match = re.fullmatch(r"manylinux_2_(\d+)_(\w+)", platform)
    if not match:
        return [platform]
    glibc, arch = int(match.group(1)), match.group(2)
    return [f"manylinux_2_{minor}_{arch}" for minor in range(glibc, 16, -1)] + [
        f"manylinux{legacy}_{arch}" for legacy in ("2014", "2010", "1")
    ]


def wheel_versions(name: str, platform: str, *, runner=subprocess.run) -> tuple[tuple[str, ...], str]:
    """(versions with a wheel installable on ``platform`` for CPython 3.11, error text) from pip's finder."""
    command = [sys.executable, "-m", "pip", "index", "versions", name]
    for tag in platform_tags(platform):
        command += ["--platform", tag]
    command += ["--python-version", PYTHON, "--implementation", "cp", "--only-binary=:all:"]
    done = runner(command, capture_output=True, text=True, timeout=300)
    match = re.search(r"Available versions:\s*(.+)", done.stdout)
    if match:
        return tuple(v.strip() for v in match.group(1).split(",")), ""
    said = (done.stderr + done.stdout).strip()
    if not said or "No matching distribution" in said:
        return (), ""  # the index has no wheel of it for this platform
    return (), said.splitlines()[-1]


def check(pins: list[Pin], platforms, *, runner=subprocess.run, workers: int = 8) -> list[Finding]:
    """One finding per pin and platform (pip asked in parallel: each call is a second of index reading)."""
    jobs = [(pin, platform) for pin in pins for platform in platforms]

    def ask(job):
        pin, platform = job
        versions, error = wheel_versions(pin.name, platform, runner=runner)
        return Finding(pin, platform, pin.version in versions, versions, error)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(ask, jobs))


def report(findings: list[Finding], platforms) -> int:
    """Print the missing wheels per platform with their plans; the exit status (see the module docstring)."""
    failing = []
    for platform in platforms:
        rows = [f for f in findings if f.platform == platform]
        missing = [f for f in rows if not f.installable]
        print(
            f"{PLATFORMS.get(platform, platform)} ({platform}): {len(rows) - len(missing)} of {len(rows)} pins have a wheel"
        )
        for finding in missing:
            pin = finding.pin
            other = f"; wheels exist for {', '.join(finding.versions[:3])}" if finding.versions else "; no wheel at all"
            why = f" (pip: {finding.error})" if finding.error else ""
            print(f"  - {pin.name}=={pin.version} ({pin.source}){other}{why}")
            print(
                f"    plan: {finding.plan or 'NO PLAN: build from the sdist, pin another version, or make it optional'}"
            )
            if platform == LINUX and not finding.plan:
                failing.append(finding)
    if failing:
        names = ", ".join(f"{f.pin.name}=={f.pin.version}" for f in failing)
        print(f"error: no Linux wheel and no plan for {names}: add a plan to PLANS in {Path(__file__).name} or re-pin")
        return 1
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platforms", default=",".join(PLATFORMS), help="comma-separated pip platform tags")
    args = parser.parse_args(argv)
    platforms = [p for p in args.platforms.split(",") if p]
    pins = read_pins()
    print(f"{len(pins)} pins from {', '.join(p.name for p in REQUIREMENTS)}; CPython {PYTHON}")
    return report(check(pins, platforms), platforms)


if __name__ == "__main__":
    sys.exit(main())
