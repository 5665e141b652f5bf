"""Crash-safe file writes: write to a temporary file in the same folder, fsync, then rename into place.

A crash (or a full disk) therefore leaves either the old file or the new one, never half of the new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from scelmo_desktop.core._infra.errors import ScelmoError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` atomically."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise ScelmoError(
            f"Cannot write to folder {target.parent}: {exc.strerror}. Choose a writable output folder."
        ) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise ScelmoError(
            f"Could not write {target}: {exc.strerror or exc}. Check free disk space and permissions."
        ) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def check_writable_folder(folder: str | os.PathLike) -> Path:
    """``folder`` made (with its parents) and checked writable by creating and removing a file in it, so that a
    long job refuses a bad output folder before it starts rather than when it writes its results."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ScelmoError(
            f"The output folder {folder} is an existing file, not a folder. Choose another output folder."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".scelmo-write-check.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ScelmoError(
            f"Cannot write to folder {folder}: {exc.strerror or exc}. Choose a writable output folder."
        ) from exc
    return folder


def write_atomic(target: str | os.PathLike, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` and move the result onto ``target`` atomically."""
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


def write_text_atomic(target: str | os.PathLike, text: str) -> Path:
    """Write ``text`` as UTF-8 to ``target`` atomically; returns the path."""
    return write_atomic(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically; returns the path."""
    return write_atomic(target, lambda tmp: tmp.write_bytes(data))
