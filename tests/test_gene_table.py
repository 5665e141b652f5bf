"""Gene table: embedding with the real embedder (cached), alignment rules, coverage report, .npz round trip."""

import numpy as np
import pandas as pd
import pytest

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.embedding.gene_table import (
    GeneTable,
    align,
    embed_texts,
    gene_symbols,
    load_gene_table,
    save_gene_table,
)
from scelmo_desktop.core.text.store import Store

TEXTS = {
    "CD3E": "CD3E encodes the epsilon chain of the T-cell receptor CD3 complex, required for T-cell signalling.",
    "MS4A1": "MS4A1 encodes CD20, a B-lymphocyte surface molecule involved in B-cell activation.",
    "LYZ": "LYZ encodes lysozyme, an antibacterial enzyme abundant in monocytes and macrophages.",
    "EMPTY": "   ",
}


def test_real_embedder_vectors_are_cached_by_text(tmp_path, embedder):
    with Store(tmp_path / "s.sqlite") as store:
        table, stats = embed_texts(TEXTS, embedder=embedder, store=store)
        assert stats == {"n_embedded": 3, "n_cached": 0, "n_prebuilt": 0, "n_empty": 1, "prebuilt": []}
        assert table.symbols == ["CD3E", "MS4A1", "LYZ"] and table.vectors.shape == (3, 384)
        again, stats2 = embed_texts(TEXTS, embedder=embedder, store=store)
        assert stats2["n_embedded"] == 0 and stats2["n_cached"] == 3
        np.testing.assert_allclose(again.vectors, table.vectors)
    # all-MiniLM-L6-v2 ends in a Normalize module: unit vectors, and different texts give different vectors
    np.testing.assert_allclose(np.linalg.norm(table.vectors, axis=1), 1.0, rtol=1e-4)
    assert float(table.vectors[0] @ table.vectors[2]) < 0.95
    assert table.provenance["embedder"]["dim"] == 384


def _table():
    return GeneTable(symbols=["CD3E", "MS4A1", "LYZ"], vectors=np.eye(3, dtype=np.float32))


def test_alignment_exact_then_case_insensitive_then_symbol_column():
    var_names = ["CD3E", "ms4a1", "ENSG00000090382", "NOTAGENE"]
    var = pd.DataFrame({"gene_symbols": ["CD3E", "MS4A1", "LYZ", "NOPE"]}, index=var_names)
    alignment = align(_table(), var_names, var)
    assert alignment.how == ["exact", "case-insensitive", "symbol-column:gene_symbols", "none"]
    np.testing.assert_array_equal(alignment.matrix[2], [0, 0, 1])
    np.testing.assert_array_equal(alignment.matrix[3], [0, 0, 0])  # unmatched gene: zero row
    report = alignment.coverage(var_names, np.array([1.0, 1.0, 1.0, 1.0]))
    assert report["n_matched"] == 3 and report["fraction_matched"] == 0.75
    assert report["unmatched_examples"] == ["NOTAGENE"]
    assert report["fraction_expression_covered"] == 0.75
    assert report["by_match_kind"]["case-insensitive"] == 1


def test_symbols_come_from_a_column_when_the_index_is_ensembl():
    var = pd.DataFrame({"feature_name": ["CD3E", "LYZ"]}, index=["ENSG00000198851", "ENSG00000090382"])
    assert gene_symbols(list(var.index), var) == ["CD3E", "LYZ"]
    with pytest.raises(ScelmoError, match="Symbol column 'nope'"):
        gene_symbols(list(var.index), var, "nope")


def test_npz_round_trip_without_pickle(tmp_path):
    table = _table()
    table.provenance = {"embedder": {"name": "x"}}
    save_gene_table(table, tmp_path / "t.npz")
    loaded = load_gene_table(tmp_path / "t.npz")
    assert loaded.symbols == table.symbols and loaded.provenance == table.provenance
    np.testing.assert_array_equal(loaded.vectors, table.vectors)
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(ScelmoError, match="not a scELMo gene table"):
        load_gene_table(tmp_path / "bad.npz")


def test_long_texts_are_embedded_in_chunks_not_truncated(embedder):
    sentence = "Lysozyme hydrolyses peptidoglycan in the walls of Gram-positive bacteria within monocytes. "
    long_text = sentence * 12 + "The final sentence mentions platelets and megakaryocytes only."
    assert embedder.count_tokens(long_text) > 256
    chunks = embedder.chunks(long_text)
    assert len(chunks) >= 2 and all(embedder.count_tokens(c) <= 256 for c in chunks)
    assert " ".join(chunks).split() == long_text.split()  # nothing dropped
    vector = embedder.embed([long_text])[0]
    truncated = embedder.embed([sentence * 12])[0]
    assert abs(np.linalg.norm(vector) - 1) < 1e-4
    assert float(vector @ truncated) < 0.999  # the tail beyond 256 tokens changed the vector
    short = embedder.embed(["CD3E"])[0]
    np.testing.assert_allclose(short, embedder._model.encode(["CD3E"])[0], rtol=1e-5, atol=1e-6)


def test_batches_alternate_between_the_short_and_the_long_end():
    """Texts done track work done (an honest time left): batches run shortest, longest, second shortest, …, each
    exactly once."""
    from scelmo_desktop.core.embedding.gene_table import _alternating_ends

    assert _alternating_ends([1, 2, 3, 4, 5]) == [1, 5, 2, 4, 3]
    assert _alternating_ends([1, 2, 3, 4]) == [1, 4, 2, 3]
    assert _alternating_ends([]) == [] and _alternating_ends([7]) == [7]
