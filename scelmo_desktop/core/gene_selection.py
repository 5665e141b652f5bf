"""Which genes to describe first when a run is bounded (``--max-genes``): most variable genes first.

Describing costs seconds per gene on a CPU, so a bounded run should spend them on the genes that carry the
most cell-to-cell signal. Genes are ranked by scanpy's normalised dispersion (Seurat flavour), computed on
log-normalised values (counts are normalised and log-transformed on a copy first).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def looks_like_counts(X) -> bool:
    values = X.data if sp.issparse(X) else np.asarray(X).ravel()
    sample = values[: 100_000]
    return bool(sample.size) and float(sample.max()) > 50 and bool(np.all(np.mod(sample, 1) == 0))


def rank_genes_by_variability(X) -> np.ndarray:
    """Gene indices ordered from most to least variable (genes with no expression last)."""
    import anndata as ad
    import scanpy as sc

    work = ad.AnnData(X=X.copy())
    if looks_like_counts(work.X):
        sc.pp.normalize_total(work, target_sum=1e4)
        sc.pp.log1p(work)
    sc.pp.highly_variable_genes(work, flavor="seurat")
    dispersion = work.var["dispersions_norm"].to_numpy(dtype=float)
    dispersion = np.where(np.isfinite(dispersion), dispersion, -np.inf)
    return np.argsort(-dispersion, kind="stable")


def select_genes(X, max_genes: int | None) -> np.ndarray:
    """Indices of the genes to describe: all of them, or the ``max_genes`` most variable."""
    n_genes = X.shape[1]
    if max_genes is None or max_genes >= n_genes:
        return np.arange(n_genes)
    return rank_genes_by_variability(X)[:max_genes]
