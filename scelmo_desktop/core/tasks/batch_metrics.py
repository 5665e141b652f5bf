"""scIB-style integration metrics, computed on the *combined* object (all batches together; the original
scored the reference only, METHOD.md §3.2).

Batch removal (each in [0, 1], 1 = batches perfectly mixed):
* ``asw_batch``: per label, 1 − |silhouette| of cells by batch, averaged over labels (scib's ``silhouette_batch``).
* ``ilisi``: median LISI over batches (harmonypy's perplexity-30 LISI), rescaled (LISI − 1) / (B − 1).
* ``kbet``: the kBET test, done directly: for every cell, a χ² test of the batch counts among its k nearest
  neighbours against the batch proportions of its label; the score is the fraction of cells accepted at
  α = 0.05, averaged over labels (the R kBET package's acceptance rate, without its subsampling heuristics).
* ``graph_connectivity``: per label, the fraction of its cells in the largest connected component of the
  15-NN graph restricted to that label, averaged over labels.
* ``pcr_batch``: how much of the variance explained by batch (R² of each principal component on the batch
  one-hot, weighted by the component's variance) the embedding removed relative to the unintegrated data:
  (before − after) / before, clipped to [0, 1].

Bio conservation: NMI and ARI (Leiden sweep, best NMI), label ASW rescaled to (s + 1) / 2, and
``clisi`` = (L − median cLISI) / (L − 1). Aggregates: S_bio = mean of the four, S_batch = mean of the five,
overall = 0.6 S_bio + 0.4 S_batch (scIB's weights).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scelmo_desktop.core.tasks.metrics import metric_cells

BIO_METRICS = ("nmi", "ari", "asw_label", "clisi")
BATCH_METRICS = ("asw_batch", "ilisi", "kbet", "graph_connectivity", "pcr_batch")


def _codes(values) -> tuple[np.ndarray, np.ndarray]:
    classes, codes = np.unique(np.asarray(values).astype(str), return_inverse=True)
    return classes, codes


def asw_batch(X: np.ndarray, batches, labels) -> float:
    """Batch mixing within labels (on :func:`~scelmo_desktop.core.tasks.metrics.metric_cells`): per label seen in
    2+ batches (3+ cells), the mean of 1 − |silhouette by batch|, averaged over labels. In [0, 1], higher is better (1: batches mixed); NaN when no label qualifies."""
    from sklearn.metrics import silhouette_samples

    kept = metric_cells(len(X))
    X = np.asarray(X, dtype=np.float64)[kept]
    batches, labels = np.asarray(batches).astype(str)[kept], np.asarray(labels).astype(str)[kept]
    per_label = []
    for label in np.unique(labels):
        cells = labels == label
        if len(np.unique(batches[cells])) < 2 or cells.sum() < 3:
            continue  # a label seen in one batch says nothing about mixing
        s = silhouette_samples(X[cells], batches[cells], metric="euclidean")
        per_label.append(float(np.mean(1.0 - np.abs(s))))
    return float(np.mean(per_label)) if per_label else float("nan")


def lisi(X: np.ndarray, values, *, perplexity: float = 30) -> np.ndarray:
    """Per-cell LISI of ``values`` (1 = one category around the cell, n = all n equally), for the cells of
    :func:`~scelmo_desktop.core.tasks.metrics.metric_cells` (all of them up to its limit)."""
    import harmonypy

    kept = metric_cells(len(X))
    X, values = np.asarray(X, dtype=np.float64)[kept], np.asarray(values)[kept]
    perplexity = min(perplexity, (len(X) - 1) / 3)  # harmonypy takes 3 × perplexity neighbours
    frame = pd.DataFrame({"v": np.asarray(values).astype(str)})
    return np.asarray(harmonypy.compute_lisi(X, frame, ["v"], perplexity=perplexity))[:, 0]


def ilisi(X: np.ndarray, batches) -> float:
    """Batch mixing: (median iLISI − 1) / (B − 1) for B batches. In [0, 1], higher is better (1: every neighbourhood
    holds all batches equally, 0: one batch only); NaN with a single batch."""
    n = len(np.unique(np.asarray(batches).astype(str)))
    return float((np.median(lisi(X, batches)) - 1) / (n - 1)) if n > 1 else float("nan")


def clisi(X: np.ndarray, labels) -> float:
    """Label separation: (L − median cLISI) / (L − 1) for L labels. In [0, 1], higher is better (1: every
    neighbourhood holds one label, 0: all labels equally); NaN with a single label."""
    n = len(np.unique(np.asarray(labels).astype(str)))
    return float((n - np.median(lisi(X, labels))) / (n - 1)) if n > 1 else float("nan")


def _knn(X: np.ndarray, k: int) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(X) - 1)
    return NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X, return_distance=False)[:, 1:]


def kbet(X: np.ndarray, batches, labels, *, k: int = 25, alpha: float = 0.05) -> float:
    """kBET acceptance rate: per label in 2+ batches with more than ``k`` cells, the fraction of its cells whose
    ``k``-NN batch counts pass a χ² test against the label's batch proportions at ``alpha``; averaged over
    labels. In [0, 1], higher is better; NaN when no label qualifies."""
    from scipy.stats import chi2

    X = np.asarray(X, dtype=np.float64)
    batches, labels = np.asarray(batches).astype(str), np.asarray(labels).astype(str)
    per_label = []
    for label in np.unique(labels):
        cells = np.flatnonzero(labels == label)
        classes, codes = _codes(batches[cells])
        if len(classes) < 2 or len(cells) <= k:
            continue
        expected = np.bincount(codes, minlength=len(classes)) / len(cells) * k
        neighbours = _knn(X[cells], k)
        observed = np.stack([np.bincount(row, minlength=len(classes)) for row in codes[neighbours]])
        statistic = ((observed - expected) ** 2 / expected).sum(axis=1)
        p = chi2.sf(statistic, df=len(classes) - 1)
        per_label.append(float(np.mean(p >= alpha)))
    return float(np.mean(per_label)) if per_label else float("nan")


def graph_connectivity(X: np.ndarray, labels, *, k: int = 15) -> float:
    """Per label, the fraction of its cells in the largest connected component of the ``k``-NN graph (built on all
    cells) restricted to that label, averaged over labels. In (0, 1], higher is better (1: each label connected)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels).astype(str)
    neighbours = _knn(X, k)
    rows = np.repeat(np.arange(len(X)), neighbours.shape[1])
    graph = sp.csr_matrix((np.ones(rows.size), (rows, neighbours.ravel())), shape=(len(X), len(X)))
    fractions = []
    for label in np.unique(labels):
        cells = np.flatnonzero(labels == label)
        _, component = connected_components(graph[cells][:, cells], directed=False)
        fractions.append(np.bincount(component).max() / len(cells))
    return float(np.mean(fractions))


