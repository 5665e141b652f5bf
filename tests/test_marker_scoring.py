"""No-reference annotation from curated markers: neighbour smoothing, tissue presets, the markers seen in each
type's cells, weakly mapped labels, and the CLI's ``--preset`` on a real file."""

import json

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from cli_inprocess import run_cli

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.knowledge.presets import TISSUE_PRESETS, preset_terms
from scelmo_desktop.core.tasks.smoothing import averaging_operator, embedding_graph, smooth, smoothing_graph


def test_averaging_operator_rows_sum_to_one_and_smoothing_fixes_a_noisy_call():
    # three cells in a chain: the middle one's own scores say B, both neighbours say A strongly
    graph = averaging_operator(sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=np.float32)))
    assert np.allclose(np.asarray(graph.sum(axis=1)).ravel(), 1.0)
    scores = np.array([[2.0, 0.0], [0.4, 0.6], [2.0, 0.0]], dtype=np.float32)
    assert scores[1].argmax() == 1 and smooth(scores, graph, steps=1)[1].argmax() == 0
    assert smooth(scores, None) is scores  # no graph: each cell alone


def test_embedding_graph_and_refusals():
    rng = np.random.default_rng(0)
    vectors = np.vstack([rng.normal(0, 0.1, (20, 5)), rng.normal(5, 0.1, (20, 5))])
    graph = embedding_graph(vectors, n_neighbors=5)
    assert graph.shape == (40, 40) and graph[:20, 20:].sum() == 0  # neighbours stay within their group
    assert embedding_graph(vectors[:2]) is None  # too few cells to have neighbours
    with pytest.raises(ScelmoError, match="embed the cells first"):
        smoothing_graph("embedding", log_expression=np.ones((4, 4)), adata=ad.AnnData(np.ones((4, 4))))
    with pytest.raises(ScelmoError, match="Unknown smoothing"):
        smoothing_graph("blur", log_expression=np.ones((4, 4)))


def test_presets_name_terms_with_markers():
    from scelmo_desktop.core.knowledge.markers import CellMarkers

    blood = preset_terms("Blood")
    assert "classical monocyte" in blood and preset_terms("pbmc") == blood
    with pytest.raises(ScelmoError, match="Unknown tissue preset 'liver'.*blood"):
        preset_terms("liver")
    table = CellMarkers.load()
    if table is None:
        pytest.skip("the knowledge extra is not installed")
    for name, term in TISSUE_PRESETS["blood"].items():
        assert len(table.markers(term, 25)) >= 10, name
        assert table.names[term] == name  # the display name is the ontology's own


@pytest.fixture(scope="module")
def pbmc_file(tmp_path_factory, pbmc):
    path = tmp_path_factory.mktemp("preset") / "pbmc68k.h5ad"
    pbmc.write_h5ad(path)
    return path


def stored(value):
    """A record value as written to .h5ad (lists of dicts, and dicts with '/' in keys, are JSON text there)."""
    return json.loads(value) if isinstance(value, str) else value


def test_cli_preset_annotation_reports_calls_per_label_and_evidence(pbmc_file, tmp_path):
    pytest.importorskip("cellconsensus")
    out = tmp_path / "preset.h5ad"
    result = run_cli(
        "annotate",
        "--query",
        pbmc_file,
        "--mode",
        "text",
        "--preset",
        "blood",
        "--label-key",
        "bulk_labels",
        "--layer",
        "raw",
        "--threshold",
        "0.7",
        "--out",
        out,
        env={"OMP_NUM_THREADS": "1", "SCELMO_HOME": str(tmp_path / "home")},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    annotated = ad.read_h5ad(out)
    record = annotated.uns["scelmo"]["annotation"]
    assert record["preset"] == "blood" and record["smoothing"] == "expression" and int(record["n_markers"]) == 25
    assert "metrics" not in record  # the preset's names are not the file's: no made-up accuracy
    sources = stored(record["knowledge_sources"])
    assert {s["package"] for s in sources} >= {"cellconsensus"} and all(len(s["sha256"]) == 64 for s in sources)
    calls = stored(record["calls_per_label"])
    # this toy file lacks CD14, so its classical monocytes read as either monocyte; the lineages are right
    assert calls["CD14+ Monocyte"]["call"].endswith("classical monocyte") and calls["CD14+ Monocyte"]["fraction"] > 0.6
    assert calls["CD19+ B"]["call"] == "B cell" and calls["Dendritic"]["call"] == "conventional dendritic cell"
    assert calls["CD4+/CD45RO+ Memory"]["call"] == "CD4-positive, alpha-beta T cell"
    seen = stored(stored(record["markers_seen"])[calls["CD14+ Monocyte"]["call"]])
    assert {m["gene"] for m in seen} & {"LYZ", "S100A8", "S100A9", "CD14", "FCN1", "FCGR3A"}
    labels = annotated.obs["scelmo_label"].astype(str)
    assert 0 < (labels == "Unknown").mean() < 0.5 and labels.isin([*TISSUE_PRESETS["blood"], "Unknown"]).all()
    assert (tmp_path / "preset.confusion.png").is_file() and "wrote" in result.stdout


def test_smoothing_raises_accuracy_on_real_labels(pbmc):
    """pbmc68k_reduced's own label names: two passes over the expression graph against no smoothing."""
    pytest.importorskip("cellconsensus")
    from scelmo_desktop.core.data.io import select_expression
    from scelmo_desktop.core.tasks.annotate import scores
    from scelmo_desktop.core.tasks.marker_scoring import knowledge_match
    from scelmo_desktop.core.tasks.smoothing import expression_graph

    expression = select_expression(pbmc, "raw")
    names = sorted(set(pbmc.obs["bulk_labels"].astype(str)))
    truth = pbmc.obs["bulk_labels"].astype(str)
    alone = knowledge_match(expression.matrix, expression.var_names, names)
    smoothed = knowledge_match(
        expression.matrix, expression.var_names, names, graph=expression_graph(expression.matrix)
    )
    assert scores(truth, smoothed.labels)["accuracy"] >= scores(truth, alone.labels)["accuracy"] > 0.6
    assert (
        smoothed.evidence["CD14+ Monocyte"][0]["mean_in_type"]
        > smoothed.evidence["CD14+ Monocyte"][0]["mean_elsewhere"]
    )
