"""Memory before trouble (``core/data/footprint.py``): what reading a file and a default ``scelmo run`` cost, per
stored value and per cell, on real files, and how far the app's estimates are from the measured peaks.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/memory_footprint.py [--runs 3000,6800,13576]

- **Reading**: Kang 2018 (13,576 cells, 14,053 genes) written as a Cell Ranger v3 .h5, a gzipped v3 matrix folder
  and an .h5ad; each read by intake's ``read_sample`` in a fresh process; the peak RSS above the process's
  imports, per stored value (``footprint.READ_BYTES_PER_VALUE``).
- **The run**: ``scelmo run FILE`` with no options on the first N cells of Kang and on PBMC 3k, each in a fresh
  process (peak RSS of the process); then the least-squares fit of base + per value x values + per cell x cells
  (``footprint.RUN_*``) and each row's estimate against its measured peak.

Files are written under ``~/.cache/scelmo-bench/memory`` (outside the repository). Results:
``benchmarks/results/memory_footprint.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from _results import report  # noqa: E402

CACHE = Path.home() / ".cache" / "scelmo-bench" / "memory"
READ_CHILD = """
import json, resource, sys
from scelmo_desktop.core.data import samples
import anndata, h5py, scipy.sparse  # noqa: F401 - imported before the baseline is taken
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
read = samples.read_sample(sys.argv[1])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"stored": int(read.adata.X.nnz), "read_mb": (peak - base) / 1024}))
"""
RUN_CHILD = """
import json, sys, threading, time
import psutil
from scelmo_desktop.core.workflows import pipeline
from scelmo_desktop.cli.main import main
process, state = psutil.Process(), {"stage": "read", "peaks": {}}
def sample():  # the peak RSS of each stage the run reports (its progress stages)
    while True:
        rss = process.memory_info().rss / 2**20
        state["peaks"][state["stage"]] = max(state["peaks"].get(state["stage"], 0.0), rss)
        time.sleep(0.05)
threading.Thread(target=sample, daemon=True).start()
real = pipeline.run_pipeline
def run_pipeline(*args, progress, **kwargs):
    def heard(stage, *rest, **more):
        state["stage"] = stage
        return progress(stage, *rest, **more)
    return real(*args, progress=heard, **kwargs)
pipeline.run_pipeline = run_pipeline  # the CLI imports it when the command runs
started = time.perf_counter()
code = main(sys.argv[1:])
print(json.dumps({"rc": code, "seconds": time.perf_counter() - started, "peaks": state["peaks"]}))
"""


def _run_of(adata):
    import cellranger_files as cf

    ids = adata.var["gene_ids"] if "gene_ids" in adata.var else [f"ENSG{i:011d}" for i in range(adata.n_vars)]
    counts = sp.csr_matrix(adata.X)
    return cf.run_from(counts, np.asarray(adata.obs_names.astype(str)), list(ids), list(adata.var_names), "GRCh38")


def layouts(kang) -> dict[str, Path]:
    """Kang as a v3 .h5, a gzipped v3 folder and an .h5ad (written once)."""
    import cellranger_files as cf

    paths = {"Cell Ranger v3 .h5": CACHE / "kang" / "v3.h5", "v3 matrix folder (gz)": CACHE / "kang" / "mtx",
             ".h5ad": CACHE / "kang" / "kang.h5ad"}  # fmt: skip
    if not all(p.exists() for p in paths.values()):
        run = _run_of(kang)
        cf.write_h5_v3(run, paths["Cell Ranger v3 .h5"])
        cf.write_mtx(run, paths["v3 matrix folder (gz)"])
        kang.write_h5ad(paths[".h5ad"])
    return paths


def measure_read(path: Path) -> dict:
    from scelmo_desktop.core.data import footprint

    done = subprocess.run([sys.executable, "-c", READ_CHILD, str(path)], capture_output=True, text=True, check=True)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    found = footprint.footprint(path)
    row["bytes_per_value"] = round(row["read_mb"] * 2**20 / row["stored"], 1)
    row["estimate_mb"] = round(found.read_bytes / 2**20, 1)
    row["read_mb"] = round(row["read_mb"], 1)
    return row


def measure_run(path: Path, out: Path) -> dict:
    """``scelmo run FILE --out OUT`` with no other option in a fresh process: seconds, the peak RSS of each stage
    and of the whole run (MB)."""
    argv = [sys.executable, "-c", RUN_CHILD, "run", str(path), "--out", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"scelmo run {path} failed: {done.stderr[-1500:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    peaks = {stage: round(mb, 1) for stage, mb in row["peaks"].items()}
    rest = max(mb for stage, mb in peaks.items() if stage != "doublets")
    return {"seconds": round(row["seconds"], 1), "peak_mb": max(peaks.values()), "doublets_mb": peaks.get("doublets"),
            "rest_mb": rest, "stages_mb": peaks}  # fmt: skip


def fit(rows: list[dict]) -> dict:
    """The run model of ``footprint.run_peak_bytes``, by least squares: every stage but Scrublet's holds base + per
    cell x cells (the rows' ``rest_mb``); Scrublet's stage holds its own base + per cell x cells of the largest
    sample (``doublets_mb``; with one sample per row the cells held and the sample's are the same, so its per-cell
    cost is the slope less the per-cell cost of the rest)."""
    cells = np.array([r["cells"] for r in rows], dtype=float)
    largest = np.array([r["largest_sample"] for r in rows], dtype=float)
    per_cell, base = np.polyfit(cells, np.array([r["rest_mb"] for r in rows]) * 2**20, 1)
    slope, doublets_base = np.polyfit(largest, np.array([r["doublets_mb"] for r in rows]) * 2**20, 1)
    return {"base_mb": round(base / 2**20, 1), "per_cell_kb": round(per_cell / 1e3, 1),
            "doublets_base_mb": round(doublets_base / 2**20, 1),
            "doublets_per_sample_cell_kb": round((slope - per_cell) / 1e3, 1)}  # fmt: skip


def main() -> None:
    import anndata as ad
    import real_files

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default="3000,6800,13576", help="Kang cell counts to run (first N cells)")
    parser.add_argument("--no-pbmc", action="store_true", help="leave out the PBMC 3k run")
    args = parser.parse_args()
    from scelmo_desktop.core.data import footprint

    kang = ad.read_h5ad(real_files.kang_sparse_file(real_files.cache_dir()))
    reads = {name: measure_read(path) for name, path in layouts(kang).items()}
    runs = []
    inputs = [(f"Kang, first {int(n):,} cells", kang[: int(n)].copy()) for n in args.runs.split(",")]
    if not args.no_pbmc:
        inputs.append(("PBMC 3k", real_files.load("pbmc3k")))
    import cellranger_files as cf

    for name, adata in inputs:
        path = cf.write_h5_v3(_run_of(adata), CACHE / "runs" / f"{adata.n_obs}_{adata.n_vars}.h5")
        row = {"file": name, "cells": int(adata.n_obs), "largest_sample": int(adata.n_obs)}
        row.update(measure_run(path, CACHE / "out" / path.stem))
        row["estimate_mb"] = round(footprint.run_peak_bytes(row["cells"], row["largest_sample"]) / 2**20, 1)
        runs.append(row)
        print(row, flush=True)
    report("memory_footprint", {"reads": reads, "runs": runs, "fit": fit(runs) if len(runs) >= 3 else None})


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
