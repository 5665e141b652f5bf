"""An append-only audit trail (JSON lines in the user data folder): who ran what, when, on which input files
(path and sha256), with which models (sha256), which parameters, which outputs, and how it ended. It is what a
hospital's data governance asks for; ``scelmo audit`` prints it.

Entries are appended with one ``write`` of a single line to a file opened in append mode (O_APPEND), then
flushed and fsynced, so concurrent writers interleave whole lines and a crash loses at most the line being
written; existing lines are never rewritten.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from pathlib import Path

from scelmo_desktop.core._infra.paths import user_data_dir
from scelmo_desktop.core._infra.provenance import now_iso, sha256_file


def audit_path() -> Path:
    """The audit trail file: ``audit.jsonl`` in the user data folder."""
    return user_data_dir() / "audit.jsonl"


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (containers): record the uid instead
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def file_entry(path) -> dict:
    """An input's audit entry: resolved path, with sha256 and size for a file, else marked as a folder or missing."""
    path = Path(path)
    entry = {"path": str(path.resolve())}
    if path.is_file():
        entry["sha256"] = sha256_file(path)
        entry["bytes"] = path.stat().st_size
    elif path.is_dir():
        entry["kind"] = "folder"
    else:
        entry["missing"] = True
    return entry


def record(
    operation: str, *, status: str, inputs=(), models=(), parameters: dict | None = None, outputs=(), message: str = ""
) -> dict:
    """Append one entry (time, user, host, pid, operation, status, inputs with hashes, models, parameters,
    outputs, message) to the audit trail as a single line, fsynced; returns the entry."""
    entry = {
        "time": now_iso(),
        "user": _user(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "operation": operation,
        "status": status,
        "inputs": [file_entry(p) for p in inputs],
        "models": list(models),
        "parameters": parameters or {},
        "outputs": [str(Path(p).resolve()) for p in outputs],
        "message": message,
    }
    path = audit_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(entry, default=str, sort_keys=True) + "\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
    return entry


def read_entries(limit: int | None = None) -> list[dict]:
    """The audit entries, oldest first (only the last ``limit`` when given); lines cut by a crash are skipped."""
    path = audit_path()
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a crash mid-write: skipped, never rewritten
    return entries[-limit:] if limit else entries
