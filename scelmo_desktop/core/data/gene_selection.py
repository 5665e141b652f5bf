"""The gene set an embedding is built on: the most variable genes, as the standard scanpy route picks them.

Every cell vector is an average over genes, so genes that carry no cell-to-cell signal only add noise, and on a
raw 10x file most of the 20–35k genes are such genes. Genes are ranked by scanpy's normalised dispersion in the Cell
Ranger flavour (dispersion normalised by the median and MAD of its mean-expression bin) on log-normalised values
(:mod:`scelmo_desktop.core.data.input_kind` prepares them), after leaving out the genes seen in fewer than
:data:`MIN_CELLS` cells or :data:`MIN_CELL_FRACTION` of the cells. Measured on raw PBMC 3k: the Seurat flavour
(mean/sd normalisation) puts genes seen in a handful of cells first (CEP128, DOK3, CTB-113I20.2, …; LYZ 265th,
MS4A1 1,786th) even after that filter; the Cell Ranger flavour puts PPBP, PF4, GZMB, CD79A first (MS4A1 40th).
:data:`DEFAULT_GENES` (2,000, as the standard route) is the default everywhere.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from scelmo_desktop.core.settings import DEFAULT_GENES

MIN_CELLS, MIN_CELL_FRACTION = 3, 0.001


def cells_expressing(X) -> np.ndarray:
    """Per gene, the number of cells with a non-zero value."""
    if sp.issparse(X):
        return np.bincount(sp.csr_matrix(X).indices, minlength=X.shape[1])
    return np.count_nonzero(np.asarray(X), axis=0)


def rank_genes_by_variability(X) -> np.ndarray:
    """Gene indices of log-normalised ``X``, most variable first; rarely seen genes come after all others."""
    import anndata as ad
    import scanpy as sc

    n_cells, n_genes = X.shape
    floor = max(MIN_CELLS, math.ceil(MIN_CELL_FRACTION * n_cells)) if n_cells > MIN_CELLS else 1
    detected = cells_expressing(X)
    eligible = np.flatnonzero(detected >= floor)
    score = np.full(n_genes, -np.inf)
    if eligible.size > 1 and n_cells > 1:
        work = ad.AnnData(X=X[:, eligible].copy() if sp.issparse(X) else np.array(X[:, eligible]))
        try:
            sc.pp.highly_variable_genes(work, flavor="cell_ranger", n_bins=min(20, eligible.size))
            dispersion = work.var["dispersions_norm"].to_numpy(dtype=float)
        except ValueError:  # mean-expression bins need distinct means (a tiny or degenerate file has few)
            dispersion = _dispersion(work.X)
        score[eligible] = np.where(np.isfinite(dispersion), dispersion, -1e9)
    # ties (and the rare genes, all at -inf) fall back to how many cells express the gene
    return np.lexsort((-detected, -score))


def _dispersion(X) -> np.ndarray:
    """Variance over mean of the de-logged values, per gene (the un-normalised dispersion)."""
    values = np.expm1(X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64))
    mean = values.mean(axis=0)
    return np.where(mean > 0, values.var(axis=0) / np.where(mean > 0, mean, 1.0), 0.0)


def select_genes(X, max_genes: int | None = DEFAULT_GENES) -> np.ndarray:
    """Indices of the gene set, most variable first: the ``max_genes`` most variable, or every gene (None)."""
    ranked = rank_genes_by_variability(X)
    return ranked if max_genes is None else ranked[:max_genes]
