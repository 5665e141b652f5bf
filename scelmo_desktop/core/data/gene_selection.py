"""The gene set an embedding is built on: the most variable genes, as the standard scanpy route picks them.

Every cell vector is an average over genes, so genes that carry no cell-to-cell signal only add noise, and on a
raw 10x file most of the 20–35k genes are such genes. Genes are ranked by scanpy's normalised dispersion in the Cell
Ranger flavour (dispersion normalised by the median and MAD of its mean-expression bin) on log-normalised values
(:mod:`scelmo_desktop.core.data.input_kind` prepares them), after leaving out the genes seen in fewer than
:data:`MIN_CELLS` cells or :data:`MIN_CELL_FRACTION` of the cells. On raw PBMC 3k the Seurat flavour
(mean/sd normalisation) puts genes seen in a handful of cells first (CEP128, DOK3, CTB-113I20.2, …) and classic
markers such as LYZ and MS4A1 far down even after that filter; the Cell Ranger flavour puts PPBP, PF4, GZMB, CD79A
first, with MS4A1 near the top (the clustering this gene set gives: benchmarks/real_data.py).
:data:`DEFAULT_GENES` (2,000, as the standard route) is the default everywhere.

A run chooses its :class:`GeneSet` once (:meth:`GeneSet.choose`) and passes it on: the genes described, the table
rows the embedding keeps and the PCA baseline's genes are then the same genes by construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


@dataclass(frozen=True, eq=False)
class GeneSet:
    """The gene set of one expression matrix, chosen once per run: column indices, most variable first."""

    indices: np.ndarray  # column indices of the matrix, most variable first
    total: int  # the matrix's number of genes (columns)

    @classmethod
    def choose(cls, X, max_genes: int | None = DEFAULT_GENES) -> GeneSet:
        """The ``max_genes`` most variable genes of log-normalised ``X`` (None: every gene, ranked)."""
        return cls(indices=np.asarray(select_genes(X, max_genes), dtype=np.intp), total=int(X.shape[1]))

    @property
    def size(self) -> int:
        return int(len(self.indices))

    @property
    def is_every_gene(self) -> bool:
        """Whether the set leaves no gene of the matrix out."""
        return self.size >= self.total

    def columns(self) -> np.ndarray:
        """The indices in the matrix's own column order."""
        return np.sort(self.indices)

    def mask(self) -> np.ndarray:
        """A boolean per matrix column: in the set or not."""
        keep = np.zeros(self.total, dtype=bool)
        keep[self.indices] = True
        return keep

    def names(self, symbols) -> list[str]:
        """The set's entries of ``symbols`` (one per matrix column), most variable first."""
        return [symbols[i] for i in self.indices]
