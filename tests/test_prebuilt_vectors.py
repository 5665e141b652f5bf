"""Prebuilt gene vectors: the shipped pack answers for the catalog's fact sheets, its int8 vectors match what the
embedder gives now, and a pack can never be stale (other texts or another embedder simply miss)."""

import random
from pathlib import Path

import numpy as np
import pytest

from scelmo_desktop.core.embedding import prebuilt
from scelmo_desktop.core.embedding.gene_table import embed_texts, embedded_form, text_hash
from scelmo_desktop.core.text.store import Store

# int8 with one scale per vector: measured min cosine to float32 0.99995 over the 44,008 sheets
# (packaging/build_gene_vectors.py); the build refuses below 0.999, the bound the issue set for any faster path
MIN_COSINE = 0.999


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_pack_round_trip_lookup_and_embedder_scope(tmp_path, embedder, monkeypatch):
    texts = ["Gene CD3E. T-cell receptor complex.", "Gene MS4A1, a B-cell marker.", "Gene NKG7."]
    vectors = embedder.embed(texts)
    path = tmp_path / "gene_vectors" / "pack.npz"
    path.parent.mkdir()
    hashes = [text_hash(t) for t in texts]
    prebuilt.save_pack(path, embedder_id=embedder.id, text_hashes=hashes, vectors=vectors, manifest={"genes": 3})
    pack = prebuilt.load_pack(path)
    found = pack.lookup(hashes[:2] + [text_hash("a text nobody packed")])
    assert set(found) == set(hashes[:2])  # the unknown text misses
    assert _cosines(np.stack([found[h] for h in hashes[:2]]), vectors[:2]).min() >= MIN_COSINE

    monkeypatch.setattr(prebuilt, "pack_folder", lambda: path.parent)
    prebuilt.packs_for.cache_clear()
    try:
        assert len(prebuilt.packs_for(embedder.id)) == 1
        assert prebuilt.packs_for("another-embedder@0000/v2") == ()  # never used for another embedder
        with Store(tmp_path / "s.sqlite") as store:
            table, stats = embed_texts({"CD3E": texts[0], "NEW": "Gene NEWGENE."}, embedder=embedder, store=store)
        assert stats["n_prebuilt"] == 1 and stats["n_embedded"] == 1 and stats["prebuilt"][0]["path"] == str(path)
        path.write_bytes(b"damaged")
        prebuilt.packs_for.cache_clear()
        assert prebuilt.packs_for(embedder.id) == ()  # a damaged pack is skipped: its texts get embedded
    finally:
        prebuilt.packs_for.cache_clear()


def test_shipped_pack_holds_the_current_catalog_sheets_and_their_vectors(embedder):
    """Every catalog gene's sheet, as this install writes it, is in the shipped pack, and the pack's vector is
    the embedder's (a sample of 120 genes, checked against fresh float32 vectors)."""
    from scelmo_desktop.core.knowledge.facts import gene_fact_sheets
    from scelmo_desktop.core.knowledge.genes import GeneCatalog

    packs = prebuilt.packs_for(embedder.id)
    assert packs, f"no prebuilt pack for {embedder.id} in {prebuilt.pack_folder()}"
    catalog = GeneCatalog.load()
    if catalog is None:
        pytest.skip("gene catalog package not installed")
    names = random.Random(0).sample(sorted(catalog.records), 120) + ["CD3E", "MS4A1", "LYZ", "MALAT1"]
    sheets = gene_fact_sheets(names, catalog=catalog)
    if sheets.source != packs[0].manifest["knowledge"]:
        pytest.skip("this install's knowledge sources differ from the pack's: its sheets differ and are embedded")
    hashes = {name: text_hash(text) for name, text in sheets.texts.items()}
    found, _ = prebuilt.prebuilt_lookup(embedder.id, list(hashes.values()))
    missing = [n for n, h in hashes.items() if h not in found]
    assert not missing, f"rebuild the pack (packaging/build_gene_vectors.py): {missing[:5]}"
    fresh = embedder.embed([embedded_form(sheets.texts[n]) for n in names])
    assert _cosines(np.stack([found[hashes[n]] for n in names]), fresh).min() >= MIN_COSINE


def test_the_wheel_carries_every_resource():
    """An installed app finds prompts, gene vectors and the phenotype table in <prefix>/share/scelmo-desktop/
    resources: every file under resources/ is listed in pyproject's data-files, each in its own folder."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    data_files = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    listed = {}
    for target, files in data_files.items():
        for f in files:
            listed[f] = target
    on_disk = {p.relative_to(root).as_posix() for p in (root / "resources").rglob("*") if p.is_file()}
    assert on_disk <= set(listed), sorted(on_disk - set(listed))
    for f in on_disk:
        assert listed[f] == "share/scelmo-desktop/" + Path(f).parent.as_posix(), f
