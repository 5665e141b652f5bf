"""``wa``+``aa`` cell embeddings of an .h5ad file: in memory against Dask (blocks read by the workers).

Synthetic counts (``bench_cell_embedding.synthetic_counts``: N cells x 20,000 genes, 2,000 non-zeros a cell) are
written once to an .h5ad; then both routes start from the file:
  * in memory: ``anndata.read_h5ad`` then ``average_gene_vectors`` for wa and aa (the app's default path);
  * Dask: ``scelmo_desktop.core.embedding.dask_embedding`` on a LocalCluster (1 and 2 workers, 1 thread each), 20k-cell
    blocks, the file never read by the client.
Time and peak resident memory (the client plus its worker processes) are reported; the outputs must agree.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dask_embedding.py [--cells 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import PeakRSS, report
from bench_cell_embedding import DIM, GENES, synthetic_counts

from scelmo_desktop.core.embedding.cell_embedding import average_gene_vectors
from scelmo_desktop.core.embedding.dask_embedding import average_gene_vectors_dask, dask_client, open_lazy


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--chunk-cells", type=int, default=20_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    import anndata as ad

    E = np.random.default_rng(1).normal(size=(GENES, DIM)).astype(np.float32)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cells.h5ad"
        X = synthetic_counts(args.cells)
        ad.AnnData(X=X).write_h5ad(path)
        del X
        file_mb = path.stat().st_size / 1e6

        with PeakRSS() as memory:
            started = time.perf_counter()
            matrix = ad.read_h5ad(path).X
            reference = {mode: average_gene_vectors(matrix, E, mode=mode) for mode in ("wa", "aa")}
            seconds = time.perf_counter() - started
            del matrix
        rows.append(
            {
                "route": "in memory (read_h5ad + average_gene_vectors)",
                "workers": 0,
                "seconds": round(seconds, 1),
                "peak_mb": round(memory.peak_mb),
            }
        )
        print(rows[-1], flush=True)

        for workers in args.workers:
            with PeakRSS(children=True) as memory:
                with dask_client(n_workers=workers) as client:
                    started = time.perf_counter()  # cluster start-up (~2-4 s) is not counted
                    lazy, _, _ = open_lazy(path, chunk_cells=args.chunk_cells)
                    out = average_gene_vectors_dask(lazy, E, client=client)
                    seconds = time.perf_counter() - started
            for mode in ("wa", "aa"):
                np.testing.assert_allclose(out[mode], reference[mode], rtol=1e-4, atol=1e-6)
            rows.append(
                {
                    "route": f"Dask LocalCluster, {workers} worker(s) x 1 thread",
                    "workers": workers,
                    "seconds": round(seconds, 1),
                    "peak_mb": round(memory.peak_mb),
                    "note": "peak = client + workers; includes the (cells x 384 x 2) float32 result",
                }
            )
            print(rows[-1], flush=True)
    return report(
        "dask_embedding",
        {
            "cells": args.cells,
            "genes": GENES,
            "nnz_per_cell": 2000,
            "dim": DIM,
            "h5ad_mb": round(file_mb),
            "chunk_cells": args.chunk_cells,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