def pcr(X: np.ndarray, batches, *, n_comps: int = 50) -> float:
    """Variance-weighted mean R² of the principal components regressed on the batch one-hot."""
    from sklearn.decomposition import PCA

    X = np.asarray(X, dtype=np.float64)
    n_comps = int(min(n_comps, X.shape[1], X.shape[0] - 1))
    pca = PCA(n_components=n_comps, random_state=0).fit(X)
    scores = pca.transform(X)
    _, codes = _codes(batches)
    onehot = np.eye(codes.max() + 1)[codes]
    design = np.column_stack([np.ones(len(X)), onehot[:, 1:]])
    coef, *_ = np.linalg.lstsq(design, scores, rcond=None)
    residual = ((scores - design @ coef) ** 2).sum(axis=0)
    total = ((scores - scores.mean(axis=0)) ** 2).sum(axis=0)
    r2 = 1 - residual / np.maximum(total, 1e-12)
    return float(np.sum(r2 * pca.explained_variance_) / np.sum(pca.explained_variance_))


def pcr_comparison(X_before: np.ndarray, X_after: np.ndarray, batches) -> float:
    """Batch variance removed: (PCR before − PCR after) / PCR before, clipped to [0, 1]. Higher is better (1: no
    variance explained by batch is left, 0: none removed); NaN when the data before has none."""
    before = pcr(X_before, batches)
    if before <= 1e-12:
        return float("nan")
    return float(np.clip((before - pcr(X_after, batches)) / before, 0.0, 1.0))


def aggregate(row: dict) -> dict:
    """S_bio, S_batch and overall (0.6 / 0.4) from the metrics present (NaNs are left out of the means)."""
    bio = [row[m] for m in BIO_METRICS if m in row and np.isfinite(row[m])]
    batch = [row[m] for m in BATCH_METRICS if m in row and np.isfinite(row[m])]
    s_bio = float(np.mean(bio)) if bio else float("nan")
    s_batch = float(np.mean(batch)) if batch else float("nan")
    return {"S_bio": s_bio, "S_batch": s_batch, "overall": 0.6 * s_bio + 0.4 * s_batch}


def batch_removal(X: np.ndarray, batches, labels, *, X_unintegrated: np.ndarray) -> dict:
    """The five batch-removal scores of ``X`` (asw_batch, ilisi, kbet, graph_connectivity, and pcr_batch against
    ``X_unintegrated``); each in [0, 1], higher is better, NaN where it cannot be computed."""
    return {
        "asw_batch": asw_batch(X, batches, labels),
        "ilisi": ilisi(X, batches),
        "kbet": kbet(X, batches, labels),
        "graph_connectivity": graph_connectivity(X, labels),
        "pcr_batch": pcr_comparison(X_unintegrated, X, batches),
    }


def label_free_removal(X: np.ndarray, batches, *, X_unintegrated: np.ndarray) -> dict:
    """The batch-removal scores that need no labels (what a user without cell types can be shown): ``ilisi`` and
    ``pcr_batch`` against ``X_unintegrated``."""
    return {"ilisi": ilisi(X, batches), "pcr_batch": pcr_comparison(X_unintegrated, X, batches)}
