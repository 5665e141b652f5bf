"""The Debian packages the desktop app needs from the system, derived from the binaries rather than listed by hand.

Starting from the Qt pieces an X11 window needs (the xcb platform plugin, its GL integrations, image formats,
the PySide6 modules the app imports) — or from every ELF file of a frozen bundle — each file's ``NEEDED``
libraries (``readelf -d``) are followed inside the bundle; a library the bundle does not carry is the system's,
and maps to the Debian package that provides it: ``dpkg -S`` when it is installed here, else its soname's
Debian package name (``libxcb-icccm.so.4`` → ``libxcb-icccm4``) confirmed by ``apt-cache show``. A library
that maps to no package stops the build (exit 1). An optional plugin that needs a Qt library the bundle
does not carry (the PDF image format without QtPdf) is left out, as Qt itself skips it at run time; the
platform plugin and the modules never are. libc6 and friends stay in the list, as ``dpkg-shlibdeps`` keeps them.

    python packaging/linux/system_deps.py --venv .venv            # the venv route: the README's apt-get line
    python packaging/linux/system_deps.py --bundle dist/scelmo-desktop --format depends   # the .deb's Depends
"""

from __future__ import annotations

import argparse
import functools
import re
import subprocess
import sys
from pathlib import Path

# what Qt loads for a widgets window on X11; other plugins (gtk3 theme, wayland) are optional at run time
VENV_PLUGINS = ("platforms/libqxcb.so", "xcbglintegrations", "imageformats", "iconengines")
VENV_MODULES = ("QtCore", "QtGui", "QtWidgets")
NEEDED = re.compile(r"\(NEEDED\)\s+Shared library: \[(.+?)\]")


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == b"\x7fELF"
    except OSError:
        return False


def needed(path: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=False).stdout
    return NEEDED.findall(out)


def venv_roots(venv: Path) -> tuple[list[Path], list[Path], set[Path]]:
    """The roots to follow, the folders that count as "carried" in a venv's PySide6, and the optional roots."""
    pyside = next(venv.glob("lib/python3*/site-packages/PySide6"), None)
    if pyside is None:
        raise SystemExit(f"no PySide6 under {venv}; run packaging/setup.sh first")
    plugins = pyside / "Qt" / "plugins"
    roots = []
    for entry in VENV_PLUGINS:
        target = plugins / entry
        roots.extend(sorted(target.glob("*.so")) if target.is_dir() else [target])
    roots.extend(sorted(p for m in VENV_MODULES for p in pyside.glob(f"{m}*.so")))
    carried = [pyside, pyside / "Qt" / "lib", pyside.parent / "shiboken6"]
    optional = {r for r in roots if "platforms" not in r.parts and r.parent != pyside}
    return [r for r in roots if r.is_file()], carried, optional


def bundle_roots(bundle: Path) -> tuple[list[Path], list[Path], set[Path]]:
    files = [p for p in sorted(bundle.rglob("*")) if p.is_file() and is_elf(p)]
    return (
        files,
        sorted({p.parent for p in files}),
        {p for p in files if "plugins" in p.parts and "platforms" not in p.parts},
    )


class Closure:
    """The system libraries each root needs, following NEEDED through the libraries the bundle carries."""

    def __init__(self, carried: list[Path]):
        self.index = {}
        for folder in carried:
            for path in folder.glob("*.so*"):
                self.index.setdefault(path.name, path)
        self._needed: dict[Path, list[str]] = {}

    def _direct(self, path: Path) -> list[str]:
        if path not in self._needed:
            self._needed[path] = needed(path)
        return self._needed[path]

    def external(self, root: Path) -> set[str]:
        seen, found, queue = set(), set(), [root]
        while queue:
            path = queue.pop()
            if path in seen:
                continue
            seen.add(path)
            for name in self._direct(path):
                if name in self.index:
                    queue.append(self.index[name])
                else:
                    found.add(name)
        return found


@functools.lru_cache(maxsize=1)
def _ldconfig() -> str:
    return subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=False).stdout


def _installed_path(soname: str) -> str | None:
    for line in _ldconfig().splitlines():
        if line.strip().startswith(soname + " ") and "x86-64" in line:
            return line.rsplit("=> ", 1)[-1].strip()
    return None


def _dpkg_owner(path: str) -> str | None:
    for candidate in {
        path,
        str(Path(path).resolve()),
        path.replace("/lib/", "/usr/lib/", 1),
        path.replace("/usr/lib/", "/lib/", 1),
    }:
        result = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True, check=False)
        if result.returncode == 0 and result.stdout:
            return result.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


def soname_packages(soname: str) -> list[str]:
    """Debian's names for the package of ``soname``: libfoo.so.1 → libfoo1; libfoo2.so.0 → libfoo2-0."""
    match = re.match(r"^(lib.+?)\.so\.(\d+)", soname)
    if not match:
        return []
    stem, major = match.group(1).lower().replace("_", "-"), match.group(2)
    first = f"{stem}-{major}" if stem[-1].isdigit() else f"{stem}{major}"
    return [first, f"{stem}-{major}", f"{stem}{major}"]


def _apt_knows(package: str) -> bool:
    result = subprocess.run(["apt-cache", "show", package], capture_output=True, text=True, check=False)
    return result.returncode == 0 and "Package:" in result.stdout


def package_of(soname: str) -> str | None:
    """The Debian package providing ``soname``: its owner when installed here, else its Debian name if apt knows it."""
    path = _installed_path(soname)
    owner = _dpkg_owner(path) if path else None
    return owner or next((p for p in soname_packages(soname) if _apt_knows(p)), None)


def derive(roots: list[Path], carried: list[Path], optional: set[Path]) -> tuple[list[str], list[str], list[str]]:
    """(packages, unmapped needs of required files, optional plugins left out with the reason)."""
    closure, packages, unmapped, left_out = Closure(carried), set(), [], []
    for root in roots:
        needs = closure.external(root)
        mapped = {name: package_of(name) for name in sorted(needs)}
        missing = sorted(name for name, package in mapped.items() if package is None)
        qt_missing = sorted(name for name in needs if name.startswith("libQt6"))
        if root in optional and (missing or qt_missing):  # Qt skips a plugin whose libraries are absent
            left_out.append(f"{root.name} (needs {', '.join(qt_missing or missing)})")
            continue
        unmapped.extend(f"{name} (needed by {root.name})" for name in missing + qt_missing)
        packages.update(p for p in mapped.values() if p)
    return sorted(packages), unmapped, left_out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--venv", type=Path, help="a virtual environment with PySide6 (the venv route)")
    where.add_argument("--bundle", type=Path, help="a PyInstaller one-folder bundle (the .deb)")
    parser.add_argument("--format", choices=("apt", "depends", "lines"), default="lines")
    args = parser.parse_args(argv)
    for tool in ("readelf", "dpkg", "apt-cache", "ldconfig"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode != 0:
            print(f"system_deps: '{tool}' is needed (Debian/Ubuntu with binutils)", file=sys.stderr)
            return 2
    roots, carried, optional = venv_roots(args.venv) if args.venv else bundle_roots(args.bundle)
    packages, unmapped, left_out = derive(roots, carried, optional)
    for plugin in left_out:
        print(f"system_deps: optional plugin left out: {plugin}", file=sys.stderr)
    if unmapped:
        print("system_deps: no Debian package provides " + "; ".join(unmapped), file=sys.stderr)
        return 1
    if args.format == "depends":
        print(", ".join(packages))
    elif args.format == "apt":
        print("sudo apt-get install " + " ".join(packages))
    else:
        print("\n".join(packages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
