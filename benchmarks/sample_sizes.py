"""What integration does to samples that differ in nothing: PBMC 3k split at random into samples of a given size
(no batch effect to remove), the label-free default integration against the unintegrated space, and per-sample
gene scaling alone. Measures the floor below which ``scelmo run`` does not integrate by itself
(``core.tasks.integration.MIN_SAMPLE_CELLS``) and what many small samples cost.

Protocol: the run's gene set (2,000 genes with a text vector, facts table), kNN 15, Leiden sweep 0.2–2.0 keeping
the best NMI, mean over Leiden seeds 0–2; random split draw 0 unless ``--draws``.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/sample_sizes.py [--sizes 25,50,100,200,675]

Writes ``benchmarks/results/sample_sizes.json`` and prints one line per row.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
RESULTS = ROOT / "benchmarks" / "results" / "sample_sizes.json"
SEEDS = (0, 1, 2)


def main(argv=None) -> None:
    import space_candidates as candidates

    from scelmo_desktop.core.embedding.cell_vectors import Reduction, smoothed_expression
    from scelmo_desktop.core.tasks.integration import integrate_embedding

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="25,50,100,200,337,675")
    parser.add_argument("--draws", type=int, default=1, help="random splits 0..N-1 per size")
    args = parser.parse_args(argv)
    adata, labels = candidates.load_set("pbmc3k")
    X, E = candidates.gene_set_inputs(adata)

    def scores(Z):
        nmi, ari = np.array([candidates.score(Z, labels, seed) for seed in SEEDS]).T
        return {"nmi": float(nmi.mean()), "ari": float(ari.mean())}

    smoothed = smoothed_expression(X, E)
    rows = {"unintegrated": scores(Reduction.fit(smoothed).apply(smoothed))}
    print("unintegrated", rows["unintegrated"], flush=True)
    for size in (int(value) for value in args.sizes.split(",")):
        for draw in range(args.draws):
            batches = (np.random.default_rng(draw).permutation(len(X)) // size).astype(str)
            space = integrate_embedding(X, E, batches)
            scaled = smoothed_expression(X, E, batches=batches)
            for name, Z in (
                ("integrated (default)", space.embedding),
                ("per-sample scaling only", Reduction.fit(scaled).apply(scaled)),
            ):
                key = f"{size} cells x {len(np.unique(batches))} samples, draw {draw}: {name}"
                rows[key] = {**scores(Z), **space.record()}
                print(key, rows[key], flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
