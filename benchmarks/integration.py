"""Batch correction with no labels, measured (issue 26): scELMo's default against the scanpy-route PCA, Harmony
on PCA and the candidates tried, on the same cells with the same scIB-style metrics
(``core.tasks.batch_metrics``: bio = NMI/ARI at the best Leiden resolution, label ASW, cLISI; batch = batch
ASW, iLISI, kBET, graph connectivity, PCR; overall = 0.6 bio + 0.4 batch).

Sets (``tests/real_files.py``, cache outside the repository):

* ``kang``: Kang 2018, batch = condition (control / IFN-beta), labels = its cell types;
* ``cross``: PBMC 3k + Kang control + Kang stimulated (3 batches), the cells of the 7 shared labels.

Rows (one process, one thread; wall time of the correction alone, not the shared gene table, and the peak of
numpy's allocations while it ran, by tracemalloc):

* ``scELMo default (no labels)``: :func:`scelmo_desktop.core.tasks.integration.integrate_embedding`, what
  ``scelmo integrate`` and ``scelmo run A.h5 B.h5`` write to ``obsm['X_scelmo_integrated']``;
* the candidates: the uncorrected scELMo space; per-batch gene standardisation before the weighted sum
  (the cell vector is linear in expression); Harmony (harmonypy) on ``X_scelmo``; BBKNN-style graph
  correction is measured as its embedding-free equivalent is not scored by these metrics, so it is left out;
* ``PCA (scanpy route)`` and ``Harmony (on PCA)``;
* ``scELMo adaptor (labelled)`` with ``--adaptor``: trained on the labels it is scored on (optimistic);
* ``scVI`` when ``scvi-tools`` is importable. It is not a dependency of the app; for the benchmark it installs
  from PyPI beside the app's environment, changing none of its packages:

    .venv/bin/pip install --dry-run --report /tmp/scvi.json scvi-tools==1.4.2   # what it adds (nothing replaced)
    .venv/bin/pip install --no-deps --target /tmp/scvi_site <the packages the report lists>
    PYTHONPATH=/tmp/scvi_site ... benchmarks/integration.py --only "scVI (scvi-tools, 40 epochs)" --scvi-epochs 40

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/integration.py [--sets kang,cross] [--adaptor]

Writes ``benchmarks/results/integration.json`` and prints one markdown table per set.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
RESULTS = ROOT / "benchmarks" / "results" / "integration.json"


def load_set(name: str):
    """(AnnData of raw counts, batch column, label column) of a benchmark set."""
    import anndata as ad
    import real_files

    kang = real_files.load("kang")
    if name == "kang":
        kang.obs["batch"] = kang.obs["condition"].astype(str)
        kang.obs["cell_label"] = kang.obs["cell_type"].astype(str)
        return kang, "batch", "cell_label"
    pbmc = real_files.load("pbmc3k")
    pbmc.obs["batch"] = "pbmc3k"
    kang.obs["batch"] = "kang_" + kang.obs["condition"].astype(str)
    parts = []
    for part in (pbmc, kang):
        part = part[part.obs["label"].notna()].copy()
        part.var_names_make_unique()
        parts.append(part)
    combined = ad.concat(parts, join="inner", index_unique="-")
    combined.obs["cell_label"] = combined.obs["label"].astype(str)
    return combined, "batch", "cell_label"


def gene_set_inputs(adata):
    """(log-normalised gene-set matrix, its table rows) from the app's default embedding of ``adata``."""
    import scelmo_desktop as scelmo
    from scelmo_desktop.core.data.io import select_expression
    from scelmo_desktop.core.embedding.cell_vectors import genes_with_vectors

    scelmo.tl.embed_cells(adata)
    expression = select_expression(adata, "auto")
    X, E, _ = genes_with_vectors(expression.matrix, np.asarray(adata.varm["scelmo_gene_embedding"]))
    return expression, X, E


def measured(function):
    """(result, seconds, peak MiB of numpy allocations) of ``function()``."""
    tracemalloc.start()
    t0 = time.perf_counter()
    result = function()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, seconds, peak


