"""Which clusters the naming flags as mixing two lineages (``core/tasks/mixed_clusters.py``), against the labels,
on the real labelled files of ``benchmarks/real_data.py``:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mixed_flags.py [--work DIR] [--run NAME=FOLDER:LABEL ...]

Input: the run folders ``scelmo run FILE`` wrote with the defaults (``real_data.py --only clustering`` keeps them as
``<work>/run_<name>_default``; ``--run`` names others). The clusters the run had before its automatic splits
(``8,0`` and ``8,1`` back to ``8``) are named again as the run named them, and every named cluster of at least
``MIN_CELLS`` cells is split in two at k-means seeds 0-4 (:func:`~scelmo_desktop.core.tasks.mixed_clusters.
two_parts`). A split *separates labels* when its two parts' majority labels differ. Printed per file: each split
that names two lineages, with each test of :meth:`TwoParts.tests` and whether it separates labels; then the
counts of flags that separate labels (right) and that do not (wrong), for the full rule and for the first two tests
alone (the rule before the last two were added). Writes ``benchmarks/results/mixed_flags.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import real_files  # noqa: E402

SEEDS = range(5)
RESULTS = ROOT / "benchmarks" / "results" / "mixed_flags.json"
EARLIER_TESTS = ("two lineages", "each leads in its part")


def default_runs(work: Path) -> dict[str, tuple[Path, str]]:
    from real_data import clustering_sets

    return {name: (work / f"run_{name}_default", key) for name, key in clustering_sets()}


def splits_of_run(folder: Path, label_key: str) -> list[dict]:
    """Every split, at every seed, of the clusters a run had before its automatic splits."""
    import anndata as ad

    from scelmo_desktop.core.data.io import select_expression
    from scelmo_desktop.core.settings import PipelineSettings
    from scelmo_desktop.core.tasks.mixed_clusters import two_parts
    from scelmo_desktop.core.tasks.naming import Knowledge
    from scelmo_desktop.core.workflows.markers import markers_and_names_of_data
    from scelmo_desktop.core.workflows.naming import knowledge_for_naming

    adata = ad.read_h5ad(folder / "scelmo_result.h5ad")
    adata.obs["before_splits"] = adata.obs["scelmo_leiden"].astype(str).str.split(",").str[0]
    settings = PipelineSettings()
    naming = markers_and_names_of_data(adata, groupby="before_splits", settings=settings).naming
    expression = select_expression(adata, settings.layer, input_kind=settings.input_kind)
    symbols = [str(g) for g in expression.var_names]
    knowledge = Knowledge(*knowledge_for_naming(), settings.tissue)
    labels = adata.obs[label_key].astype(str).to_numpy()
    rows = []
    for seed in SEEDS:
        for split in two_parts(
            expression.matrix, symbols, adata.obs["before_splits"], naming.groups, knowledge, seed=seed
        ):
            majorities = [_majority(labels[part]) for part in split.parts]
            rows.append(
                {
                    "seed": seed,
                    "cluster": split.group,
                    "parts": [
                        {"type": knowledge.names.get(t, ""), "cells": len(p), "label": m[0], "share": m[1]}
                        for t, p, m in zip(split.terms, split.parts, majorities)
                    ],
                    "separates_labels": majorities[0][0] != majorities[1][0],
                    "tests": split.tests(knowledge),
                    "gates": [None if g is None else round(g, 3) for g in split.gates],
                }
            )
    return rows


def _majority(labels: np.ndarray) -> tuple[str, float]:
    values, counts = np.unique(labels, return_counts=True)
    return str(values[counts.argmax()]), round(float(counts.max() / counts.sum()), 2)


def counts(rows: list[dict], tests: tuple[str, ...] | None = None) -> dict[str, int]:
    """Flags (all of ``tests``, or every test, hold) that separate labels and that do not, over all seeds."""
    flagged = [r for r in rows if all(v for k, v in r["tests"].items() if tests is None or k in tests)]
    return {
        "right": sum(r["separates_labels"] for r in flagged),
        "wrong": sum(not r["separates_labels"] for r in flagged),
        "missed": sum(r["separates_labels"] for r in rows if r not in flagged),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=real_files.cache_dir() / "benchmark")
    parser.add_argument("--run", action="append", default=[], help="NAME=FOLDER:LABEL_KEY (instead of --work's)")
    args = parser.parse_args()
    runs = default_runs(args.work)
    if args.run:
        runs = {}
        for item in args.run:
            name, rest = item.split("=", 1)
            folder, key = rest.rsplit(":", 1)
            runs[name] = (Path(folder), key)
    results = {}
    for name, (folder, key) in runs.items():
        if not (folder / "scelmo_result.h5ad").is_file():
            print(f"{name}: no run in {folder} (run real_data.py --only clustering first)")
            continue
        rows = splits_of_run(folder, key)
        results[name] = {"splits": rows, "now": counts(rows), "earlier": counts(rows, EARLIER_TESTS)}
        print(f"\n{name}: {len(rows)} splits over seeds {SEEDS.start}-{SEEDS.stop - 1}")
        for r in rows:
            if not r["tests"]["two lineages"]:
                continue
            parts = " / ".join(f"{p['type']} ({p['cells']}; {p['label']} {p['share']:.2f})" for p in r["parts"])
            failed = [k for k, v in r["tests"].items() if not v]
            verdict = "flagged" if not failed else "not flagged: " + ", ".join(failed)
            print(
                f"  seed {r['seed']} cluster {r['cluster']}: {parts}; separates labels: "
                f"{'yes' if r['separates_labels'] else 'no'}; gates {r['gates']}; {verdict}"
            )
        print(f"  flags (right / wrong / missed): now {results[name]['now']}, earlier {results[name]['earlier']}")
    total = {
        rule: {k: sum(r[rule][k] for r in results.values()) for k in ("right", "wrong", "missed")}
        for rule in ("now", "earlier")
    }
    print(f"\nall files, seeds {SEEDS.start}-{SEEDS.stop - 1}: now {total['now']}, earlier {total['earlier']}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"runs": results, "total": total}, indent=2, default=str))


if __name__ == "__main__":
    main()
