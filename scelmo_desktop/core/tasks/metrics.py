"""Clustering-quality metrics with the scib-metrics protocol (METHOD.md §3.1, §7.3).

NMI (arithmetic mean normalisation) and ARI are taken at the Leiden resolution that maximises NMI; the label
silhouette is the mean Euclidean silhouette by label, rescaled to (s + 1) / 2.

Silhouettes and LISI (``batch_metrics``) compare every cell with every other, so their time grows with the square
of the cells (harmonypy's LISI takes most of an hour on 100,000 cells on one core): above
:data:`METRIC_MAX_CELLS` cells they are computed on a seeded random subset of that many (:func:`metric_cells`), as
scIB's users subsample large atlases. Every real set of the integration benchmark is below it, so its figures are
exact.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_samples

METRIC_MAX_CELLS = 20_000


def metric_cells(n_cells: int, seed: int = 0) -> np.ndarray:
    """The cells a silhouette or LISI is computed on: all ``n_cells`` up to :data:`METRIC_MAX_CELLS`, else a random
    subset of that many (seeded, in their order)."""
    if n_cells <= METRIC_MAX_CELLS:
        return np.arange(n_cells)
    return np.sort(np.random.default_rng(seed).choice(n_cells, METRIC_MAX_CELLS, replace=False))


def nmi(labels, clusters) -> float:
    """Normalised mutual information of clusters and labels (arithmetic mean normalisation). In [0, 1], higher is
    better (1: the clusters are the labels, 0: independent of them)."""
    return float(normalized_mutual_info_score(labels, clusters, average_method="arithmetic"))


def ari(labels, clusters) -> float:
    """Adjusted Rand index of clusters against labels: 1 for the same partition, about 0 for chance, negative
    below chance; higher is better."""
    return float(adjusted_rand_score(labels, clusters))


def silhouette_label(X: np.ndarray, labels, *, rescale: bool = True) -> float:
    """Mean silhouette of cells by label (Euclidean; on :func:`metric_cells`); rescaled to [0, 1] like scib-metrics."""
    cells = metric_cells(len(labels))
    labels = np.asarray(labels)[cells]
    if len(np.unique(labels)) < 2:
        raise ValueError("the label silhouette needs at least two labels")
    X = np.asarray(X, dtype=np.float64)[cells]
    score = float(np.mean(silhouette_samples(X, labels, metric="euclidean")))
    return (score + 1.0) / 2.0 if rescale else score
