"""Per-cell scores averaged over each cell's neighbours before a call is made.

A marker score from one cell's 10–25 genes is noisy on sparse 10x data (most markers read 0 in most cells), while
its neighbours in expression space are the same type. Averaging each cell's scores with its neighbours' (a
row-normalised kNN graph with self loops, applied ``steps`` times) is the cell-level form of what cluster-level
annotation does, without choosing a clustering. On curated-marker scoring it raises accuracy on PBMC 3k, Kang
control and pbmc68k_reduced alike (benchmarks/no_reference_annotation.py, smoothed against unsmoothed).

Two graphs: ``expression`` is the scanpy route (2,000 highly variable genes of the log data, scaled, 50 PCs,
15 neighbours); ``embedding`` uses a cell embedding (``obsm['X_scelmo']``), so the text table decides who is
whose neighbour.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from scelmo_desktop.core._infra.errors import ScelmoError

SMOOTHINGS = ("expression", "embedding", "none")
DEFAULT_SMOOTHING = "expression"
NEIGHBOURS = 15
# a second pass reaches neighbours of neighbours: it helped Kang control and cost PBMC 3k and pbmc68k little
# (tuning grid of benchmarks/no_reference_annotation.py)
STEPS = 2


def averaging_operator(connectivities) -> sp.csr_matrix:
    """Row-normalised ``connectivities + I``: multiplying scores by it averages each cell with its neighbours."""
    graph = sp.csr_matrix(connectivities, dtype=np.float32) + sp.identity(
        connectivities.shape[0], np.float32, format="csr"
    )
    return sp.diags(1.0 / np.asarray(graph.sum(axis=1)).ravel()) @ graph


def expression_graph(log_expression, *, seed: int = 0, n_neighbors: int = NEIGHBOURS):
    """The scanpy route's kNN graph on log-normalised expression (cells x genes), as an averaging operator;
    None when the file is too small for one (under 3 cells or 3 genes)."""
    import anndata as ad
    import scanpy as sc

    n_cells, n_genes = log_expression.shape
    if n_cells < 3 or n_genes < 3:
        return None
    cells = ad.AnnData(sp.csr_matrix(log_expression, dtype=np.float32))
    if n_genes > 2000:
        sc.pp.highly_variable_genes(cells, n_top_genes=2000)
        cells = cells[:, cells.var["highly_variable"].to_numpy()].copy()
    sc.pp.scale(cells, max_value=10)
    n_pcs = min(50, n_cells - 1, cells.n_vars - 1)
    sc.pp.pca(cells, n_comps=n_pcs, random_state=seed)
    return _neighbour_operator(cells, "X_pca", n_neighbors, seed)


def embedding_graph(vectors, *, seed: int = 0, n_neighbors: int = NEIGHBOURS):
    """The kNN graph of a cell embedding (cells x dimensions), as an averaging operator; None under 3 cells."""
    import anndata as ad
    import pandas as pd

    vectors = np.asarray(vectors, dtype=np.float32)
    if len(vectors) < 3:
        return None
    cells = ad.AnnData(obsm={"X_rep": vectors}, obs=pd.DataFrame(index=[str(i) for i in range(len(vectors))]))
    return _neighbour_operator(cells, "X_rep", n_neighbors, seed)


def _neighbour_operator(cells, use_rep: str, n_neighbors: int, seed: int):
    import scanpy as sc

    sc.pp.neighbors(cells, use_rep=use_rep, n_neighbors=min(n_neighbors, cells.n_obs - 1), random_state=seed)
    return averaging_operator(cells.obsp["connectivities"])


def check_smoothing(how: str) -> str:
    """``how`` if it names a smoothing, else the error saying which do (checked before any work is done)."""
    if how not in SMOOTHINGS:
        raise ScelmoError(f"Unknown smoothing '{how}'; use one of {', '.join(SMOOTHINGS)}.")
    return how


def smoothing_graph(how: str, *, log_expression, adata=None, embedding_key: str = "X_scelmo", seed: int = 0):
    """The averaging operator that ``how`` names (``expression``, ``embedding``, ``none`` → None)."""
    if check_smoothing(how) == "none":
        return None
    if how == "embedding":
        if adata is None or embedding_key not in adata.obsm:
            raise ScelmoError(
                f"Smoothing over the embedding needs obsm['{embedding_key}']; embed the cells first "
                "(scelmo embed), or smooth over expression."
            )
        return embedding_graph(adata.obsm[embedding_key], seed=seed)
    return expression_graph(log_expression, seed=seed)


def smooth(scores: np.ndarray, operator, *, steps: int = STEPS) -> np.ndarray:
    """``scores`` (cells x types) averaged over the graph ``steps`` times (unchanged when ``operator`` is None)."""
    if operator is None:
        return scores
    for _ in range(steps):
        scores = np.asarray(operator @ scores, dtype=np.float32)
    return scores
