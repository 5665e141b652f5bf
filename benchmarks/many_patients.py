"""Hospital scale: ``scelmo run P01.h5 … P08.h5`` with no options (QC per sample, integration of the samples,
clusters, UMAP, markers, names) on ~100,000 cells in eight Cell Ranger files, against the scanpy + Harmony route
on the same files, each in its own fresh process, and both scored against the cells' known types.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/many_patients.py                 # 8 x 12,500
    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/many_patients.py --patients 2 --cells-per-patient 2000
    … --sides route            # one side only (the other side's earlier entry is kept)
    … --sides --rescore        # score the kept outputs again, run nothing

The patients (built once, cached in ``~/.cache/scelmo-bench/many_patients/`` or ``$SCELMO_BENCH_DIR``, never in
the repository) are drawn from Kang 2018 (13,576 PBMCs, control and IFN-β, 8 labelled types; the file
``~/.cache/scelmo-real-data/cand/kang_sparse.h5ad``). Each new cell mixes ``--parents`` (3) Kang cells of one type
and one condition: a first parent drawn from all Kang cells with replacement (it gives the label), the others
drawn from its type and condition, each contributing a binomial 1/3 share of its counts (so the cell keeps a real
cell's depth and Poisson noise). Then every count is thinned binomially by a per-patient depth factor from
U(0.6, 1.0), and a random 5 % of the genes further by a per-patient factor from U(0.3, 0.7) (a mild gene-wise batch
effect). ``--parents 1`` gives thinned copies only, as first planned: 100,000 cells from 13,576 are ~7 copies of
each, and the copies, however thinned, are each other's nearest neighbours: the scanpy route then finds 1,276
Leiden clusters, most of them the copies of one Kang cell (NMI 0.45, ARI 0.08), and its markers take 8 minutes.
Each patient is written as ``PNN/outs/filtered_feature_bc_matrix.h5`` (Cell Ranger v3, random 16-mer barcodes,
Ensembl ids from PBMC 3k's table where it has the symbol), with the cells' types in ``labels/PNN.csv`` beside
them, outside the file, for scoring only.

Our side is ``scelmo run FILES --out DIR`` exactly as a user types it; its steps come from
``provenance.json`` (``timings_s``; reading the files, imports and writing the outputs are the wall time left
over). The description store is ``<bench dir>/home/store.sqlite`` (its first run is a cold store, as on a fresh
install; later runs are warm; the JSON records how many gene texts were embedded, cached or shipped);
``--fresh-store`` gives every run an empty one. The scanpy route does the same work the way an analyst would:
read and join the files, QC metrics, Scrublet per sample, the standard filters (>= 200 genes, genes in >= 3
cells, < 5 % mito, doublets out), normalize_total, log1p, 2,000 HVGs (batch_key=sample), scale, PCA 50, Harmony,
neighbors, Leiden, UMAP, Wilcoxon markers per cluster. Harmony is ``scanpy.external.pp.harmony_integrate`` as
scanpy documents it; with harmonypy 2.x it fails (it transposes a result harmonypy no longer transposes), so the
route then calls harmonypy itself, and says so in its log.

Each side runs under a wrapper process that logs its output with timestamps, samples its RSS every second (the
peak per step goes into the JSON, the trace beside the log) and takes the peak RSS from ``getrusage``; a side
that passes ``--limit-gib`` of RSS or ``--limit-min`` of wall time is stopped and reported with its last lines.
Scores: NMI and ARI of each side's clusters against Kang's types on every cell it keeps, and batch mixing of its
integrated space (iLISI rescaled to [0, 1], and kBET acceptance, as ``core.tasks.batch_metrics`` computes them) on
the kept cells among one fixed random draw of ``--mixing-cells`` (20,000) cells. Results:
``benchmarks/results/many_patients.json``, one entry per size; logs and outputs in ``<bench dir>/runs/<size>/``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
SCELMO = Path(sys.executable).with_name("scelmo")
WORK = Path(os.environ.get("SCELMO_BENCH_DIR", Path.home() / ".cache" / "scelmo-bench" / "many_patients"))
KANG = Path.home() / ".cache" / "scelmo-real-data" / "cand" / "kang_sparse.h5ad"
RESULTS = ROOT / "benchmarks" / "results" / "many_patients.json"
DEPTH = (0.6, 1.0)  # per-patient binomial thinning of every count
BATCH_GENES, BATCH_FACTOR = 0.05, (0.3, 0.7)  # share of genes thinned further per patient, and by how much
# lines of a run's output a user would take for a warning or an error
ALERT = re.compile(r"warn|note|error|traceback|exception|fail|killed|not run|could not|cannot", re.IGNORECASE)


# the route's steps, in order; and the phases of a run's output (tqdm bars, the route's step lines)
ROUTE_STEPS = ("import", "read + join", "qc metrics", "scrublet", "filters", "normalise + log1p", "HVG + scale")
ROUTE_STEPS += ("PCA 50", "harmony", "neighbors", "leiden", "UMAP", "Wilcoxon markers", "write")
PHASE = re.compile(r"^(?:route step: (.+)|([a-z][a-z ]*?):\s+\d+%\|)")


# ---- the patients ------------------------------------------------------------------------------------------------
def build_patients(n_patients: int, n_cells: int, seed: int, parents: int) -> tuple[list[Path], Path]:
    """The patients' Cell Ranger files and their labels folder (built once per size, seed and parents)."""
    folder = (
        WORK / f"k{n_patients}_n{n_cells}_s{seed}"
        if parents == 1
        else WORK / f"k{n_patients}_n{n_cells}_s{seed}_m{parents}"
    )
    files = [folder / f"P{p + 1:02d}" / "outs" / "filtered_feature_bc_matrix.h5" for p in range(n_patients)]
    labels = folder / "labels"
    if (folder / "manifest.json").is_file() and all(f.is_file() for f in files):
        return files, labels
    import anndata as ad
    import cellranger_files as crf
    import numpy as np
    import pandas as pd
    import real_files
    import scipy.sparse as sp

    kang = ad.read_h5ad(KANG)
    counts = sp.csr_matrix(kang.X).astype(np.int64)
    pbmc = ad.read_h5ad(real_files.path("pbmc3k"), backed="r")
    to_id = dict(zip(pbmc.var_names, pbmc.var["gene_ids"]))
    symbols = np.asarray(kang.var_names, dtype=object)
    ids = np.array([to_id.get(g, f"ENSGKANG{i:07d}") for i, g in enumerate(symbols)], dtype=object)
    _, first = np.unique(ids, return_index=True)
    ids = np.array([v if k in set(first) else f"ENSGKANG{k:07d}" for k, v in enumerate(ids)], dtype=object)
    labels.mkdir(parents=True, exist_ok=True)
    types = kang.obs["cell_type"].astype(str).to_numpy()
    conditions = kang.obs["condition"].astype(str).to_numpy()
    group = (kang.obs["cell_type"].astype(str) + "|" + kang.obs["condition"].astype(str)).to_numpy()
    members = {key: np.flatnonzero(group == key) for key in np.unique(group)}
    manifest = {"source": str(KANG), "seed": seed, "parents": parents, "patients": []}
    for p, path in enumerate(files):
        rng = np.random.default_rng([seed, p])
        depth = float(rng.uniform(*DEPTH))
        factor = float(rng.uniform(*BATCH_FACTOR))
        batch_genes = rng.choice(len(symbols), size=round(BATCH_GENES * len(symbols)), replace=False)
        keep = np.full(len(symbols), depth)
        keep[batch_genes] *= factor
        cells = rng.integers(0, kang.n_obs, size=n_cells)  # the first parent gives the type and condition
        chosen = [cells]
        for _ in range(parents - 1):  # the other parents: cells of the same type and condition
            other = np.empty(n_cells, dtype=np.int64)
            for key, pool in members.items():
                where = group[cells] == key
                other[where] = rng.choice(pool, size=int(where.sum()))
            chosen.append(other)
        part = None
        for rows in chosen:  # each parent gives a 1/parents binomial share of its counts
            share = counts[rows]
            share.data = rng.binomial(share.data, 1.0 / parents)
            part = share if part is None else part + share
        part = sp.csr_matrix(part)
        part.data = rng.binomial(part.data, keep[part.indices])
        part.eliminate_zeros()
        barcodes = crf.random_barcodes(n_cells, 16, seed=1000 * seed + p)
        name = path.parents[1].name
        crf.write_h5_v3(crf.run_from(part, barcodes, ids, symbols), path)
        pd.DataFrame(
            {
                "barcode": barcodes,
                "cell_type": types[cells],
                "condition": conditions[cells],
                "kang_cells": [";".join(kang.obs_names[list(c)]) for c in zip(*chosen)],
                "umis": np.asarray(part.sum(axis=1)).ravel(),
            }
        ).to_csv(labels / f"{name}.csv", index=False)
        manifest["patients"].append(
            {"name": name, "cells": n_cells, "depth": round(depth, 3), "batch_factor": round(factor, 3)}
        )
        print(f"built {name}: depth {depth:.2f}, batch genes x{factor:.2f}", flush=True)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return files, labels


