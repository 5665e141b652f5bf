"""Baselines run beside scELMo in every evaluation.

* PCA: the standard scanpy route users would otherwise take: on log-normalised values (normalize_total + log1p,
  prepared by :mod:`~scelmo_desktop.core.data.input_kind`), the run's gene set (the very genes scELMo describes
  and embeds: the 2,000 most variable by default), scaled to unit variance (clipped at 10), 50 principal
  components.
* Random gene table: uniform [0, 1) vectors (the original's control, METHOD.md §3.4) given to exactly the
  genes that have an LLM embedding, so the comparison isolates what the description text adds.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from scelmo_desktop.core.data.gene_selection import GeneSet
from scelmo_desktop.core.settings import DEFAULT_GENES


def pca_embedding(X, *, gene_set: GeneSet | None = None, n_comps: int = 50, seed: int = 0) -> np.ndarray:
    """The standard route's PCA of log-normalised ``X`` on ``gene_set`` (the run's, chosen on ``X``; None: the
    :data:`DEFAULT_GENES` most variable genes of ``X``)."""
    import anndata as ad
    import scanpy as sc

    gene_set = gene_set or GeneSet.choose(X, DEFAULT_GENES)
    if gene_set.total != X.shape[1]:
        raise ValueError(f"the gene set is of a matrix with {gene_set.total} genes, not {X.shape[1]}")
    if not gene_set.is_every_gene:
        X = X[:, gene_set.columns()]
    # scaling centres every gene, so the matrix becomes dense anyway; densify once, as float32
    work = ad.AnnData(X=X.toarray() if sp.issparse(X) else np.array(X, dtype=np.float32))
    sc.pp.scale(work, max_value=10)
    n_comps = int(min(n_comps, min(work.shape) - 1))
    sc.tl.pca(work, n_comps=n_comps, random_state=seed)
    return np.asarray(work.obsm["X_pca"], dtype=np.float32)


def random_table(matched: np.ndarray, dim: int, *, seed: int = 0) -> np.ndarray:
    """A (n_genes, dim) table: uniform random rows for matched genes, zero rows elsewhere."""
    rng = np.random.default_rng(seed)
    table = np.zeros((matched.shape[0], dim), dtype=np.float32)
    table[matched] = rng.random((int(matched.sum()), dim), dtype=np.float32)
    return table
