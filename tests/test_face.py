"""A notebook session through the Python face only (``scelmo.io``, ``models``, ``tl``, ``pl``): open data,
describe in facts mode, embed under a chosen key, cluster, annotate from a reference, integrate, plot. Each
function writes the keys its docstring lists and nothing else."""

import numpy as np
import pytest

import scelmo_desktop as scelmo

SETTINGS = {"layer": "raw", "max_genes": 200}  # the demo's .raw holds its log-normalised values


@pytest.fixture
def models(tmp_path):
    with scelmo.models.load(mode="facts", store=tmp_path / "store.sqlite") as opened:
        yield opened


def test_notebook_session_through_the_face(tmp_path, models):
    adata = scelmo.io.demo()
    assert scelmo.io.input_kind(adata, layer="raw")["kind"] == "log"
    before = {"obsm": set(adata.obsm), "obs": set(adata.obs), "varm": set(adata.varm)}

    rows = scelmo.tl.describe_genes(adata, models=models, **SETTINGS)
    assert len(rows) == 200 and set(rows["kind"]) == {"gene"} and set(rows["mode"]) == {"facts"}
    # fact sheets, not bare names (a retired symbol such as IGJ gets only "Gene IGJ.")
    assert rows["text"].str.len().gt(40).mean() > 0.8 and rows["text"].str.len().median() > 100
    assert set(adata.obsm) == before["obsm"] and set(adata.obs) == before["obs"]  # describing writes no key

    coverage = scelmo.tl.embed_cells(adata, models=models, key_added="X_mine", **SETTINGS)
    assert coverage["gene_set"]["with_vector"] >= 150
    assert set(adata.obsm) - before["obsm"] == {"X_mine"}  # not X_scelmo, no paper wa/aa unless asked
    assert set(adata.varm) - before["varm"] == {"mine_gene_embedding"}
    assert adata.obsm["X_mine"].shape == (adata.n_obs, 50) and np.isfinite(adata.obsm["X_mine"]).all()
    assert adata.uns["scelmo"]["embedding"]["key_added"] == "X_mine"

    metrics = scelmo.tl.cluster(adata, use_rep="X_mine", key_added="my_clusters", label_key="bulk_labels")
    assert "my_clusters" in adata.obs and "scelmo_leiden" not in adata.obs and "X_umap" in adata.obsm
    assert metrics.loc[0, "nmi"] > 0.4, metrics

    is_reference = np.arange(adata.n_obs) % 3 != 0
    reference, query = adata[is_reference].copy(), adata[~is_reference].copy()
    record = scelmo.tl.annotate(
        query, reference=reference, label_key="bulk_labels", key_added="predicted", models=models, **SETTINGS
    )
    assert {"predicted", "predicted_confidence", "predicted_similarity"} <= set(query.obs)
    assert "scelmo_label" not in query.obs
    assert record["metrics"]["accuracy"] > 0.6, record["metrics"]
    assert record["llm"]["name"] == "none (facts mode)" and record["embedder"]["sha256"]

    adata.obs["batch"] = np.where(np.arange(adata.n_obs) % 2 == 0, "A", "B")
    scores = scelmo.tl.integrate(
        adata,
        batch_key="batch",
        label_key="bulk_labels",
        key_added="X_integrated_here",
        epochs=2,
        models=models,
        **SETTINGS,
    )
    assert "X_integrated_here" in adata.obsm and "X_scelmo_integrated" not in adata.obsm
    assert {
        "scELMo, samples integrated (default, no labels)",
        "scELMo, uncorrected",
        "scELMo adaptor (batch-adversarial, labelled)",
        "Harmony (on PCA)",
    } <= set(scores["method"])
    assert scores[["S_bio", "S_batch", "overall"]].apply(lambda c: c.between(0, 1)).all().all()

    for figure in (
        scelmo.pl.umap(adata, color="my_clusters"),
        scelmo.pl.confusion(query, truth_key="bulk_labels", key="predicted", path=tmp_path / "c.png"),
        scelmo.pl.integration_scores(scores),
    ):
        assert figure.axes
    assert (tmp_path / "c.png").stat().st_size > 1000
    written = scelmo.io.write(adata, tmp_path / "session.h5ad")
    assert scelmo.io.read(written).obsm["X_mine"].shape == (adata.n_obs, 50)


def test_face_errors_name_the_setting_not_a_cli_flag(models):
    adata = scelmo.io.demo()
    from scelmo_desktop.core._infra.errors import ScelmoError

    with pytest.raises(ScelmoError) as caught:
        scelmo.tl.cluster(adata, use_rep="X_missing")
    message = str(caught.value)
    assert "X_missing" in message and "--" not in message


def test_every_face_function_documents_the_keys_it_writes():
    for module in (scelmo.tl, scelmo.pl, scelmo.io, scelmo.models):
        for name in module.__all__ if hasattr(module, "__all__") else []:
            doc = getattr(module, name).__doc__ or ""
            assert len(doc) > 40, f"{module.__name__}.{name} has no docstring"
    for name in ("describe_genes", "embed_cells", "cluster", "annotate", "integrate", "treat", "perturb"):
        doc = getattr(scelmo.tl, name).__doc__
        assert "Writes" in doc, f"scelmo.tl.{name} does not say which keys it writes"