def candidate_rows(expression, X, E, batches, seed=0):
    """{name: function returning an embedding} for every label-free row."""
    from scelmo_desktop.core.embedding import baselines
    from scelmo_desktop.core.embedding.cell_vectors import Reduction, conditioned_embedding, smoothed_expression
    from scelmo_desktop.core.tasks import integration

    def reduced(Z):
        return Reduction.fit(Z, seed=seed).apply(Z)

    def per_batch_smoothed():
        return reduced(smoothed_expression(X, E, batches=batches))

    def per_batch_centred():
        Z = smoothed_expression(X, E)
        for batch in np.unique(batches):
            Z[batches == batch] -= Z[batches == batch].mean(axis=0)
        return reduced(Z)

    def balanced(Z):
        return Z / np.sqrt(np.sum(np.var(Z, axis=0)))  # equal total variance for each half of a concatenation

    def harmony_both():
        plain = integration.harmony(conditioned_embedding(X, E, seed=seed), batches, seed=seed)
        scaled = integration.harmony(per_batch_smoothed(), batches, seed=seed)
        return np.hstack([balanced(plain), balanced(scaled)])

    def harmony_theta(theta):
        import harmonypy
        import pandas as pd

        frame = pd.DataFrame({"batch": batches})
        result = harmonypy.run_harmony(
            per_batch_smoothed().astype(np.float64), frame, "batch", theta=theta, verbose=False, random_state=seed
        )
        Z = np.asarray(result.Z_corr)
        return (Z if Z.shape[0] == len(frame) else Z.T).astype(np.float32)

    def scanpy_pca():
        return baselines.pca_embedding(expression.matrix, seed=seed)

    def matched_shift_scale():
        """Each sample's gene shift and spread measured within clusters it shares with the other samples (found
        on Harmony of the smoothed space), so the samples' cell-type make-up does not enter them; then Harmony."""
        import anndata as ad
        import scanpy as sc

        Z = smoothed_expression(X, E)
        holder = ad.AnnData(np.zeros((len(Z), 1), np.float32))
        holder.obsm["H"] = integration.harmony(reduced(Z), batches, seed=seed)
        sc.pp.neighbors(holder, use_rep="H", n_neighbors=15, random_state=seed)
        sc.tl.leiden(holder, resolution=1.0, random_state=seed, flavor="igraph", n_iterations=2, directed=False)
        clusters = holder.obs["leiden"].astype(int).to_numpy()
        names = np.unique(batches)
        shift = {b: np.zeros(Z.shape[1]) for b in names}
        spread = {b: np.zeros(Z.shape[1]) for b in names}
        weight = dict.fromkeys(names, 0.0)
        for cluster_id in np.unique(clusters):
            cells = {b: (clusters == cluster_id) & (batches == b) for b in names}
            present = [b for b in names if cells[b].sum() >= 10]
            if len(present) < 2:
                continue
            means = {b: Z[cells[b]].mean(axis=0) for b in present}
            centre = np.mean([means[b] for b in present], axis=0)
            for b in present:
                n = cells[b].sum()
                shift[b] += n * (means[b] - centre)
                spread[b] += n * Z[cells[b]].var(axis=0)
                weight[b] += n
        pooled = sum(spread.values()) / sum(weight.values())
        out = Z.copy()
        for b in names:
            if weight[b]:
                ratio = np.sqrt(np.maximum(spread[b] / weight[b], 1e-6) / np.maximum(pooled, 1e-6))
                out[batches == b] = (Z[batches == b] - shift[b] / weight[b]) / np.clip(ratio, 0.8, 1.25)
        return integration.harmony(reduced(out.astype(np.float32)), batches, seed=seed)

    return {
        "scELMo default (no labels)": lambda: integration.integrate_embedding(X, E, batches, seed=seed).embedding,
        "scELMo, uncorrected": lambda: conditioned_embedding(X, E, seed=seed),
        "scELMo standard sum (0.3), uncorrected": lambda: conditioned_embedding(X, E, conditioning="standard"),
        "Harmony on scELMo standard sum": lambda: integration.harmony(
            conditioned_embedding(X, E, conditioning="standard"), batches, seed=seed
        ),
        "Harmony on scELMo": lambda: integration.harmony(conditioned_embedding(X, E, seed=seed), batches, seed=seed),
        "scELMo, per-sample scaled genes": per_batch_smoothed,
        "Harmony on scELMo, per-sample scaled genes": lambda: integration.harmony(
            per_batch_smoothed(), batches, seed=seed
        ),
        "scELMo, per-sample centred genes": per_batch_centred,
        "Harmony on scELMo, per-sample centred genes": lambda: integration.harmony(
            per_batch_centred(), batches, seed=seed
        ),
        "Harmony on scELMo, plain and per-sample scaled side by side": harmony_both,
        "Harmony (theta 1) on scELMo, per-sample scaled genes": lambda: harmony_theta(1.0),
        "Harmony on scELMo, genes shifted and scaled per sample within shared clusters": matched_shift_scale,
        "PCA (scanpy route)": scanpy_pca,
        "Harmony (on PCA)": lambda: integration.harmony(scanpy_pca(), batches, seed=seed),
    }


def labelled_adaptor(adata, expression, batches, labels):
    """The labelled batch-adversarial adaptor as ``scelmo integrate --label-key`` trains it (default settings)."""
    from types import SimpleNamespace

    from scelmo_desktop.core.keys import ADVERSARIAL_KEY
    from scelmo_desktop.core.settings import default
    from scelmo_desktop.core.tasks.integration import adversarial_adaptor

    alignment = SimpleNamespace(matrix=np.asarray(adata.varm["scelmo_gene_embedding"], dtype=np.float32))
    adversarial_adaptor(
        adata,
        expression,
        alignment,
        batches,
        labels,
        seed=0,
        device="cpu",
        epochs=default("epochs"),
        adversarial_weight=default("adversarial_weight"),
        batch_size=None,
        progress=None,
        cancel=None,
    )
    return adata.obsm[ADVERSARIAL_KEY]


