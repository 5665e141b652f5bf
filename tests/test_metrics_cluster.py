"""Metrics and the Leiden sweep follow the scib-metrics protocol."""

import anndata as ad
import numpy as np
import pytest

from scelmo_desktop.core.tasks import cluster, metrics


def test_metrics_on_known_partitions():
    labels = ["a", "a", "b", "b"]
    assert metrics.nmi(labels, [0, 0, 1, 1]) == pytest.approx(1.0)
    assert metrics.ari(labels, [1, 1, 0, 0]) == pytest.approx(1.0)
    assert metrics.nmi(labels, [0, 1, 0, 1]) == pytest.approx(0.0, abs=1e-12)
    X = np.array([[0.0], [0.1], [10.0], [10.1]])
    # two tight, far-apart groups: silhouette ~ 1 -> rescaled ~ 1; raw value in [-1, 1]
    assert metrics.silhouette_label(X, labels) == pytest.approx(
        (metrics.silhouette_label(X, labels, rescale=False) + 1) / 2
    )
    assert metrics.silhouette_label(X, labels) > 0.99


def test_sweep_picks_the_best_nmi_and_reports_ari_there():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=8, size=(4, 10))
    labels = np.repeat(np.array(list("wxyz")), 60)
    X = (centres[np.repeat(np.arange(4), 60)] + rng.normal(size=(240, 10))).astype(np.float32)
    adata = ad.AnnData(np.zeros((240, 1), np.float32))
    adata.obsm["X_test"] = X
    result = cluster.leiden_on_embedding(adata, "X_test", labels=labels)
    assert len(result.sweep) == 10
    best = max(result.sweep, key=lambda row: row["nmi"])
    assert result.resolution == best["resolution"] and result.scores["nmi"] == best["nmi"]
    assert result.scores["ari"] == best["ari"] and result.scores["nmi"] > 0.9
    no_labels = cluster.leiden_on_embedding(adata, "X_test")
    assert no_labels.resolution == 1.0 and no_labels.scores == {}


def test_recluster_reuses_the_graph_and_follows_the_resolution():
    """The app's resolution slider: Leiden again on the graph a clustering built, at a new resolution."""
    from scelmo_desktop.core._infra.errors import ScelmoError
    from scelmo_desktop.core.workflows.cluster import recluster

    rng = np.random.default_rng(0)
    centres = rng.normal(scale=8, size=(4, 10))
    adata = ad.AnnData(np.zeros((240, 1), np.float32))
    adata.obs["truth"] = np.repeat(np.array(list("wxyz")), 60)
    adata.obsm["X_scelmo"] = (centres[np.repeat(np.arange(4), 60)] + rng.normal(size=(240, 10))).astype(np.float32)
    with pytest.raises(ScelmoError, match="cluster the cells first"):
        recluster(adata, 1.0)
    cluster.leiden_on_embedding(adata, "X_scelmo")
    graph = adata.obsp["X_scelmo_neighbors_connectivities"].copy()
    coarse = recluster(adata, 0.1, label_key="truth")
    fine = recluster(adata, 3.0, label_key="truth")
    # 4 well separated blobs: at 0.1 Leiden keeps at most the 4, at 3.0 it splits them (30x the resolution)
    assert coarse["n_clusters"] <= 4 < fine["n_clusters"]
    assert adata.obs["scelmo_leiden"].nunique() == fine["n_clusters"] and 0 < fine["nmi"] <= 1
    assert (adata.obsp["X_scelmo_neighbors_connectivities"] != graph).nnz == 0  # the same graph
    assert adata.uns["scelmo"]["clustering"]["resolution"] == 3.0
    with pytest.raises(ScelmoError, match="above 0"):
        recluster(adata, 0)
