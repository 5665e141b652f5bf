"""The persistent SQLite store for descriptions and text embeddings.

Why SQLite in WAL mode: every answer is committed the moment it is produced, so an interrupted or killed run
keeps everything it finished and a re-run asks the LLM only for what is missing. Two processes may share one
store; a busy database is waited on (``busy_timeout``) instead of failing.

Descriptions are keyed by (kind, entity, model sha256, prompt-template sha256, decoding-params sha256), so a
different model, prompt or decoding setting never silently reuses an answer produced under another one.
Embeddings are keyed by (sha256 of the text, embedder id).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.provenance import now_iso

SCHEMA = """
CREATE TABLE IF NOT EXISTS descriptions (
    kind TEXT NOT NULL,
    entity TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    template_sha256 TEXT NOT NULL,
    params_sha256 TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt TEXT NOT NULL,
    model_name TEXT,
    params_json TEXT,
    n_tokens INTEGER,
    seconds REAL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (kind, entity, model_sha256, template_sha256, params_sha256)
);
CREATE TABLE IF NOT EXISTS edits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    entity TEXT NOT NULL,
    text TEXT NOT NULL,
    author TEXT,
    note TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS embeddings (
    text_sha256 TEXT NOT NULL,
    embedder_id TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (text_sha256, embedder_id)
);
"""


@dataclass(frozen=True)
class DescriptionKey:
    """Everything that determines an LLM answer besides the entity itself."""

    kind: str
    model_sha256: str
    template_sha256: str
    params_sha256: str


@dataclass(frozen=True)
class StoredDescription:
    """One stored LLM answer: entity, text, prompt, token count, seconds and when it was made."""

    entity: str
    text: str
    prompt: str
    n_tokens: int | None
    seconds: float | None
    created_at: str


def _busy_safe(method):
    """A write that waited out the busy timeout (another process holding the write lock) becomes one clear
    message instead of sqlite's 'database is locked' traceback; nothing was written."""
    import functools

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            raise ScelmoError(
                f"The description store {self.path} is busy: another scELMo process has been writing to it for "
                f"more than {self.timeout_s:.0f} s. Wait for it to finish, or give this run its own description store."
            ) from exc

    return wrapper