def scvi_row(adata, batch_key, seed=0, epochs=None):
    """scVI (scvi-tools' defaults: 2,000 ``seurat_v3`` variable genes of the counts per batch, 10 latent
    dimensions; ``epochs`` None: its own epoch rule), when ``scvi`` imports; None otherwise."""
    try:
        import scvi
    except ImportError:
        return None

    def run():
        import scanpy as sc

        work = adata.copy()
        sc.pp.highly_variable_genes(work, n_top_genes=2000, flavor="seurat_v3", batch_key=batch_key, subset=True)
        scvi.settings.seed = seed
        scvi.model.SCVI.setup_anndata(work, batch_key=batch_key)
        model = scvi.model.SCVI(work)
        model.train(max_epochs=epochs or min(400, round(20000 / work.n_obs * 400)), accelerator="cpu")
        return np.asarray(model.get_latent_representation(), dtype=np.float32)

    return run


COLUMNS = ("nmi", "ari", "asw_label", "clisi", "asw_batch", "ilisi", "kbet", "graph_connectivity", "pcr_batch")


def print_tables(results: dict) -> None:
    """One markdown table per set: every metric, the aggregates, wall time and peak numpy memory."""
    header = [*COLUMNS, "S_bio", "S_batch", "overall", "s", "MiB"]
    for name, table in results.items():
        print(f"\n{name}: {table['cells']:,} cells, {table['batches']} batches\n")
        print("| method | " + " | ".join(header) + " |")
        print("|---" * (len(header) + 1) + "|")
        for method, row in table["rows"].items():
            values = [f"{row[c]:.3f}" for c in (*COLUMNS, "S_bio", "S_batch")]
            spread = f" ± {row['overall_sd']:.3f}" if row.get("seeds", 1) > 1 else ""
            values.append(f"{row['overall']:.3f}{spread}")
            values += [f"{row['seconds']:.1f}", f"{row['peak_mib']:.0f}"]
            print(f"| {method} | " + " | ".join(values) + " |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="kang,cross")
    parser.add_argument("--adaptor", action="store_true", help="also train the labelled adaptor (minutes)")
    parser.add_argument("--only", default="", help="semicolon-separated row names to run (default: all)")
    parser.add_argument("--tables", action="store_true", help="reprint the last tables and stop")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per row: means and sd of the scores")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the JSON file to update")
    parser.add_argument("--scvi-epochs", type=int, help="scVI's epochs (default: its own rule, 400 on these sets)")
    args = parser.parse_args(argv)
    if args.tables:
        print_tables(json.loads(args.results.read_text()))
        return
    import anndata as ad

    from scelmo_desktop.core.embedding import baselines
    from scelmo_desktop.core.tasks.integration import score_embedding

    results = json.loads(args.results.read_text()) if args.results.is_file() else {}
    for name in args.sets.split(","):
        adata, batch_key, label_key = load_set(name)
        batches = adata.obs[batch_key].astype(str).to_numpy()
        labels = adata.obs[label_key].astype(str).to_numpy()
        expression, X, E = gene_set_inputs(adata)
        unintegrated = baselines.pca_embedding(expression.matrix)
        rows = candidate_rows(expression, X, E, batches)
        if args.adaptor:
            rows["scELMo adaptor (batch-adversarial, labelled: trained on the labels it is scored on)"] = (
                functools.partial(labelled_adaptor, adata, expression, batches, labels)
            )
        scvi = scvi_row(adata, batch_key, epochs=args.scvi_epochs)
        if scvi is not None:
            rows[f"scVI (scvi-tools, {args.scvi_epochs or 'default'} epochs)"] = scvi
        if args.only:
            rows = {k: v for k, v in rows.items() if k in args.only.split(";")}
        fresh = {"cells": int(adata.n_obs), "batches": int(len(set(batches))), "rows": {}}
        table = results.setdefault(name, fresh) if args.only else results.__setitem__(name, fresh) or fresh
        for method in rows:
            runs = []
            for seed in range(args.seeds):  # the correction's, PCA's and Leiden's seed
                function = candidate_rows(expression, X, E, batches, seed=seed).get(method) or rows[method]
                Z, seconds, peak = measured(function)
                holder = ad.AnnData(np.zeros((len(Z), 1), np.float32))
                holder.obsm["Z"] = np.asarray(Z, dtype=np.float32)
                scores = score_embedding(holder, "Z", batches, labels, unintegrated=unintegrated, seed=seed)
                runs.append({**{k: float(v) for k, v in scores.items()}, "seconds": seconds, "peak_mib": peak})
            row = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
            row |= {f"{k}_sd": float(np.std([r[k] for r in runs])) for k in ("S_bio", "S_batch", "overall")}
            row["seeds"] = args.seeds
            table["rows"][method] = row
            print(
                f"{name:6s} {method:38s} bio {row['S_bio']:.3f} batch {row['S_batch']:.3f} "
                f"overall {row['overall']:.3f} ± {row['overall_sd']:.3f}  ({row['seconds']:.1f} s, {row['peak_mib']:.0f} MiB)",
                flush=True,
            )
            args.results.parent.mkdir(exist_ok=True)
            args.results.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
