"""Cell embeddings from a gene table: scELMo's ``aa`` and ``wa`` (METHOD.md §2.1), sparse-aware and chunked.

    aa:  e_i = (1/G) · Σ_g X_ig · E_g            G counts every gene, matched or not
    wa:  e_i = Σ_g (X_ig / Σ_h X_ih) · E_g       the row sum runs over every gene, matched or not

Genes without an embedding are zero rows of E. They still count in both denominators (as in the original),
but they are dropped from the matrix product itself, which is the same sum with less work.

Speed: the product runs over row chunks; a chunk whose density makes dense BLAS faster than sparse
arithmetic is densified (only the chunk, never the whole matrix) and multiplied by a GEMM.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, check_cancel, no_progress

MODES = ("wa", "aa")
# Above this fraction of non-zeros a densified chunk times E (BLAS GEMM) beats scipy's sparse product
# (measured in benchmarks/bench_cell_embedding.py).
DENSE_CHUNK_DENSITY = 0.005
CHUNK_ELEMENTS = 1 << 24  # ~64 MB of float32 per densified chunk
TINY_TOTAL = 1e-30  # below this a cell's total is handled in float64 (see average_gene_vectors)


class ZeroExpressionWarning(UserWarning):
    """Some cells have zero total expression, so their weighted average is undefined (set to zero)."""


def average_gene_vectors(
    X,
    E: np.ndarray,
    *,
    mode: str = "wa",
    chunk_size: int | None = None,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> np.ndarray:
    """Return the (n_cells, d) float32 cell embedding of expression ``X`` (cells x genes) with table ``E``.

    ``X`` may be dense or sparse; for ``wa`` it must be non-negative. Cells whose total is zero get a zero
    vector and a :class:`ZeroExpressionWarning` (the original code produced NaN there).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    n_cells, n_genes = X.shape
    E = np.asarray(E, dtype=np.float32)
    if E.shape[0] != n_genes:
        raise ValueError(f"gene table has {E.shape[0]} rows but the matrix has {n_genes} genes")
    if sp.issparse(X):
        X = sp.csr_matrix(X)
    matched = np.flatnonzero(np.any(E != 0, axis=1))
    E_matched = np.ascontiguousarray(E[matched])

    if mode == "wa":
        totals = np.asarray(X.sum(axis=1)).ravel().astype(np.float64)
        zero = totals == 0
        if zero.any():
            warnings.warn(
                f"{int(zero.sum())} of {n_cells} cells have zero total expression; their 'wa' embedding is set to "
                "zero. Remove them first (sc.pp.filter_cells(adata, min_genes=1)).",
                ZeroExpressionWarning,
                stacklevel=2,
            )
        scale64 = np.where(zero, 0.0, 1.0 / np.where(zero, 1.0, totals))
        # a total this small (denormal values) has a reciprocal beyond float32, and its float32 products lose
        # their precision: such cells are weighted in float64 before the product, after the chunked loop
        degenerate = np.flatnonzero(~zero & (totals < TINY_TOTAL))
        scale64[degenerate] = 0.0
        row_scale = scale64.astype(np.float32)
    else:
        row_scale = np.full(n_cells, 1.0 / n_genes, dtype=np.float32)
        degenerate = np.zeros(0, dtype=np.int64)

    out = np.empty((n_cells, E.shape[1]), dtype=np.float32)
    if matched.size == 0:
        out[:] = 0
        return out
    chunk = chunk_size or max(1, CHUNK_ELEMENTS // max(1, matched.size))
    buffer = None  # one dense chunk buffer reused across chunks: allocation and page faults cost as much as the copy
    for start in range(0, n_cells, chunk):
        check_cancel(cancel)
        stop = min(start + chunk, n_cells)
        target = out[start:stop]
        block = X[start:stop]
        if sp.issparse(block):
            if matched.size < n_genes:
                block = block[:, matched]
            if block.nnz / max(1, block.shape[0] * block.shape[1]) < DENSE_CHUNK_DENSITY:
                target[:] = block @ E_matched
            else:
                if buffer is None or buffer.shape[0] < block.shape[0]:
                    buffer = np.zeros((block.shape[0], matched.size), dtype=np.float32)
                dense = buffer[: block.shape[0]]
                dense.fill(0)
                block.toarray(out=dense)
                np.matmul(dense, E_matched, out=target)
        else:
            dense = np.asarray(block if matched.size == n_genes else block[:, matched], dtype=np.float32)
            np.matmul(dense, E_matched, out=target)
        target *= row_scale[start:stop, None]
        progress(stop, n_cells, f"{mode} embedding")
    if degenerate.size:
        rows = X[degenerate]
        rows = (rows.toarray() if sp.issparse(rows) else np.asarray(rows))[:, matched].astype(np.float64)
        out[degenerate] = ((rows / totals[degenerate, None]) @ E_matched).astype(np.float32)
    return out
