"""Benchmark (a): scELMo ``wa`` cell-embedding throughput against the straightforward GenePT-style route.

Synthetic sparse matrix: N cells x 20,000 genes, 2,000 non-zeros per cell (10% dense), d = 384, float32, one
thread. Compared:
  * ours:   scelmo_desktop.core.embedding.cell_embedding.average_gene_vectors(X, E, mode="wa") (chunked; dense GEMM
            per chunk)
  * scipy:  row-normalise with scipy, then ``X @ E`` (what a GenePT-style notebook does)
  * numpy:  dense ``(X / X.sum(1)) @ E`` on a subset that fits in memory (the same 20k-cell block)
Peak memory is the extra memory each route allocates (tracemalloc sees numpy/scipy buffers).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_cell_embedding.py [--cells 100000]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import scipy.sparse as sp
from _results import report

from scelmo_desktop.core.embedding.cell_embedding import average_gene_vectors

GENES, NNZ_PER_CELL, DIM = 20_000, 2_000, 384


def synthetic_counts(n_cells: int, seed: int = 0) -> sp.csr_matrix:
    """Sorted, unique column indices spread over all genes: one in each block of 10 genes."""
    rng = np.random.default_rng(seed)
    stride = GENES // NNZ_PER_CELL
    indices = (
        np.arange(NNZ_PER_CELL, dtype=np.int32) * stride
        + rng.integers(0, stride, size=(n_cells, NNZ_PER_CELL), dtype=np.int32)
    ).ravel()
    data = rng.gamma(1.0, 2.0, size=n_cells * NNZ_PER_CELL).astype(np.float32) + 1
    indptr = np.arange(0, n_cells * NNZ_PER_CELL + 1, NNZ_PER_CELL, dtype=np.int64)
    return sp.csr_matrix((data, indices, indptr), shape=(n_cells, GENES))


def scipy_route(X, E):
    totals = np.asarray(X.sum(axis=1)).ravel()
    normalised = sp.diags(1.0 / totals).astype(np.float32) @ X
    return np.asarray(normalised @ E)


def numpy_route(X_dense, E):
    return (X_dense / X_dense.sum(axis=1, keepdims=True)) @ E


def measure(fn, *args):
    tracemalloc.start()
    started = time.perf_counter()
    out = fn(*args)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--dense-cells", type=int, default=20_000)
    args = parser.parse_args()
    X = synthetic_counts(args.cells)
    E = np.random.default_rng(1).normal(size=(GENES, DIM)).astype(np.float32)

    ours, t_ours, m_ours = measure(average_gene_vectors, X, E)
    reference, t_scipy, m_scipy = measure(scipy_route, X, E)
    np.testing.assert_allclose(ours, reference, rtol=2e-3, atol=1e-4)
    block = X[: args.dense_cells].toarray()
    dense_out, t_numpy, m_numpy = measure(numpy_route, block, E)
    np.testing.assert_allclose(ours[: args.dense_cells], dense_out, rtol=2e-3, atol=1e-4)
    ours_block, t_ours_block, _ = measure(average_gene_vectors, X[: args.dense_cells], E)

    flops = 2.0 * args.cells * GENES * DIM  # a dense GEMM over the full matrix: the arithmetic floor we chase
    result = {
        "cells": args.cells,
        "genes": GENES,
        "nnz_per_cell": NNZ_PER_CELL,
        "dim": DIM,
        "ours_s": round(t_ours, 2),
        "scipy_s": round(t_scipy, 2),
        "speedup_vs_scipy": round(t_scipy / t_ours, 2),
        "ours_peak_mb": round(m_ours / 1e6),
        "scipy_peak_mb": round(m_scipy / 1e6),
        "dense_numpy_cells": args.dense_cells,
        "dense_numpy_s": round(t_numpy, 2),
        "ours_same_cells_s": round(t_ours_block, 2),
        "speedup_vs_dense_numpy": round(t_numpy / t_ours_block, 2),
        "dense_numpy_peak_mb": round(m_numpy / 1e6),
        "ours_gflops": round(flops / t_ours / 1e9, 1),
    }
    return report("cell_embedding", result)


if __name__ == "__main__":
    main()
