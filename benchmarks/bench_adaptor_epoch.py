"""Seconds per training epoch of the light adaptor: the brute-force triplet loss against the O(B² log B) one.

Data, synthetic so that nothing is downloaded, at the size of Kang 2018 (13.5k cells): a CSR matrix with ~8%
non-zeros of log1p(counts)-like values, a random 384-d gene table, 8 random labels; ``train_adaptor`` with batch
512, 2 epochs, no early stopping (so no validation pass), at 2,000 genes (highly variable genes) and 14,000 genes
(all genes, where the per-gene MLP runs over 7x more rows each step). "before" runs the same training loop with
the former brute-force triplet loss (kept below) patched in, "after" the product's.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_adaptor_epoch.py [--genes 2000 14000] [--epochs 2]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_adaptor_epoch.py --kang --genes 2000 14053 --epochs 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import scipy.sparse as sp
import torch
from _results import report

from scelmo_desktop.core.tasks import adaptor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference_triplet import brute_force_triplet_loss  # noqa: E402


def synthetic_data(n_cells: int, n_genes: int, density: float, n_labels: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = sp.random(n_cells, n_genes, density=density, format="csr", dtype=np.float32, random_state=rng)
    X.data = np.log1p(rng.poisson(2.0, X.nnz) + 1).astype(np.float32)  # log-normalised-like: 0.7 to ~2.5
    E = rng.normal(size=(n_genes, 384)).astype(np.float32)
    labels = rng.integers(0, n_labels, n_cells).astype(str)
    return X, E, labels


def kang_data(n_genes: int):
    """Real Kang 2018 (13,576 cells): log-normalised counts of its ``n_genes`` most variable genes (all 14,053 for
    n_genes >= 14,053) and its 8 cell types; a random 384-d table (the cost does not depend on its values)."""
    import real_files

    from scelmo_desktop.core.data.gene_selection import select_genes
    from scelmo_desktop.core.data.input_kind import prepare

    kang = real_files.load("kang")
    X, _ = prepare(kang.X)
    if n_genes < X.shape[1]:
        X = X[:, np.sort(select_genes(X, n_genes))]
    E = np.random.default_rng(0).normal(size=(X.shape[1], 384)).astype(np.float32)
    return sp.csr_matrix(X), E, kang.obs["cell_type"].astype(str).to_numpy()


def seconds_per_epoch(X, E, labels, epochs: int) -> tuple[float, list[float]]:
    trained = adaptor.train_adaptor(
        X,
        E,
        labels,
        genes=[f"G{i}" for i in range(X.shape[1])],
        epochs=epochs,
        batch_size=512,
        early_stopping=False,
        seed=0,
    )
    return trained.seconds / epochs, [h["loss"] for h in trained.history if "loss" in h]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=13_500)
    parser.add_argument("--genes", type=int, nargs="+", default=[2_000, 14_000])
    parser.add_argument("--density", type=float, default=0.08)
    parser.add_argument("--labels", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--kang", action="store_true", help="the real Kang 2018 matrix and labels instead")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the numbers in benchmarks/README.md are single-threaded

    rows = []
    for n_genes in args.genes:
        X, E, labels = (
            kang_data(n_genes) if args.kang else synthetic_data(args.cells, n_genes, args.density, args.labels)
        )
        with mock.patch.object(adaptor, "triplet_loss", brute_force_triplet_loss):
            before, before_losses = seconds_per_epoch(X, E, labels, args.epochs)
        after, after_losses = seconds_per_epoch(X, E, labels, args.epochs)
        # same seed, same batches: the epoch losses agree up to float rounding carried through the steps
        loss_gap = max(abs(a - b) / abs(b) for a, b in zip(after_losses, before_losses))
        rows.append(
            {
                "genes": n_genes,
                "before_s_per_epoch": round(before, 2),
                "after_s_per_epoch": round(after, 2),
                "speed_up": round(before / after, 1),
                "max_relative_epoch_loss_gap": float(f"{loss_gap:.2g}"),
            }
        )
        print(f"{n_genes} genes: before {before:.2f} s/epoch, after {after:.2f} s/epoch", flush=True)

    report(
        "adaptor_epoch_kang" if args.kang else "adaptor_epoch",
        {
            "data": "Kang 2018" if args.kang else "synthetic",
            "cells": args.cells,
            "density": args.density,
            "labels": args.labels,
            "epochs": args.epochs,
            "batch_size": 512,
            "torch_threads": 1,
            "runs": rows,
        },
    )
    print(
        "\nKang 2018, 13,576 cells, 8 cell types"
        if args.kang
        else f"\n{args.cells:,} cells, {args.density:.0%} non-zeros, {args.labels} labels",
        "batch 512, 1 thread\n",
    )
    print("| genes | before (brute-force triplet) s/epoch | after s/epoch | speed-up | epoch-loss gap |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['genes']:,} | {row['before_s_per_epoch']:.2f} | {row['after_s_per_epoch']:.2f} | "
            f"{row['speed_up']:.1f}x | {row['max_relative_epoch_loss_gap']:.1g} |"
        )


if __name__ == "__main__":
    main()
