"""Description packs: descriptions + embeddings + provenance in one portable, verifiable file.

A pack is a zip holding ``descriptions.jsonl``, ``embeddings.npz`` (text hash and embedder id per vector) and
``manifest.json`` with the sha256 of both members. One workstation (with a GPU, or a larger model) generates;
others import and reuse. Importing checks every hash and imports embeddings only for the embedder the user
runs: vectors made by another embedder live in another space and would silently mix.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from scelmo_desktop import __version__
from scelmo_desktop.core._infra.atomic import write_atomic
from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.provenance import now_iso
from scelmo_desktop.core.text.store import Store

PACK_FORMAT = 1


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def export_pack(store: Store, path: str | Path) -> dict:
    """Write every stored description and embedding as a pack at ``path`` (atomically); returns its manifest
    (counts, models, embedders and the members' sha256)."""
    descriptions, embeddings = store.export_rows()
    jsonl = "".join(json.dumps(row, sort_keys=True) + "\n" for row in descriptions).encode()
    # one (hashes, vectors) pair per embedder: different embedders have different dimensions
    by_embedder: dict[str, list[tuple[str, bytes]]] = {}
    for text_hash, embedder, blob in embeddings:
        by_embedder.setdefault(embedder, []).append((text_hash, blob))
    arrays = {"embedder_ids": np.array(list(by_embedder), dtype=str)}
    for i, rows in enumerate(by_embedder.values()):
        arrays[f"hashes_{i}"] = np.array([h for h, _ in rows], dtype=str)
        arrays[f"vectors_{i}"] = np.stack([np.frombuffer(blob, dtype=np.float32) for _, blob in rows])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    npz = buffer.getvalue()
    manifest = {
        "format": PACK_FORMAT,
        "created_at": now_iso(),
        "scelmo_desktop": __version__,
        "n_descriptions": len(descriptions),
        "n_embeddings": len(embeddings),
        "models": sorted({(r["model_name"] or "", r["model_sha256"]) for r in descriptions}),
        "embedders": sorted({e[1] for e in embeddings}),
        "sha256": {"descriptions.jsonl": _sha(jsonl), "embeddings.npz": _sha(npz)},
    }

    def writer(tmp):
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("manifest.json", json.dumps(manifest, indent=2))
            archive.writestr("descriptions.jsonl", jsonl)
            archive.writestr("embeddings.npz", npz)

    write_atomic(path, writer)
    return manifest


def import_pack(store: Store, path: str | Path, *, embedder_id: str | None) -> dict:
    """Verify and import a pack; embeddings only when they were made by ``embedder_id``."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            members = {name: archive.read(name) for name in ("descriptions.jsonl", "embeddings.npz")}
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError) as exc:
        raise ScelmoError(f"{path} is not a scELMo description pack ({exc}).") from exc
    if manifest.get("format") != PACK_FORMAT:
        raise ScelmoError(f"{path}: pack format {manifest.get('format')} is not supported (expected {PACK_FORMAT}).")
    for name, data in members.items():
        if _sha(data) != manifest.get("sha256", {}).get(name):
            raise ScelmoError(
                f"{path}: {name} does not match the sha256 in the pack manifest; the pack is "
                "corrupt or was altered. Nothing was imported."
            )
    rows = [json.loads(line) for line in members["descriptions.jsonl"].decode().splitlines() if line.strip()]
    usable = {}
    with np.load(io.BytesIO(members["embeddings.npz"]), allow_pickle=False) as data:
        embedders = [str(e) for e in data["embedder_ids"]]
        if embedder_id in embedders:
            i = embedders.index(embedder_id)
            usable = dict(zip((str(h) for h in data[f"hashes_{i}"]), data[f"vectors_{i}"]))
    new_descriptions = store.import_descriptions(rows)
    if usable:
        store.put_embeddings(embedder_id, usable)
    skipped = sorted(set(embedders) - {embedder_id})
    return {
        "descriptions_new": new_descriptions,
        "descriptions_in_pack": len(rows),
        "embeddings_imported": len(usable),
        "embedders_skipped": skipped,
        "manifest": manifest,
    }
