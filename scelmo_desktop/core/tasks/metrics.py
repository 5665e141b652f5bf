"""Clustering-quality metrics with the scib-metrics protocol (METHOD.md §3.1, §7.3).

NMI (arithmetic mean normalisation) and ARI are taken at the Leiden resolution that maximises NMI; the label
silhouette is the mean Euclidean silhouette by label, rescaled to (s + 1) / 2.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_samples


def nmi(labels, clusters) -> float:
    """Normalised mutual information of clusters and labels (arithmetic mean normalisation). In [0, 1], higher is
    better (1: the clusters are the labels, 0: independent of them)."""
    return float(normalized_mutual_info_score(labels, clusters, average_method="arithmetic"))


def ari(labels, clusters) -> float:
    """Adjusted Rand index of clusters against labels: 1 for the same partition, about 0 for chance, negative
    below chance; higher is better."""
    return float(adjusted_rand_score(labels, clusters))


def silhouette_label(X: np.ndarray, labels, *, rescale: bool = True) -> float:
    """Mean silhouette of cells by label (Euclidean); rescaled to [0, 1] like scib-metrics."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        raise ValueError("the label silhouette needs at least two labels")
    score = float(np.mean(silhouette_samples(np.asarray(X, dtype=np.float64), labels, metric="euclidean")))
    return (score + 1.0) / 2.0 if rescale else score
