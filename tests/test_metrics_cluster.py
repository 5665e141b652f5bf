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
