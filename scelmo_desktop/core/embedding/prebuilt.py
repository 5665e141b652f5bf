"""Prebuilt text vectors: the fact sheet of every gene the catalog knows, embedded once by the default embedder
and shipped with the app, so a first run on a new file embeds only the texts nobody embedded before.

A pack is content-addressed, like the description store's vector cache: each vector is keyed by the sha256 of
the exact text embedded, and a pack is used only for the embedder id it was built with. A pack therefore can
never be stale: when the knowledge packages, the sheet layout or the embedder change, the new texts (or the new
id) simply miss, and those texts are embedded as before. The manifest records the inputs (knowledge sources and
versions, sheet layout, embedder id and weights hash) for provenance.

Storage (``.npz``, no pickle): ``digests`` (the first 16 bytes of each text's sha256, sorted), ``vectors`` as
int8 with one float32 ``scales`` entry per row (value = int8 x scale), and ``manifest`` (JSON). Built by
``packaging/build_gene_vectors.py``; int8 against float32 is measured there (cosine) and in
``benchmarks/first_result.py`` (the real-data metrics).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from scelmo_desktop.core._infra.atomic import write_atomic
from scelmo_desktop.core._infra.paths import resources_dir

PACK_FORMAT = 1
DIGEST_BYTES = 16  # 128 bits of sha256: a collision among 10^5 texts has odds around 10^-29
PACK_FOLDER = "gene_vectors"


def digest(text_hash: str) -> bytes:
    """The pack's key for a text whose hex sha256 is ``text_hash``."""
    return bytes.fromhex(text_hash[: DIGEST_BYTES * 2])


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: ``(int8 values, float32 scale per row)``."""
    vectors = np.asarray(vectors, dtype=np.float32)
    scales = np.abs(vectors).max(axis=1) / 127.0
    scales[scales == 0] = 1.0
    return np.round(vectors / scales[:, None]).astype(np.int8), scales.astype(np.float32)


def dequantized(values: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """float32 vectors back from :func:`quantize`'s output."""
    return values.astype(np.float32) * scales[:, None]


@dataclass
class PrebuiltVectors:
    """One pack: vectors keyed by text digest, for one embedder."""

    embedder_id: str
    digests: np.ndarray  # (n,) |S16, sorted
    values: np.ndarray  # (n, d) int8
    scales: np.ndarray  # (n,) float32
    manifest: dict = field(default_factory=dict)
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.digests)

    def lookup(self, text_hashes: list[str]) -> dict[str, np.ndarray]:
        """The vectors this pack holds for the given hex sha256 hashes (others are left out)."""
        if not len(self.digests) or not text_hashes:
            return {}
        wanted = np.array([digest(h) for h in text_hashes], dtype=f"S{DIGEST_BYTES}")
        where = np.searchsorted(self.digests, wanted).clip(0, len(self.digests) - 1)
        found = self.digests[where] == wanted
        rows = where[found]
        vectors = dequantized(self.values[rows], self.scales[rows])
        return dict(zip((h for h, hit in zip(text_hashes, found) if hit), vectors))

    def describe(self) -> dict:
        """What the run record says about the pack (not the vectors)."""
        keep = ("embedder_id", "genes", "knowledge", "sheet_format", "storage", "min_cosine_to_float32", "built")
        return {"path": str(self.path) if self.path else None, **{k: self.manifest.get(k) for k in keep}}


def save_pack(path: Path, *, embedder_id: str, text_hashes: list[str], vectors: np.ndarray, manifest: dict) -> None:
    """Write a pack atomically (sorted by digest; duplicate texts kept once)."""
    keys = np.array([digest(h) for h in text_hashes], dtype=f"S{DIGEST_BYTES}")
    keys, first = np.unique(keys, return_index=True)
    values, scales = quantize(np.asarray(vectors, dtype=np.float32)[first])
    manifest = {**manifest, "format": PACK_FORMAT, "embedder_id": embedder_id, "texts": int(len(keys))}

    def writer(tmp):
        with open(tmp, "wb") as handle:
            np.savez(handle, digests=keys, values=values, scales=scales, manifest=np.array(json.dumps(manifest)))

    write_atomic(Path(path), writer)


def load_pack(path: Path) -> PrebuiltVectors:
    """Read a pack (no pickle); a malformed file raises ``ValueError``."""
    with np.load(path, allow_pickle=False) as data:
        manifest = json.loads(str(data["manifest"]))
        pack = PrebuiltVectors(
            embedder_id=manifest["embedder_id"],
            digests=data["digests"],
            values=data["values"],
            scales=data["scales"],
            manifest=manifest,
            path=Path(path),
        )
    if manifest.get("format") != PACK_FORMAT or len(pack.values) != len(pack.digests) != len(pack.scales):
        raise ValueError(f"{path}: not a prebuilt vector pack of format {PACK_FORMAT}")
    return pack


def pack_folder() -> Path:
    """Where shipped packs live: ``resources/gene_vectors``."""
    return resources_dir() / PACK_FOLDER


@lru_cache(maxsize=8)
def packs_for(embedder_id: str) -> tuple[PrebuiltVectors, ...]:
    """The shipped packs built with ``embedder_id`` (none for any other embedder). Read once per process; a
    damaged pack is skipped (its texts are then embedded as usual)."""
    folder = pack_folder()
    found = []
    for path in sorted(folder.glob("*.npz")) if folder.is_dir() else []:
        try:
            with np.load(path, allow_pickle=False) as data:
                if json.loads(str(data["manifest"])).get("embedder_id") != embedder_id:
                    continue
            found.append(load_pack(path))
        except (OSError, ValueError, KeyError):
            continue
    return tuple(found)


def prebuilt_lookup(embedder_id: str, text_hashes: list[str]) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Vectors for the hashes from every shipped pack of this embedder, and which packs answered."""
    found: dict[str, np.ndarray] = {}
    used = []
    for pack in packs_for(embedder_id):
        hits = pack.lookup([h for h in text_hashes if h not in found])
        if hits:
            found.update(hits)
            used.append(pack.describe())
    return found, used
