"""What produced a result: file hashes, prompt text, seeds and package versions."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path

import numpy as np

TRACKED_PACKAGES = (
    "scelmo-desktop",
    "numpy",
    "scipy",
    "pandas",
    "anndata",
    "scanpy",
    "scikit-learn",
    "igraph",
    "leidenalg",
    "umap-learn",
    "pynndescent",
    "torch",
    "sentence-transformers",
    "transformers",
    "llama-cpp-python",
)


def sha256_text(text: str) -> str:
    """Hex sha256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_json(obj) -> str:
    """Hex sha256 of ``obj`` as canonical JSON (sorted keys, no spaces), so equal dicts hash alike."""
    return sha256_text(json.dumps(obj, sort_keys=True, separators=(",", ":")))


def sha256_file(path: str | Path, *, chunk_size: int = 1 << 22) -> str:
    """Hex sha256 of a file's bytes, read in 4 MiB chunks (large files never sit in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def package_versions(names=TRACKED_PACKAGES) -> dict[str, str]:
    """Python's version and the installed version of each of ``names`` (``not installed`` when absent)."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def now_iso() -> str:
    """The current UTC time in ISO 8601, to the second."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def h5ad_safe(value):
    """Make a provenance value storable in ``uns`` (h5ad has no None and no lists of dicts)."""
    if value is None:
        return "none"
    if isinstance(value, dict):
        if any("/" in str(k) for k in value):  # h5 groups cannot have "/" in names (e.g. "CD4+/CD25 T Reg")
            return json.dumps(value, default=str)
        return {str(k): h5ad_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, (str, int, float, bool)) for v in value) and len({type(v) for v in value}) <= 1:
            return list(value)
        return json.dumps(value, default=str)
    if isinstance(value, np.generic):
        return value.item()
    return value
