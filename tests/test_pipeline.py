"""The whole zero-shot pipeline on shipped data with the real models; the output used as scanpy users would."""

import anndata as ad
import matplotlib
import numpy as np
import pandas as pd
import pytest
from conftest import TEST_PARAMS

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.settings import PipelineSettings
from scelmo_desktop.core.text.store import Store
from scelmo_desktop.core.workflows.outputs import write_outputs
from scelmo_desktop.core.workflows.pipeline import run_pipeline

matplotlib.use("Agg")
SETTINGS = PipelineSettings(label_key="bulk_labels", layer="raw", max_genes=4, params=TEST_PARAMS, compare=True)


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory, pbmc, llm, llm_info, embedder):
    from scelmo_desktop.core.protocols import LLMSource

    tmp = tmp_path_factory.mktemp("pipeline")
    source = LLMSource(name=llm_info.name, sha256=llm_info.sha256, factory=lambda: llm, info=llm.info())
    with Store(tmp / "store.sqlite") as store:
        result = run_pipeline(
            pbmc.copy(), settings=SETTINGS, llm=source, embedder=embedder, store=store, data_name="pbmc68k_reduced"
        )
    paths = write_outputs(result, tmp / "out", label_key="bulk_labels")
    return result, paths, tmp


def test_outputs_written(pipeline_run):
    result, paths, _ = pipeline_run
    for key in ("h5ad", "metrics", "descriptions", "provenance", "report", "umap_scelmo_leiden", "umap_bulk_labels"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0, key
    html = paths["report"].read_text()
    assert "data:image/png;base64," in html and "scELMo-wa" in html and "LLM calls: 4" in html
    assert set(result.metrics["method"]) == {
        "scELMo",
        "scELMo-wa (paper)",
        "scELMo-aa (paper)",
        "PCA (scanpy route)",
        "random-table",
    }
    for column in ("nmi", "ari", "asw_label"):
        assert result.metrics[column].between(0, 1).all()
    assert result.record["coverage"]["n_matched"] == 4  # only the 4 described genes have embeddings
    assert result.record["llm_calls"] == 4 and result.record["llm_cached"] == 0
    # the clusters' marker genes: every gene of every cluster in markers.csv, the report's section
    markers = pd.read_csv(paths["markers"])
    clusters = result.adata.obs["scelmo_leiden"].value_counts()
    assert set(markers["group"].astype(str)) == {str(c) for c in clusters.index if clusters[c] >= 2}
    assert markers["p_adjusted"].between(0, 1).all() and "Marker genes" in html
    assert result.adata.uns["rank_genes_groups"]["params"]["groupby"] == "scelmo_leiden"


def test_h5ad_round_trip_with_provenance(pipeline_run, llm_info):
    result, paths, _ = pipeline_run
    back = ad.read_h5ad(paths["h5ad"])
    assert back.obsm["X_scelmo_wa"].shape == (700, 384) and back.obsm["X_scelmo_aa"].shape == (700, 384)
    np.testing.assert_allclose(back.obsm["X_scelmo_wa"], result.adata.obsm["X_scelmo_wa"])
    assert back.varm["scelmo_gene_embedding"].shape == (back.n_vars, 384)
    assert int((np.abs(back.varm["scelmo_gene_embedding"]).sum(1) > 0).sum()) == 4
    assert back.obs["scelmo_leiden"].dtype.name == "category" and back.obsm["X_umap"].shape == (700, 2)
    record = back.uns["scelmo"]
    assert record["llm"]["sha256"] == llm_info.sha256
    assert record["embedder"]["dim"] == 384 and len(record["embedder"]["sha256"]) == 64
    assert record["prompt_template"].startswith("Please summarize the major function of gene: {entity}.")
    assert record["decoding"]["temperature"] == 0.0 and record["decoding"]["max_tokens"] == 24
    assert record["seed"] == 0 and record["versions"]["llama-cpp-python"] == "0.3.36"
    assert float(record["timings_s"]["total"]) > 0


def test_output_opens_in_scanpy_as_users_use_it(pipeline_run, tmp_path):
    import matplotlib.pyplot as plt
    import scanpy as sc

    _, paths, _ = pipeline_run
    adata = sc.read_h5ad(paths["h5ad"])
    sc.pp.neighbors(adata, use_rep="X_scelmo_wa")
    sc.tl.leiden(adata, flavor="igraph", n_iterations=2, directed=False)
    assert adata.obs["leiden"].nunique() > 1
    sc.pl.umap(adata, color="scelmo_leiden", show=False)
    plt.savefig(tmp_path / "umap.png")
    assert (tmp_path / "umap.png").stat().st_size > 1000
    assert len(adata.uns["scelmo_leiden_colors"]) == adata.obs["scelmo_leiden"].cat.categories.size


def test_second_run_is_served_from_the_store(pipeline_run, pbmc, embedder, llm_info):
    from scelmo_desktop.core.protocols import LLMSource

    _, _, tmp = pipeline_run

    def must_not_load():
        raise AssertionError("a fully cached run loaded the LLM")

    source = LLMSource(name=llm_info.name, sha256=llm_info.sha256, factory=must_not_load)
    with Store(tmp / "store.sqlite") as store:
        again = run_pipeline(pbmc.copy(), settings=SETTINGS, llm=source, embedder=embedder, store=store)
    assert again.record["llm_calls"] == 0 and again.record["llm_cached"] == 4
    assert again.record["embedding"]["n_embedded"] == 0


def test_bad_label_column_fails_before_any_llm_work(pbmc, embedder, llm_info, tmp_path):
    from scelmo_desktop.core.protocols import LLMSource

    source = LLMSource(name="x", sha256=llm_info.sha256, factory=lambda: pytest.fail("LLM loaded"))
    with Store(tmp_path / "s.sqlite") as store, pytest.raises(ScelmoError, match="Label column 'nope'"):
        run_pipeline(
            pbmc.copy(), settings=PipelineSettings(label_key="nope"), llm=source, embedder=embedder, store=store
        )


def test_scaled_matrix_is_refused_for_wa(pbmc):
    from scelmo_desktop.core.data.io import select_expression

    with pytest.raises(ScelmoError, match="negative values .*layer setting: raw"):  # pbmc68k's .raw is the way out
        select_expression(pbmc, "X")
    bare = ad.AnnData(pbmc.X.copy())  # scaled values and nothing else: say so, not "choose raw"
    with pytest.raises(ScelmoError, match="holds no other matrix .*export the counts"):
        select_expression(bare, "X")