class Store:
    """Descriptions and embeddings on disk. Safe to share between threads and processes."""

    def __init__(self, path: str | Path, *, timeout_s: float = 30.0):
        self.path = Path(path)
        self.timeout_s = timeout_s
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=timeout_s, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ScelmoError(
                f"The description store {self.path} cannot be opened ({exc}). If it is corrupt, move it aside; "
                "a new store will be created and descriptions regenerated."
            ) from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # descriptions ---------------------------------------------------------------------------------------------
    def get_descriptions(self, key: DescriptionKey, entities: list[str]) -> dict[str, StoredDescription]:
        found: dict[str, StoredDescription] = {}
        with self._lock:
            for start in range(0, len(entities), 500):  # SQLite limits the number of bound parameters
                chunk = entities[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT entity, text, prompt, n_tokens, seconds, created_at FROM descriptions "
                    f"WHERE kind=? AND model_sha256=? AND template_sha256=? AND params_sha256=? AND entity IN ({marks})",
                    (key.kind, key.model_sha256, key.template_sha256, key.params_sha256, *chunk),
                ).fetchall()
                for row in rows:
                    found[row[0]] = StoredDescription(*row)
        return found

    @_busy_safe
    def put_description(
        self,
        key: DescriptionKey,
        entity: str,
        text: str,
        *,
        prompt: str,
        model_name: str,
        params: dict,
        n_tokens: int | None = None,
        seconds: float | None = None,
    ) -> None:
        """Insert one answer and commit at once (the unit of resumability)."""
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO descriptions VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    key.kind,
                    entity,
                    key.model_sha256,
                    key.template_sha256,
                    key.params_sha256,
                    text,
                    prompt,
                    model_name,
                    json.dumps(params, sort_keys=True),
                    n_tokens,
                    seconds,
                    now_iso(),
                ),
            )

    def count_descriptions(self, key: DescriptionKey | None = None) -> int:
        with self._lock:
            if key is None:
                return self._conn.execute("SELECT COUNT(*) FROM descriptions").fetchone()[0]
            return self._conn.execute(
                "SELECT COUNT(*) FROM descriptions WHERE kind=? AND model_sha256=? AND template_sha256=? AND params_sha256=?",
                (key.kind, key.model_sha256, key.template_sha256, key.params_sha256),
            ).fetchone()[0]

    def export_rows(self) -> tuple[list[dict], list[tuple[str, str, bytes]]]:
        """Every description (as dicts) and every embedding (text hash, embedder id, float32 bytes)."""
        with self._lock:
            cursor = self._conn.execute("SELECT * FROM descriptions ORDER BY kind, entity")
            names = [c[0] for c in cursor.description]
            descriptions = [dict(zip(names, row)) for row in cursor.fetchall()]
            embeddings = self._conn.execute(
                "SELECT text_sha256, embedder_id, vector FROM embeddings ORDER BY embedder_id, text_sha256"
            ).fetchall()
        return descriptions, embeddings

    @_busy_safe
    def import_descriptions(self, rows: list[dict]) -> int:
        """Insert rows that are not stored yet (a local answer always wins); returns how many were new."""
        columns = (
            "kind",
            "entity",
            "model_sha256",
            "template_sha256",
            "params_sha256",
            "text",
            "prompt",
            "model_name",
            "params_json",
            "n_tokens",
            "seconds",
            "created_at",
        )
        with self._lock:
            before = self._conn.total_changes
            self._conn.execute("BEGIN")
            self._conn.executemany(
                f"INSERT OR IGNORE INTO descriptions VALUES ({','.join('?' * len(columns))})",
                [tuple(row.get(c) for c in columns) for row in rows],
            )
            self._conn.execute("COMMIT")
            return self._conn.total_changes - before

    # hand edits: every edit is kept as its own version; the latest one is used ----------------------------------
    @_busy_safe
    def put_edit(self, kind: str, entity: str, text: str, *, author: str = "", note: str = "") -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO edits (kind, entity, text, author, note, created_at) VALUES (?,?,?,?,?,?)",
                (kind, entity, text, author, note, now_iso()),
            )

    def latest_edits(self, kind: str, entities: list[str]) -> dict[str, dict]:
        wanted = set(entities)
        with self._lock:
            rows = self._conn.execute(
                "SELECT entity, text, author, note, created_at, id FROM edits WHERE kind=? ORDER BY id", (kind,)
            ).fetchall()
        latest = {}
        for entity, text, author, note, created_at, version in rows:
            if entity in wanted:
                latest[entity] = {
                    "text": text,
                    "author": author,
                    "note": note,
                    "created_at": created_at,
                    "version": version,
                }
        return latest

    # embeddings -----------------------------------------------------------------------------------------------
    def get_embeddings(self, embedder_id: str, text_hashes: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(text_hashes), 500):
                chunk = text_hashes[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT text_sha256, dim, vector FROM embeddings WHERE embedder_id=? AND text_sha256 IN ({marks})",
                    (embedder_id, *chunk),
                ).fetchall()
                for text_hash, dim, blob in rows:
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.shape[0] == dim:  # a torn row is treated as missing and recomputed
                        found[text_hash] = vector
        return found

    @_busy_safe
    def put_embeddings(self, embedder_id: str, vectors: dict[str, np.ndarray]) -> None:
        rows = [
            (h, embedder_id, int(v.shape[0]), np.asarray(v, dtype=np.float32).tobytes(), now_iso())
            for h, v in vectors.items()
        ]
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?,?,?,?,?)", rows)
            self._conn.execute("COMMIT")