def load_labels(labels: Path):
    """Each cell's type and condition, indexed by the name the intake gives it (``<barcode>-<sample>``)."""
    import pandas as pd

    frames = []
    for csv in sorted(labels.glob("*.csv")):
        frame = pd.read_csv(csv)
        frame.index = frame["barcode"] + "-" + csv.stem
        frames.append(frame)
    return pd.concat(frames)


# ---- measuring a process (run as `many_patients.py measure LOG LIMIT_GIB LIMIT_MIN -- ARGV`) --------------------
def measure_child(log: Path, limit_gib: float, limit_min: float, argv: list[str]) -> None:
    """Run ``argv``; write its output to ``log`` line by line with the seconds since start, sample its RSS (the
    process and its children) every second, stop it past the limits; print one JSON line."""
    import resource
    import signal
    import threading

    import psutil

    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, bufsize=0)
    trace: list[tuple[float, float]] = []
    killed: list[str] = []

    def sample():
        process = psutil.Process(child.pid)
        while child.poll() is None:
            try:
                rss = process.memory_info().rss + sum(c.memory_info().rss for c in process.children(recursive=True))
            except psutil.Error:
                rss = 0
            elapsed = time.perf_counter() - started
            trace.append((round(elapsed, 1), round(rss / 2**20, 1)))
            reason = None
            if rss > limit_gib * 2**30:
                reason = f"RSS {rss / 2**30:.1f} GiB passed the limit of {limit_gib} GiB"
            elif elapsed > limit_min * 60:
                reason = f"wall time passed the limit of {limit_min} min"
            if reason and not killed:
                killed.append(reason)
                os.killpg(child.pid, signal.SIGKILL)
            time.sleep(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines: list[tuple[float, str]] = []
    with open(log, "w") as sink:
        buffer = b""
        while chunk := child.stdout.read(4096):
            buffer += chunk
            parts = re.split(rb"[\r\n]", buffer)
            buffer = parts.pop()
            for part in parts:
                text = part.decode(errors="replace").rstrip()
                if text:
                    elapsed = round(time.perf_counter() - started, 1)
                    lines.append((elapsed, text))
                    sink.write(f"[{elapsed:8.1f}] {text}\n")
                    sink.flush()
        if buffer.strip():
            lines.append((round(time.perf_counter() - started, 1), buffer.decode(errors="replace").rstrip()))
            sink.write(f"[{lines[-1][0]:8.1f}] {lines[-1][1]}\n")
    rc = child.wait()
    seconds = time.perf_counter() - started
    sampler.join(timeout=5)
    peak_at, peak_sampled = max(trace, key=lambda t: t[1]) if trace else (0.0, 0.0)
    marks = [(t, m.group(1) or m.group(2)) for t, text in lines if (m := PHASE.match(text))]
    by_phase: dict[str, float] = {}
    for t, mb in trace:  # the phase a sample falls in: the last one begun before it
        phase = next((name for start, name in reversed(marks) if start <= t), "start + read")
        by_phase[phase] = max(by_phase.get(phase, 0.0), mb)
    with open(log.with_suffix(".rss.csv"), "w") as sink:
        sink.write("seconds,rss_mb\n" + "".join(f"{t},{mb}\n" for t, mb in trace))
    during = [text for t, text in lines if t <= peak_at]
    print(
        json.dumps(
            {
                "rc": rc,
                "seconds": round(seconds, 1),
                "peak_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
                "peak_sampled_mb": peak_sampled,
                "peak_at_s": peak_at,
                "peak_during": during[-1][:200] if during else "",
                "killed": killed[0] if killed else None,
                "peak_mb_by_phase": by_phase,
                "rss_trace": str(log.with_suffix(".rss.csv")),
                "last_lines": [text[:300] for _, text in lines[-25:]],
                "alerts": sorted({text[:300] for _, text in lines if ALERT.search(text)})[:40],
            }
        )
    )


def measure(argv: list, log: Path, env: dict, limit_gib: float, limit_min: float) -> dict:
    wrapper = [sys.executable, __file__, "measure", log, limit_gib, limit_min, "--", *argv]
    done = subprocess.run(list(map(str, wrapper)), env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the measuring wrapper failed: {done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["log"] = str(log)
    return result


def environment(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "SCELMO_HOME"}
    env.update(
        SCELMO_HOME=str(home), HF_HUB_OFFLINE="1", OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"), PYTHONUNBUFFERED="1"
    )
    return env


# ---- the scanpy route (run in its own process by `many_patients.py route OUT FILE…`) ----------------------------
def scanpy_route(out: Path, paths: list[Path]) -> None:
    print("route step: import", flush=True)
    steps: dict[str, float] = {}
    clock = [time.perf_counter()]
    order = iter(ROUTE_STEPS[1:])

    def step(name):  # closes step `name` and says which one starts (the wrapper's RSS trace is split by it)
        now = time.perf_counter()
        steps[name] = round(now - clock[0], 2)
        clock[0] = now
        print(f"route: {name} took {steps[name]:.1f} s", flush=True)
        print(f"route step: {next(order, 'end')}", flush=True)

    import anndata as ad
    import numpy as np
    import scanpy as sc
    import scanpy.external as sce

    from scelmo_desktop.core.qc.doublets import threshold_minimum

    step("import")
    parts = {}
    for path in paths:
        sample = path.parents[1].name
        part = sc.read_10x_h5(path)
        part.var_names_make_unique()
        part.obs_names = [f"{b}-{sample}" for b in part.obs_names]
        parts[sample] = part
    adata = ad.concat(parts, label="sample", merge="same")
    adata.obs["sample"] = adata.obs["sample"].astype("category")
    del parts
    step("read + join")
    adata.var["mt"] = adata.var_names.str.upper().str.startswith("MT-")
    sc.pp.calculate_qc_metrics(adata, qc_vars=["mt"], inplace=True, percent_top=None, log1p=False)
    step("qc metrics")
    # scikit-image is not installed: Scrublet's own automatic threshold (the histogram minimum) per sample
    sc.pp.scrublet(adata, batch_key="sample", threshold=np.inf, random_state=0)
    doublet = np.zeros(adata.n_obs, dtype=bool)
    for sample, record in adata.uns["scrublet"]["batches"].items():
        cut = threshold_minimum(record["doublet_scores_sim"])
        cells = (adata.obs["sample"] == sample).to_numpy()
        doublet[cells] = adata.obs["doublet_score"].to_numpy()[cells] > (np.inf if cut is None else cut)
    adata.obs["predicted_doublet"] = doublet
    step("scrublet")
    sc.pp.filter_cells(adata, min_genes=200)
    sc.pp.filter_genes(adata, min_cells=3)
    adata = adata[(adata.obs["pct_counts_mt"] < 5) & ~adata.obs["predicted_doublet"]].copy()
    step("filters")
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    step("normalise + log1p")
    sc.pp.highly_variable_genes(adata, n_top_genes=2000, batch_key="sample")
    adata.raw = adata
    adata = adata[:, adata.var["highly_variable"]].copy()
    sc.pp.scale(adata, max_value=10)
    step("HVG + scale")
    sc.tl.pca(adata, n_comps=50, random_state=0)
    step("PCA 50")
    try:  # what the scanpy docs show; with harmonypy 2.x it fails (it transposes a result no longer transposed)
        sce.pp.harmony_integrate(adata, "sample", random_state=0)
    except ValueError as error:
        print(f"route: scanpy.external.pp.harmony_integrate failed ({error}); harmonypy directly", flush=True)
        import harmonypy
        import pandas as pd

        frame = pd.DataFrame({"sample": adata.obs["sample"].astype(str).to_numpy()})
        result = harmonypy.run_harmony(adata.obsm["X_pca"].astype(np.float64), frame, "sample", random_state=0)
        corrected = np.asarray(result.Z_corr)
        adata.obsm["X_pca_harmony"] = corrected if corrected.shape[0] == adata.n_obs else corrected.T
    step("harmony")
    sc.pp.neighbors(adata, use_rep="X_pca_harmony", random_state=0)
    step("neighbors")
    sc.tl.leiden(adata, flavor="igraph", n_iterations=2, random_state=0)
    step("leiden")
    sc.tl.umap(adata, random_state=0)
    step("UMAP")
    sc.tl.rank_genes_groups(adata, "leiden", method="wilcoxon")
    step("Wilcoxon markers")
    out.mkdir(parents=True, exist_ok=True)
    adata.obs[["sample", "leiden"]].to_csv(out / "clusters.csv")
    np.save(out / "X_pca_harmony.npy", adata.obsm["X_pca_harmony"].astype(np.float32))
    step("write")
    (out / "steps.json").write_text(
        json.dumps({"steps": steps, "cells": int(adata.n_obs), "clusters": int(adata.obs["leiden"].nunique())})
    )


# ---- reading each side's result and scoring it ------------------------------------------------------------------
def ours_result(run_out: Path):
    """Our run's steps (provenance.json) and its clusters, samples and integrated space (scelmo_result.h5ad)."""
    import anndata as ad
    import numpy as np

    record = json.loads((run_out / "provenance.json").read_text())
    embed = record.get("embedding", {})
    integration = record.get("integration", {})
    qc = record.get("qc", {})
    info = {
        "steps": {k: round(float(v), 2) for k, v in record.get("timings_s", {}).items()},
        "texts_embedded": embed.get("n_embedded"),
        "texts_prebuilt": embed.get("n_prebuilt"),
        "texts_cached": embed.get("n_cached"),
        "descriptions": record.get("descriptions"),
        "integration": {k: integration.get(k) for k in ("method", "status", "reason", "ilisi_before", "ilisi_after")},
        "qc_kept": qc.get("n_kept", qc.get("kept")),
    }
    adata = ad.read_h5ad(run_out / "scelmo_result.h5ad", backed="r")
    key = "X_scelmo_integrated" if "X_scelmo_integrated" in adata.obsm else "X_scelmo"
    space = np.asarray(adata.obsm[key][:], dtype=np.float32)
    obs = adata.obs[["sample", "scelmo_leiden"]].rename(columns={"scelmo_leiden": "cluster"}).copy()
    if "scelmo_cell_type" in adata.obs:
        obs["name"] = adata.obs["scelmo_cell_type"].astype(str)
    info["cells"] = int(adata.n_obs)
    info["clusters"] = int(obs["cluster"].nunique())
    info["space"] = key
    adata.file.close()
    return info, obs, space


def route_result(route_out: Path):
    import numpy as np
    import pandas as pd

    info = json.loads((route_out / "steps.json").read_text())
    obs = pd.read_csv(route_out / "clusters.csv", index_col=0).rename(columns={"leiden": "cluster"})
    return info, obs, np.load(route_out / "X_pca_harmony.npy")


def score(obs, space, labels, mixing_cells: int) -> dict:
    """NMI/ARI of the clusters against the cell types on every cell kept; batch mixing of the space (iLISI, kBET)
    on the kept cells among one fixed random draw of ``mixing_cells`` cells (the same draw for both sides):
    harmonypy's LISI searches neighbours exactly (a kd-tree in 50 dimensions), which grows with the square of the
    cell count."""
    import numpy as np
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from scelmo_desktop.core.tasks.batch_metrics import ilisi, kbet

    known = obs.index.isin(labels.index)
    types = labels.reindex(obs.index)["cell_type"].to_numpy()
    clusters = obs["cluster"].astype(str).to_numpy()
    batches = obs["sample"].astype(str).to_numpy()
    t0 = time.perf_counter()
    row = {
        "cells_scored": int(known.sum()),
        "cells_unmatched": int((~known).sum()),
        "nmi": round(float(normalized_mutual_info_score(types[known], clusters[known])), 4),
        "ari": round(float(adjusted_rand_score(types[known], clusters[known])), 4),
    }
    draw = np.random.default_rng(0).permutation(np.sort(labels.index.to_numpy()))[:mixing_cells]
    mix = obs.index.isin(draw) & known
    space = np.asarray(space)[mix]
    row["mixing_cells"] = int(mix.sum())
    row["ilisi"] = round(ilisi(space, batches[mix]), 4)
    row["kbet"] = round(kbet(space, batches[mix], types[mix]), 4)
    row["scoring_s"] = round(time.perf_counter() - t0, 1)
    return row


# ---- the comparison ----------------------------------------------------------------------------------------------
SIDES = {"ours": "scelmo_run", "route": "scanpy_route"}


def run_side(side: str, files: list[Path], runs: Path, env: dict, limits: tuple[float, float]) -> dict:
    """One side in its own measured process; the measurement is also kept beside its output (``.measure.json``)."""
    out = runs / SIDES[side]
    print(f"== {SIDES[side]} on {runs.name} -> {out}", flush=True)
    store = Path(env["SCELMO_HOME"]) / "store.sqlite"
    started = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "store": str(store), "store_existed": store.is_file()}
    if side == "ours":
        argv = [SCELMO, "run", *files, "--out", out]
    else:
        argv = [sys.executable, __file__, "route", out, *files]
        started = {"started": started["started"]}
    result = {**started, **measure(argv, runs / f"{SIDES[side]}.log", env, *limits)}
    if result["rc"] < 0:
        result["signal"] = f"stopped by signal {-result['rc']}" + (f" ({result['killed']})" if result["killed"] else "")
    (runs / f"{SIDES[side]}.measure.json").write_text(json.dumps(result, indent=2))
    return result


def add_scores(side: str, result: dict, runs: Path, labels, mixing_cells: int) -> dict:
    """The side's steps and scores read from its output folder (when it finished)."""
    out = runs / SIDES[side]
    done = out / ("provenance.json" if side == "ours" else "steps.json")
    if result.get("rc") != 0 or not done.is_file():
        return result
    info, obs, space = ours_result(out) if side == "ours" else route_result(out)
    result.update(info)
    if side == "ours":
        result["read_and_write_s"] = round(result["seconds"] - result["steps"].get("total", 0.0), 1)
    result["scores"] = score(obs, space, labels, mixing_cells)
    keys = ("rc", "seconds", "peak_mb", "killed", "steps", "scores")
    print(json.dumps({k: result.get(k) for k in keys}), flush=True)
    return result


def compare(args) -> dict:
    files, labels_dir = build_patients(args.patients, args.cells_per_patient, args.seed, args.parents)
    labels = load_labels(labels_dir)
    size = f"{args.patients}x{args.cells_per_patient}" + (f"_mix{args.parents}" if args.parents > 1 else "")
    runs = WORK / "runs" / size
    runs.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="home_", dir=runs)) if args.fresh_store else WORK / "home"
    env = environment(home)
    row: dict = {
        "size": size,
        "patients": args.patients,
        "cells_per_patient": args.cells_per_patient,
        "cells": args.patients * args.cells_per_patient,
        "parents_per_cell": args.parents,
        "files": [str(f) for f in files],
        "threads": env["OMP_NUM_THREADS"],
        "mixing_cells": args.mixing_cells,
    }
    for side in ("ours", "route"):
        kept = runs / f"{SIDES[side]}.measure.json"
        if side in args.sides:
            result = run_side(side, files, runs, env, (args.limit_gib, args.limit_min))
        elif args.rescore and kept.is_file():  # scored again from its output, not run again
            result = json.loads(kept.read_text())
        else:
            continue
        row[SIDES[side]] = add_scores(side, result, runs, labels, args.mixing_cells)
    return row


