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
    """``folder``, refused unless it is a folder (or can be made one) that this user may write to, so that a long
    job refuses a bad output folder before it starts rather than when it writes its results. Nothing is created:
    a job refused later for its input leaves no folder behind."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ScelmoError(
            f"The output folder {folder} is an existing file, not a folder. Choose another output folder."
        )
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ScelmoError(
            f"Cannot make the output folder {folder}: {existing} is a file. Choose another output folder."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ScelmoError(f"Cannot write to folder {existing}: permission denied. Choose a writable output folder.")
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
