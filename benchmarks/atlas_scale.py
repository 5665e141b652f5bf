"""Atlas scale: approximate kNN (pynndescent through scanpy), Leiden and UMAP on a synthetic cell embedding.

The embedding is what the pipeline clusters: N cells x 384 (all-MiniLM-L6-v2's width), float32, drawn as 30
Gaussian cell types of unequal size around unit-norm centres (cosine-like geometry, like scELMo-wa vectors).
Each step is timed and its peak resident memory (RSS above the step's start, and the process total) recorded;
the steps are the ones in :mod:`scelmo_desktop.core.tasks.cluster`, so this measures the app's own path.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/atlas_scale.py [--sizes 100000 300000 1000000]

Results are written after each size, so a long run that is stopped keeps what it finished.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import anndata as ad
import numpy as np
from _results import PeakRSS, report

from scelmo_desktop.core.tasks import cluster, metrics

DIM, N_TYPES = 384, 30


def synthetic_embedding(n_cells: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(N_TYPES, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    sizes = rng.dirichlet(np.full(N_TYPES, 2.0))
    labels = rng.choice(N_TYPES, size=n_cells, p=sizes)
    X = np.empty((n_cells, DIM), dtype=np.float32)
    for start in range(0, n_cells, 100_000):  # in blocks: never a float64 copy of the whole matrix
        stop = min(start + 100_000, n_cells)
        X[start:stop] = centres[labels[start:stop]] + rng.normal(scale=0.06, size=(stop - start, DIM))
    return X, labels


def run_size(n_cells: int, seed: int) -> dict:
    X, labels = synthetic_embedding(n_cells, seed)
    adata = ad.AnnData(obs={"cell": np.arange(n_cells).astype(str)}, obsm={"X_scelmo": X})
    row = {"cells": n_cells, "dim": DIM}
    steps = (
        ("knn", lambda: cluster.neighbors(adata, "X_scelmo", seed=seed)),
        ("leiden", lambda: cluster.leiden(adata, "X_scelmo_neighbors", 1.0, seed=seed)),
        ("umap", lambda: cluster.umap(adata, "X_scelmo_neighbors", seed=seed)),
    )
    for name, step in steps:
        with PeakRSS() as memory:
            started = time.perf_counter()
            value = step()
            row[f"{name}_s"] = round(time.perf_counter() - started, 1)
        row[f"{name}_peak_mb"] = round(memory.peak_mb)
        row[f"{name}_process_mb"] = round(memory.total_mb)
        if name == "leiden":
            row["n_clusters"] = int(len(np.unique(value)))
            row["leiden_ari_vs_truth"] = round(metrics.ari(labels.astype(str), value), 3)
        print(name, n_cells, row[f"{name}_s"], "s", row[f"{name}_peak_mb"], "MB", flush=True)
    row["total_s"] = round(row["knn_s"] + row["leiden_s"] + row["umap_s"], 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} vCPU",
        "threads": os.environ.get("OMP_NUM_THREADS", "all"),
        "rows": [],
    }
    for n_cells in args.sizes:
        result["rows"].append(run_size(n_cells, args.seed))
        report("atlas_scale", result)


if __name__ == "__main__":
    main()