def merged(earlier: dict, row: dict) -> dict:
    """This size's entry with the sides just run replacing the earlier ones (a side run alone keeps the other)."""
    row = {**earlier, **row}
    ours, route = row.get("scelmo_run", {}), row.get("scanpy_route", {})
    row.pop("ratio_time", None), row.pop("ratio_rss", None)
    if ours.get("rc") == 0 and route.get("rc") == 0:
        row["ratio_time"] = round(ours["seconds"] / route["seconds"], 2)
        row["ratio_rss"] = round(ours["peak_mb"] / route["peak_mb"], 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=8)
    parser.add_argument("--cells-per-patient", type=int, default=12_500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--parents", type=int, default=3, help="Kang cells of one type and condition mixed into each cell (1: copies)"
    )
    parser.add_argument("--sides", nargs="*", default=["ours", "route"], choices=["ours", "route"])
    parser.add_argument(
        "--rescore", action="store_true", help="score again the sides not run now, from their kept output"
    )
    parser.add_argument("--fresh-store", action="store_true", help="an empty description store (a cold run)")
    parser.add_argument("--mixing-cells", type=int, default=20_000, help="cells drawn for iLISI and kBET")
    parser.add_argument("--limit-gib", type=float, default=20.0, help="stop a side past this RSS")
    parser.add_argument("--limit-min", type=float, default=45.0, help="stop a side past this wall time")
    args = parser.parse_args()
    from _results import report

    row = compare(args)
    previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    sizes = previous.get("sizes", {})
    sizes[row["size"]] = merged(sizes.get(row["size"], {}), row)
    report("many_patients", {"source": str(KANG), "sizes": sizes})


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "measure":
        split = sys.argv.index("--")
        measure_child(Path(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[split + 1 :])
    elif len(sys.argv) > 1 and sys.argv[1] == "route":
        scanpy_route(Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]])
    else:
        main()
