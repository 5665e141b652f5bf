"""Where shipped knowledge files are: a data file inside an installed package, found without importing the
package (its own dependencies need not be installed), with the provenance every result records."""

from __future__ import annotations

import importlib.util
from functools import cache
from importlib import metadata
from pathlib import Path

from scelmo_desktop.core._infra.provenance import sha256_file


def package_file(package: str, relative: str) -> Path | None:
    """``relative`` inside the installed top-level ``package`` (an import name), or None when either is absent."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    return path if path.is_file() else None


@cache
def _sha256(path: str, size: int, mtime: float) -> str:
    return sha256_file(Path(path))


def source_record(distribution: str, path: Path, *, licence: str, version: str | None = None) -> dict:
    """Package, version, file, sha256 and licence of one knowledge file (for provenance); ``version`` for a
    file that no Python distribution installed (a Debian package's)."""
    if version is None:
        try:
            version = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            version = "unknown"
    stat = path.stat()
    return {
        "package": distribution,
        "version": version,
        "file": path.name,
        "sha256": _sha256(str(path), stat.st_size, stat.st_mtime),
        "licence": licence,
    }
