"""Annotation end to end: kNN on a labelled reference, label-text mode, write-back and clear refusals."""

import json

import anndata as ad
import numpy as np
import pytest
from cli_inprocess import run_cli
from sklearn.model_selection import train_test_split


def scelmo(*args, home):
    """``scelmo *args`` in process, with this module's store."""
    return run_cli(*args, env={"OMP_NUM_THREADS": "1", "SCELMO_HOME": str(home)})


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """One store for the module: the 765 fact sheets are embedded once, not once per test."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def split_file(tmp_path_factory, pbmc):
    adata = pbmc.copy()
    reference, _ = train_test_split(
        np.arange(adata.n_obs), test_size=0.3, stratify=adata.obs["bulk_labels"], random_state=0
    )
    adata.obs["role"] = "query"
    adata.obs.iloc[reference, adata.obs.columns.get_loc("role")] = "reference"
    path = tmp_path_factory.mktemp("annot") / "pbmc_split.h5ad"
    adata.write_h5ad(path)
    return path


def test_knn_annotation_writes_back_and_scores(split_file, tmp_path, home):
    out = tmp_path / "annotated.h5ad"
    result = scelmo(
        "annotate",
        "--query",
        split_file,
        "--split-key",
        "role",
        "--reference-value",
        "reference",
        "--label-key",
        "bulk_labels",
        "--mode",
        "knn",
        "--description-mode",
        "facts",
        "--out",
        out,
        home=home,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    annotated = ad.read_h5ad(out)
    assert annotated.n_obs == 210 and set(annotated.obs["role"]) == {"query"}
    assert annotated.obs["scelmo_label_confidence"].between(0.1, 1.0).all()
    record = annotated.uns["scelmo"]["annotation"]
    assert record["method"] == "knn" and record["description_mode"] == "facts" and int(record["k"]) == 10
    metrics = record["metrics"]
    assert metrics["accuracy"] > 0.6  # measured 0.790 with the fact-sheet table (PCA: 0.819)
    assert set(json.loads(metrics["per_class_f1"])) == set(annotated.obs["bulk_labels"])
    assert "accuracy 0." in result.stdout
    strict = scelmo(
        "annotate",
        "--query",
        split_file,
        "--split-key",
        "role",
        "--reference-value",
        "reference",
        "--label-key",
        "bulk_labels",
        "--description-mode",
        "facts",
        "--threshold",
        "0.95",
        "--out",
        tmp_path / "strict.h5ad",
        home=home,
    )
    assert strict.returncode == 0 and "Unknown" in strict.stdout


def test_text_mode_and_refusals(split_file, tmp_path, home):
    out = tmp_path / "text.h5ad"
    result = scelmo(
        "annotate",
        "--query",
        split_file,
        "--mode",
        "text",
        "--candidates",
        "CD14+ Monocyte,CD19+ B,CD56+ NK",
        "--description-mode",
        "facts",
        "--out",
        out,
        home=home,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    labels = set(ad.read_h5ad(out).obs["scelmo_label"])
    assert labels <= {"CD14+ Monocyte", "CD19+ B", "CD56+ NK"}
    missing = scelmo("annotate", "--query", split_file, "--mode", "text", "--out", out, home=home)
    assert missing.returncode == 2 and "needs candidate cell types" in missing.stderr
    no_ref = scelmo("annotate", "--query", split_file, "--label-key", "bulk_labels", "--out", out, home=home)
    assert no_ref.returncode == 2 and "needs a labelled reference" in no_ref.stderr


def test_reference_and_query_without_shared_genes(tmp_path, pbmc):
    from scelmo_desktop.core._infra.errors import ScelmoError
    from scelmo_desktop.core.embedding.gene_table import GeneTable
    from scelmo_desktop.core.protocols import LLMSource
    from scelmo_desktop.core.settings import PipelineSettings
    from scelmo_desktop.core.text.store import Store
    from scelmo_desktop.core.workflows.annotation import run_annotation

    genes = list(pbmc.raw.var_names)
    table = GeneTable(symbols=genes, vectors=np.random.default_rng(0).normal(size=(len(genes), 8)).astype(np.float32))
    reference = ad.AnnData(pbmc.raw.X[:50, :300].toarray(), obs=pbmc.obs.iloc[:50].copy())
    reference.var_names = genes[:300]
    query = ad.AnnData(pbmc.raw.X[50:80, 400:].toarray(), obs=pbmc.obs.iloc[50:80].copy())
    query.var_names = genes[400:]
    with Store(tmp_path / "s.sqlite") as store, pytest.raises(ScelmoError, match="share no described gene"):
        run_annotation(
            query,
            settings=PipelineSettings(layer="X", method="knn"),
            llm=LLMSource("x", "", lambda: None),
            embedder=None,
            store=store,
            reference=reference,
            label_key="bulk_labels",
            table=table,
        )


def test_adaptor_mode_trains_saves_and_writes_back(split_file, tmp_path, home):
    out, saved = tmp_path / "adaptor.h5ad", tmp_path / "adaptor.pt"
    result = scelmo(
        "annotate",
        "--query",
        split_file,
        "--split-key",
        "role",
        "--reference-value",
        "reference",
        "--label-key",
        "bulk_labels",
        "--mode",
        "adaptor",
        "--description-mode",
        "facts",
        "--save-adaptor",
        saved,
        "--out",
        out,
        home=home,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    annotated = ad.read_h5ad(out)
    assert annotated.obsm["X_scelmo_adaptor"].shape == (210, 32)
    assert annotated.obs["scelmo_label_head_probability"].between(0, 1).all()
    record = annotated.uns["scelmo"]["annotation"]
    assert record["method"] == "adaptor" and record["adaptor"]["device"] == "cpu"
    assert float(record["adaptor"]["training_seconds"]) > 0 and record["metrics"]["accuracy"] > 0.4
    assert saved.stat().st_size > 10_000
    assert (tmp_path / "adaptor.confusion.png").stat().st_size > 5_000
    page = (tmp_path / "adaptor.report.html").read_text()
    assert "scELMo annotation — adaptor" in page and "data:image/png;base64," in page and "macro-F1" in page
