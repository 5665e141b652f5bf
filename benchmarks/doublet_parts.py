"""Scrublet on a sample scored whole or in random parts (``core/qc/doublets.scored_parts``): how much of the doublet
scores' ranking the split costs, on real cells with planted doublets.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/doublet_parts.py        # about 4 minutes

Kang 2018's 13,576 cells (demultiplexed by genotype, so nearly free of doublets) plus 8% planted heterotypic
doublets (the counts of two cells of different types added, as Scrublet itself simulates them), shuffled; then
scanpy's Scrublet as the app runs it on the whole sample and in 2 and 3 random parts (each with its own simulated
doublets and threshold). AUROC of the doublet score for the planted doublets, the calls' precision and recall,
and the seconds. Results: ``benchmarks/results/doublet_parts.json``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from _results import report  # noqa: E402

PLANTED_SHARE, SEED = 0.08, 1


def planted(counts: sp.csr_matrix, types: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """The cells and ``PLANTED_SHARE`` heterotypic doublets, shuffled; and which rows are doublets."""
    rng = np.random.default_rng(SEED)
    n, k = counts.shape[0], int(PLANTED_SHARE * counts.shape[0])
    first, second = rng.integers(0, n, 4 * k), rng.integers(0, n, 4 * k)
    different = types[first] != types[second]
    first, second = first[different][:k], second[different][:k]
    cells = sp.vstack([counts, counts[first] + counts[second]]).tocsr()
    truth = np.r_[np.zeros(n, bool), np.ones(k, bool)]
    order = rng.permutation(cells.shape[0])
    return cells[order], truth[order]


def scored(cells: sp.csr_matrix, truth: np.ndarray, n_parts: int) -> dict:
    from sklearn.metrics import roc_auc_score

    from scelmo_desktop.core.qc.doublets import _scrublet

    scores, called = np.full(cells.shape[0], np.nan), np.zeros(cells.shape[0], bool)
    started = time.perf_counter()
    for part in np.array_split(np.random.default_rng(0).permutation(cells.shape[0]), n_parts):
        part = np.sort(part)
        part_scores, threshold = _scrublet(cells[part], 0)
        scores[part] = part_scores
        if threshold is not None:
            called[part] = part_scores > threshold
    finite = np.isfinite(scores)
    hits = int((called & truth).sum())
    return {
        "parts": n_parts,
        "cells_per_part": int(cells.shape[0] // n_parts),
        "auroc": round(float(roc_auc_score(truth[finite], scores[finite])), 4),
        "called": int(called.sum()),
        "precision": round(hits / called.sum(), 3) if called.any() else None,
        "recall": round(hits / truth.sum(), 3),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    import anndata as ad
    import real_files

    kang = ad.read_h5ad(real_files.kang_sparse_file(real_files.cache_dir()))
    cells, truth = planted(sp.csr_matrix(kang.X, dtype=np.float32), kang.obs["cell_type"].astype(str).to_numpy())
    rows = []
    for n_parts in (1, 2, 3):
        rows.append(scored(cells, truth, n_parts))
        print(rows[-1], flush=True)
    report("doublet_parts", {"cells": int(cells.shape[0]), "planted": int(truth.sum()), "rows": rows})


if __name__ == "__main__":
    main()
