"""Cell calling on an unfiltered PBMC 3k, and the time of intake against scanpy's reader on the same file.

The unfiltered file is real PBMC 3k (2,700 cells, fetched from a PyPI wheel by ``tests/real_files.py``) plus
simulated empty droplets whose UMIs are drawn from the ambient profile (the pooled expression of the cells),
written as Cell Ranger's ``raw_feature_bc_matrix.h5`` (``tests/cellranger_files.py``). Scenarios:

- ``20k empties``, ``60k empties``: 1-60 UMIs per empty droplet;
- ``60k empties, heavy tail``: as above, plus 3,000 droplets with 60-500 UMIs (debris, ambient-rich droplets);

For each: recall and precision of the called barcodes against the 2,700 real cells, for the ordmag rule with the
number of cells estimated (the default) and with Cell Ranger 2's default guess of 3,000.

Timing (median of 5, after one warm-up): ``open_data`` (read + cell calling) against ``sc.read_10x_h5`` (read
only, ``gex_only=False``) on the 60k file; ``open_data`` with cell calling off is the like-for-like read.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cell_calling.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import cellranger_files as cf  # noqa: E402
import real_files  # noqa: E402
from _results import report  # noqa: E402

from scelmo_desktop.core.data.cell_calling import call_cells  # noqa: E402
from scelmo_desktop.core.workflows.intake import open_data  # noqa: E402


def _scenario(run, name: str):
    if name == "20k empties":
        return cf.add_empty_droplets(run, 20_000, seed=1)[0]
    if name == "60k empties":
        return cf.add_empty_droplets(run, 60_000, seed=2)[0]
    raw = cf.add_empty_droplets(run, 57_000, seed=3)[0]
    return cf.add_empty_droplets(raw, 3_000, min_umis=60, max_umis=500, seed=4)[0]


def _score(called: set, truth: set) -> dict:
    hits = len(called & truth)
    return {
        "called": len(called),
        "recall": round(hits / len(truth), 4),
        "precision": round(hits / len(called), 4) if called else 0.0,
    }


def _median_time(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _timing(path: Path) -> dict:
    import scanpy as sc

    return {
        "open_data (read + call cells)": _median_time(lambda: open_data(path)),
        "open_data (read only, calling off)": _median_time(lambda: open_data(path, cell_calling="off")),
        "sc.read_10x_h5 (read only)": _median_time(lambda: sc.read_10x_h5(path, gex_only=False)),
    }


def main() -> dict:
    pbmc = real_files.load("pbmc3k")
    run = cf.run_from(pbmc.X, pbmc.obs_names, pbmc.var["gene_ids"], cf.original_symbols(pbmc.var_names), "hg19")
    truth = set(run.barcodes)
    rows, timing = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("20k empties", "60k empties", "60k empties, heavy tail"):
            raw = _scenario(run, name)
            path = cf.write_h5_v3(raw, Path(tmp) / name.replace(" ", "_").replace(",", "") / "raw_feature_bc_matrix.h5")
            result = open_data(path)
            (record,) = result.records.values()
            call = record["cell_calling"]
            estimated = _score(set(result.adata.obs_names), truth)
            fixed = call_cells(raw.counts, 3000)
            guessed = _score(set(raw.barcodes[fixed.mask]), truth)
            rows.append(
                {
                    "scenario": name,
                    "barcodes": int(raw.counts.shape[0]),
                    "estimated N": call["expected_cells"],
                    "threshold": round(call["umi_threshold"], 1),
                    **{f"{k} (estimated N)": v for k, v in estimated.items()},
                    "threshold (N=3000)": round(fixed.umi_threshold, 1),
                    **{f"{k} (N=3000)": v for k, v in guessed.items()},
                }
            )
            if name == "60k empties":
                timing = _timing(path)
    print()
    columns = list(rows[0])
    print(" | ".join(columns))
    print(" | ".join("---" for _ in columns))
    for row in rows:
        print(" | ".join(str(row[c]) for c in columns))
    print()
    print(f"time on the 60k file ({rows[1]['barcodes']:,} barcodes), median of 5:")
    for key, value in timing.items():
        print(f"  {key}: {value:.3f} s")
    return report("cell_calling", {"cells": len(truth), "scenarios": rows, "timing_s_60k": timing})


if __name__ == "__main__":
    main()
