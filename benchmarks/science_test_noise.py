"""How much the metrics asserted by the real-data science tests move when nothing that matters changes (issue 22).

The tests ``tests/test_real_data.py::test_default_run_on_raw_pbmc3k_matches_the_scanpy_route`` and
``::test_kang_end_to_end_cell_types_and_conditions`` assert on the NMI / ARI that ``scelmo run`` reports (kNN 15,
Leiden sweep 0.2–2.0 keeping the best NMI against the labels) for scELMo and for the standard scanpy route on the
same cells. This script runs exactly that command once per file (``--mode facts``, the tests' settings; PBMC 3k
in full, and the tests' 1,600-cell Kang subset), then re-clusters the embeddings it wrote with the project's own
``core.tasks.cluster.leiden_on_embedding`` under the perturbations that a clean machine can bring:

* ``leiden seed s``: the ``seed`` setting (Leiden's and, above 4,096 cells, pynndescent's random state), s = 0–4;
* ``emb noise k``: every embedding value times (1 + 1e-6·N(0, 1)), draw k = 1–4, then seeds 0–4: the last-bits
  differences between CPUs (AVX-512 vs AVX2 change MiniLM's float32 output at ~1e-7 relative), which can swap
  near-tied neighbours and so move the kNN graph;
* ``table noise k`` (scELMo only): the same relative noise on the gene table (MiniLM's output) before whitening,
  PCA and the cell sums (``conditioned_embedding``), draw k = 1–2, then seeds 0–4;
* ``--full-seeds``: also ``scelmo run --seed s`` end to end (gene set, PCA, graph, Leiden), to check that the
  seed setting moves nothing but Leiden (the PCA of cell vectors uses the full SVD below 500 columns).

It prints, per file, method and perturbation: NMI / ARI mean, sd, min, max over the runs; the per-run gap
scELMo − scanpy route (same perturbation, same seed); and the mean over seeds 0–2 (what the tests assert on),
with its spread over the noise draws. No assertions: the figures are what the tests' margins are taken from.

Other sections (``--only``), for the other science assertions, over the seed setting (``--seeds``):
``kang-tasks`` (S_bio of ``scelmo integrate``, interferon genes in ``scelmo treatment``'s top 20 on the Kang
subset), ``kang-samples`` (the Kang subset as two Cell Ranger runs, integrated by ``scelmo run``), ``annotation`` (curated-marker annotation of PBMC 3k and pbmc68k_reduced, smoothing, the blood preset;
PBMC 3k also with counts × (1 + 1e-6 N)), ``tasks`` (``test_tasks``: treatment ranks of planted genes, p-values
without an effect, perturbation against its baselines; ``test_annotation_cli``'s adaptor accuracy) and
``treatment`` (the planted-gene ranks alone).

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python benchmarks/science_test_noise.py \
        [--only pbmc3k,kang,kang-tasks,kang-samples,annotation,tasks] [--seeds 5] [--draws 4] [--full-seeds 0] [--csv rows.csv]

On one core: pbmc3k + kang about 10 minutes (two cold ``scelmo run --mode facts`` and ~150 Leiden sweeps);
annotation and tasks with ``--seeds 3 --draws 2`` about 10 more.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("SCELMO_HOME", tempfile.mkdtemp(prefix="scelmo-noise-"))

import anndata as ad  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import real_files  # noqa: E402

from scelmo_desktop import cli  # noqa: E402
from scelmo_desktop.core.data.io import select_expression  # noqa: E402
from scelmo_desktop.core.embedding.cell_vectors import conditioned_embedding  # noqa: E402
from scelmo_desktop.core.tasks.cluster import leiden_on_embedding  # noqa: E402

RELATIVE_NOISE = 1e-6
REPS = {
    "X_scelmo": "scELMo",
    "X_scelmo_baseline_pca": "scanpy route",
    "X_scelmo_baseline_random": "random table",
    "X_scelmo_wa": "paper wa",
}
OURS, ROUTE = "scELMo", "scanpy route"
KANG_ISGS = {
    "ISG15",
    "IFI6",
    "IFIT1",
    "IFIT3",
    "IFIT2",
    "MX1",
    "ISG20",
    "IFITM3",
    "LY6E",
    "IFI44L",
    "OAS1",
    "RSAD2",
    "IFI27",
    "IFITM1",
    "IFI35",
    "MX2",
    "OASL",
    "XAF1",
    "CXCL10",
    "APOBEC3A",
    "TNFSF10",
    "EPSTI1",
    "HERC5",
}


def kang_small(folder: Path) -> Path:
    """The 1,600 Kang cells of ``tests/test_real_data.py``'s ``kang_small`` fixture (same rng, same draw)."""
    kang = real_files.load("kang")
    rng = np.random.default_rng(0)
    cells = np.concatenate(
        [rng.choice(np.flatnonzero(kang.obs["condition"] == c), 800, replace=False) for c in ("control", "stimulated")]
    )
    small = kang[np.sort(cells)].copy()
    del small.obs["label"]
    path = folder / "kang_small.h5ad"
    small.write_h5ad(path)
    return path


def run(path: Path, label_key: str, out: Path, store: Path, seed: int = 0) -> ad.AnnData:
    """``scelmo run PATH --label-key KEY --mode facts --compare [--seed s]`` in process, as the tests call it."""
    argv = [
        "run",
        str(path),
        "--out",
        str(out),
        "--label-key",
        label_key,
        "--mode",
        "facts",
        "--compare",
        "--store",
        str(store),
        "--seed",
        str(seed),
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(argv)
    if code != 0:
        raise SystemExit(f"scelmo {' '.join(argv)} exited {code}")
    return ad.read_h5ad(out / "scelmo_result.h5ad")


def noisy(matrix: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    return (matrix * (1 + RELATIVE_NOISE * rng.standard_normal(matrix.shape))).astype(np.float32)


def score(embedding: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    work = ad.AnnData(np.zeros((embedding.shape[0], 1), np.float32))
    work.obsm["X"] = embedding
    result = leiden_on_embedding(work, "X", labels=labels, seed=seed)
    return {
        "nmi": result.scores["nmi"],
        "ari": result.scores["ari"],
        "n_clusters": len(set(result.clusters)),
        "resolution": result.resolution,
    }


def measure(name: str, path: Path, label_key: str, work: Path, *, seeds: int, draws: int, full_seeds: int) -> list:
    store = work / f"{name}.sqlite"
    adata = run(path, label_key, work / f"{name}_run0", store)
    labels = adata.obs[label_key].astype(str).to_numpy()
    written = pd.read_csv(work / f"{name}_run0" / "metrics.csv").set_index("method")
    rows = []

    def add(method, perturbation, draw, seed, embedding):
        rows.append(
            {
                "data": name,
                "method": method,
                "perturbation": perturbation,
                "draw": draw,
                "seed": seed,
                **score(embedding, labels, seed),
            }
        )

    for seed in range(seeds):
        for rep, method in REPS.items():
            add(method, "leiden seed", 0, seed, adata.obsm[rep])
    # the run's own metrics.csv is the seed-0 row: re-clustering the written embedding must reproduce it
    for method in REPS.values():
        row = next(r for r in rows if r["method"] == method and r["seed"] == 0)
        label = {
            "scELMo": "scELMo",
            "scanpy route": "PCA (scanpy route)",
            "random table": "random-table",
            "paper wa": "scELMo-wa (paper)",
        }[method]
        print(
            f"  {name} {method}: metrics.csv NMI {written.loc[label, 'nmi']:.4f}, re-clustered {row['nmi']:.4f}",
            flush=True,
        )
    rng = np.random.default_rng(12345)
    for draw in range(1, draws + 1):
        for rep in (k for k, m in REPS.items() if m in (OURS, ROUTE)):
            embedding = noisy(adata.obsm[rep], rng)
            for seed in range(seeds):
                add(REPS[rep], "emb noise", draw, seed, embedding)
    # gene-table noise: rebuild X_scelmo from the written table (checked against the written embedding first)
    raw = ad.read_h5ad(path)[adata.obs_names]  # the cells the run's quality control kept
    expression = select_expression(raw, "auto")
    table = adata.varm["scelmo_gene_embedding"]
    assert list(expression.var_names) == list(adata.var_names)
    again = conditioned_embedding(expression.matrix, table, seed=0)
    print(
        f"  {name}: X_scelmo rebuilt from the table, max |diff| {np.abs(again - adata.obsm['X_scelmo']).max():.2e}",
        flush=True,
    )
    for draw in range(1, max(1, draws // 2) + 1):
        embedding = conditioned_embedding(expression.matrix, noisy(table, rng), seed=0)
        for seed in range(seeds):
            add(OURS, "table noise", draw, seed, embedding)
    for seed in range(1, full_seeds + 1):
        full = run(path, label_key, work / f"{name}_run{seed}", store, seed=seed)
        table_seeded = pd.read_csv(work / f"{name}_run{seed}" / "metrics.csv").set_index("method")
        for method, label in ((OURS, "scELMo"), (ROUTE, "PCA (scanpy route)")):
            rows.append(
                {
                    "data": name,
                    "method": method,
                    "perturbation": "full run --seed",
                    "draw": 0,
                    "seed": seed,
                    "nmi": table_seeded.loc[label, "nmi"],
                    "ari": table_seeded.loc[label, "ari"],
                    "n_clusters": table_seeded.loc[label, "n_clusters"],
                    "resolution": table_seeded.loc[label, "resolution"],
                }
            )
        drift = np.abs(full.obsm["X_scelmo"] - adata.obsm["X_scelmo"]).max()
        print(f"  {name}: --seed {seed} X_scelmo max |diff| vs seed 0: {drift:.2e}", flush=True)
    return rows


def spread(values) -> str:
    values = np.asarray(values, dtype=float)
    sd = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():.3f} ± {sd:.3f} [{values.min():.3f}, {values.max():.3f}] n={len(values)}"


def tables(frame: pd.DataFrame) -> None:
    frame = frame.assign(
        group=np.where(frame["perturbation"] == "leiden seed", "leiden seeds only", "any perturbation")
    )
    print("\n## NMI / ARI per method and perturbation (mean ± sd [min, max] over draws x seeds)")
    for (data, method, perturbation), part in frame.groupby(["data", "method", "perturbation"], sort=False):
        print(
            f"{data:7} {method:13} {perturbation:16} NMI {spread(part['nmi'])}   ARI {spread(part['ari'])}   "
            f"clusters {part['n_clusters'].min()}–{part['n_clusters'].max()}"
        )
    print("\n## Gap scELMo − scanpy route, paired (same perturbation, draw and seed)")
    keys = ["data", "perturbation", "draw", "seed"]
    for data, part in frame.groupby("data", sort=False):
        ours = part[part["method"] == OURS].set_index(keys)
        route = part[part["method"] == ROUTE].set_index(keys)
        both = ours.join(route, lsuffix="_ours", rsuffix="_route", how="inner")
        for metric in ("nmi", "ari"):
            gap = both[f"{metric}_ours"] - both[f"{metric}_route"]
            print(f"{data:7} per run   {metric.upper()} gap {spread(gap)}")
        # the tests' statistic: the mean over seeds 0–2, per (perturbation, draw)
        first3 = both[both.index.get_level_values("seed") < 3].groupby(level=["perturbation", "draw"])
        means = first3.mean(numeric_only=True)
        for metric in ("nmi", "ari"):
            ours_mean, route_mean = means[f"{metric}_ours"], means[f"{metric}_route"]
            print(
                f"{data:7} 3-seed mean {metric.upper()}: scELMo {spread(ours_mean)}   scanpy route "
                f"{spread(route_mean)}   gap {spread(ours_mean - route_mean)}"
            )
        table_noise = part[(part["perturbation"] == "table noise") & (part["seed"] < 3)]
        if len(table_noise):
            per_draw = table_noise.groupby("draw")[["nmi", "ari"]].mean()
            print(
                f"{data:7} 3-seed mean, table noise (scELMo): NMI {spread(per_draw['nmi'])}   "
                f"ARI {spread(per_draw['ari'])}"
            )
    for data, part in frame[frame["perturbation"] == "leiden seed"].groupby("data", sort=False):
        for method in (m for m in REPS.values() if m not in (OURS, ROUTE)):
            sub = part[(part["method"] == method) & (part["seed"] < 3)]
            print(f"{data:7} 3-seed mean {method}: NMI {sub['nmi'].mean():.3f}  ARI {sub['ari'].mean():.3f}")


# ---- the other science assertions (annotation and task tests), over the seed setting and input noise ----


def summary(name: str, values: dict[str, list]) -> None:
    for metric, series in values.items():
        print(f"{name:44} {metric:22} {spread(series)}   per run {[round(float(v), 3) for v in series]}", flush=True)


def annotation(seeds: int, draws: int) -> None:
    """Curated-marker annotation (no reference): PBMC 3k with its own label names
    (``test_no_reference_annotation_of_raw_pbmc3k_from_its_own_label_names``), pbmc68k_reduced with a threshold
    (``test_knowledge_sources::test_annotation_with_no_reference_from_curated_markers``), smoothing against none
    (``test_marker_scoring::test_smoothing_raises_accuracy_on_real_labels``) and the blood preset through the CLI
    (``test_marker_scoring::test_cli_preset_annotation_reports_calls_per_label_and_evidence``)."""
    import scanpy as sc
    import scipy.sparse as sp

    import scelmo_desktop as scelmo
    from scelmo_desktop.core.tasks.annotate import scores
    from scelmo_desktop.core.tasks.marker_scoring import knowledge_match
    from scelmo_desktop.core.tasks.smoothing import expression_graph

    home = Path(os.environ["SCELMO_HOME"])
    pbmc3k = real_files.load("pbmc3k")
    names = sorted(set(pbmc3k.obs["celltype"].astype(str)))
    values = {"accuracy": [], "macro_f1": []}
    noisy_values = {"accuracy (input noise)": [], "macro_f1 (input noise)": []}
    rng = np.random.default_rng(7)
    with scelmo.models.load(mode="facts", store=home / "annotation.sqlite") as models:
        for seed in range(seeds):
            adata = pbmc3k.copy()
            record = scelmo.tl.annotate(
                adata, method="text", candidates=names, label_key="celltype", models=models, seed=seed
            )
            values["accuracy"].append(record["metrics"]["accuracy"])
            values["macro_f1"].append(record["metrics"]["macro_f1"])
        for _ in range(draws):  # counts times (1 + 1e-6 N): the normalised log values then differ in the last bits
            adata = pbmc3k.copy()
            adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
            adata.X.data = noisy(adata.X.data, rng)
            record = scelmo.tl.annotate(adata, method="text", candidates=names, label_key="celltype", models=models)
            noisy_values["accuracy (input noise)"].append(record["metrics"]["accuracy"])
            noisy_values["macro_f1 (input noise)"].append(record["metrics"]["macro_f1"])
        summary("pbmc3k no-reference (seeds)", values)
        summary("pbmc3k no-reference (seed 0, input noise)", noisy_values)

        pbmc = sc.datasets.pbmc68k_reduced()
        names68 = sorted(set(pbmc.obs["bulk_labels"].astype(str)))
        values = {"accuracy": [], "unknown_fraction": []}
        for seed in range(seeds):
            adata = sc.datasets.pbmc68k_reduced()
            record = scelmo.tl.annotate(
                adata,
                method="text",
                text_scoring="knowledge",
                candidates=names68,
                label_key="bulk_labels",
                models=models,
                layer="raw",
                threshold=0.5,
                seed=seed,
            )
            values["accuracy"].append(record["metrics"]["accuracy"])
            values["unknown_fraction"].append(float((adata.obs["scelmo_label"].astype(str) == "Unknown").mean()))
        summary("pbmc68k knowledge, threshold 0.5", values)

    expression = select_expression(pbmc, "raw")
    truth = pbmc.obs["bulk_labels"].astype(str)
    values = {"accuracy alone": [], "accuracy smoothed": [], "smoothed - alone": []}
    for seed in range(seeds):
        alone = scores(truth, knowledge_match(expression.matrix, expression.var_names, names68, seed=seed).labels)
        smoothed = scores(
            truth,
            knowledge_match(
                expression.matrix,
                expression.var_names,
                names68,
                seed=seed,
                graph=expression_graph(expression.matrix, seed=seed),
            ).labels,
        )
        values["accuracy alone"].append(alone["accuracy"])
        values["accuracy smoothed"].append(smoothed["accuracy"])
        values["smoothed - alone"].append(smoothed["accuracy"] - alone["accuracy"])
    summary("pbmc68k smoothing vs none", values)

    path = home / "pbmc68k.h5ad"
    pbmc.write_h5ad(path)
    values = {"CD14+ Monocyte call fraction": [], "unknown_fraction": [], "CD14+ call is a classical monocyte": []}
    for seed in range(seeds):
        out = home / f"preset{seed}.h5ad"
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(
                [
                    "annotate",
                    "--query",
                    str(path),
                    "--mode",
                    "text",
                    "--preset",
                    "blood",
                    "--label-key",
                    "bulk_labels",
                    "--layer",
                    "raw",
                    "--threshold",
                    "0.7",
                    "--out",
                    str(out),
                    "--seed",
                    str(seed),
                ]
            )
        assert code == 0, code
        annotated = ad.read_h5ad(out)
        calls = annotated.uns["scelmo"]["annotation"]["calls_per_label"]
        calls = json.loads(calls) if isinstance(calls, str) else calls
        values["CD14+ Monocyte call fraction"].append(calls["CD14+ Monocyte"]["fraction"])
        values["CD14+ call is a classical monocyte"].append(
            float(calls["CD14+ Monocyte"]["call"].endswith("classical monocyte"))
        )
        values["unknown_fraction"].append(float((annotated.obs["scelmo_label"].astype(str) == "Unknown").mean()))
    summary("pbmc68k CLI --preset blood --threshold 0.7", values)


def kang_tasks(work: Path, seeds: int) -> None:
    """The rest of ``test_kang_end_to_end_cell_types_and_conditions``: ``scelmo integrate`` (S_bio of the zero-shot
    row) and ``scelmo treatment`` (interferon-stimulated genes in the top 20) over ``--seed``, the tests' settings."""
    path, store = kang_small(work), work / "kang_tasks.sqlite"
    values = {"S_bio scELMo (zero-shot)": [], "ISGs in top 20": []}
    for seed in range(seeds):
        with contextlib.redirect_stdout(io.StringIO()):
            assert (
                cli.main(
                    [
                        "integrate",
                        str(path),
                        "--batch-key",
                        "condition",
                        "--label-key",
                        "cell_type",
                        "--mode",
                        "facts",
                        "--epochs",
                        "10",
                        "--out",
                        str(work / f"int{seed}"),
                        "--store",
                        str(store),
                        "--seed",
                        str(seed),
                    ]
                )
                == 0
            )
            assert (
                cli.main(
                    [
                        "treatment",
                        str(path),
                        "--condition-key",
                        "condition",
                        "--control",
                        "control",
                        "--disease",
                        "stimulated",
                        "--mode",
                        "facts",
                        "--repeats",
                        "2",
                        "--epochs",
                        "15",
                        "--out",
                        str(work / f"treat{seed}"),
                        "--store",
                        str(store),
                        "--seed",
                        str(seed),
                    ]
                )
                == 0
            )
        table = pd.read_csv(work / f"int{seed}" / "integration_metrics.csv").set_index("method")
        values["S_bio scELMo (zero-shot)"].append(table.loc["scELMo, uncorrected", "S_bio"])
        ranking = pd.read_csv(work / f"treat{seed}" / "treatment_ranking.csv")
        values["ISGs in top 20"].append(len(set(ranking["gene"].head(20)) & KANG_ISGS))
    summary("kang_small integrate / treatment (--seed)", values)


def kang_samples(work: Path, seeds: int) -> None:
    """``test_two_kang_runs_are_integrated_by_sample_with_no_labels``: ``scelmo run ctrl.h5 stim.h5 --seed s`` (no
    labels), then the mean over Leiden seeds 0-2 of NMI / ARI on the integrated and the uncorrected space, and
    iLISI before / after, per ``--seed``."""
    import cellranger_files as cf

    paths, cell_type = cf.kang_as_two_runs(kang_small(work), real_files.load("pbmc3k").var, work / "two")
    store = work / "kang_samples.sqlite"
    values = {k: [] for k in ("NMI integrated", "NMI uncorrected", "ARI integrated", "ARI uncorrected")}
    values |= {"NMI gain": [], "ARI gain": [], "iLISI before": [], "iLISI after": []}
    for seed in range(seeds):
        out = work / f"two{seed}"
        argv = ["run", *map(str, paths), "--out", str(out), "--mode", "facts", "--store", str(store)]
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli.main([*argv, "--seed", str(seed)]) == 0
        result = ad.read_h5ad(out / "scelmo_result.h5ad")
        labels = np.array([cell_type[name] for name in result.obs_names])
        for rep, word in (("X_scelmo_integrated", "integrated"), ("X_scelmo", "uncorrected")):
            runs = [score(result.obsm[rep], labels, leiden_seed) for leiden_seed in range(3)]
            values[f"NMI {word}"].append(float(np.mean([r["nmi"] for r in runs])))
            values[f"ARI {word}"].append(float(np.mean([r["ari"] for r in runs])))
        values["NMI gain"].append(values["NMI integrated"][-1] - values["NMI uncorrected"][-1])
        values["ARI gain"].append(values["ARI integrated"][-1] - values["ARI uncorrected"][-1])
        record = result.uns["scelmo"]["integration"]
        values["iLISI before"].append(record["ilisi_before"])
        values["iLISI after"].append(record["ilisi_after"])
    summary("Kang as two Cell Ranger runs, integrated by sample (--seed)", values)


def treatment_planted(small, table, seeds: int) -> None:
    """``test_treatment_ranks_planted_genes_first_with_small_p``: one adaptor per seed 0 .. 2·seeds − 1 (a table
    each); the test's ranking over seeds (a, b) is the ranking of the two tables' mean Δ cosine, so every pair
    (0, 1), (2, 3), … is scored from them, with the ranks of the 8 planted genes among the 15 candidates."""
    from scelmo_desktop.core.data.simulate import simulate_condition
    from scelmo_desktop.core.embedding.gene_table import align
    from scelmo_desktop.core.tasks.treatment import in_silico_treatment

    data = simulate_condition(small, label_key="bulk_labels", layer="X", n_planted=8, seed=0)
    planted = set(data.uns["simulation"]["planted_genes"])
    expr = select_expression(data, "X")
    alignment = align(table, expr.var_names)
    per_seed = [
        in_silico_treatment(
            expr,
            alignment,
            data.obs["condition"],
            control="control",
            disease="disease",
            n_candidates=15,
            seeds=(seed,),
            epochs=20,
        ).table.set_index("gene")
        for seed in range(2 * seeds)
    ]
    values = {"planted in top 8": [], "worst planted rank": [], "mean planted rank": []}
    for first in range(0, 2 * seeds, 2):
        delta = (per_seed[first]["delta_cosine"] + per_seed[first + 1]["delta_cosine"]) / 2
        ranking = delta.reset_index().sort_values(["delta_cosine", "gene"], ascending=[False, True])
        ranks = {g: r for r, g in enumerate(ranking["gene"], start=1) if g in planted}
        values["planted in top 8"].append(sum(r <= 8 for r in ranks.values()))
        values["worst planted rank"].append(max(ranks.values()))
        values["mean planted rank"].append(float(np.mean(list(ranks.values()))))
        print(f"  seeds ({first}, {first + 1}): planted ranks {sorted(ranks.values())}", flush=True)
    summary("treatment, planted (seed pairs 0-1, 2-3, ...)", values)


def tasks(seeds: int, only_treatment: bool = False) -> None:
    """``test_tasks``: treatment on planted genes and without an effect, perturbation against its baselines (the
    data fixed at simulation seed 0 as in the tests; the training seeds varied), and ``test_annotation_cli``'s
    adaptor accuracy over ``--seed``."""
    import scanpy as sc
    from sklearn.model_selection import train_test_split

    from scelmo_desktop.backends import registry
    from scelmo_desktop.core.data.gene_selection import select_genes
    from scelmo_desktop.core.data.simulate import simulate_condition, simulate_perturbseq
    from scelmo_desktop.core.embedding.gene_table import align, embed_texts
    from scelmo_desktop.core.protocols import LLMSource
    from scelmo_desktop.core.tasks.perturbation import perturbation_shifts, run_perturbation
    from scelmo_desktop.core.tasks.treatment import in_silico_treatment
    from scelmo_desktop.core.text.gene_texts import describe_gene_list
    from scelmo_desktop.core.text.store import Store

    home = Path(os.environ["SCELMO_HOME"])
    pbmc = sc.datasets.pbmc68k_reduced()
    expression = select_expression(pbmc, "raw")
    keep = sorted(select_genes(expression.matrix, 200))
    small = ad.AnnData(
        X=expression.matrix[:, keep],
        obs=pbmc.obs[["bulk_labels"]].copy(),
        var=pd.DataFrame(index=[expression.var_names[i] for i in keep]),
    )
    embedder = registry.open_embedder(registry.find_model("sentence-transformers"), device="cpu")
    with Store(home / "tasks.sqlite") as store:
        texts = describe_gene_list(
            list(small.var_names), mode="facts", llm=LLMSource("none", "", lambda: None), store=store, params=None
        ).texts
        table, _ = embed_texts(texts, embedder=embedder, store=store)

    treatment_planted(small, table, seeds)
    if only_treatment:
        return

    null = simulate_condition(small, label_key="bulk_labels", layer="X", n_planted=8, fold=1.0, switch_on=0.0, seed=0)
    expr0 = select_expression(null, "X")
    values = {"median p": []}
    for seed in range(seeds):
        result = in_silico_treatment(
            expr0,
            align(table, expr0.var_names),
            null.obs["condition"],
            control="control",
            disease="disease",
            seeds=(seed,),
            epochs=20,
            candidates=null.uns["simulation"]["planted_genes"],
        )
        values["median p"].append(float(np.median(result.table["p_value"])))
    summary("treatment, no effect", values)

    genes = table.symbols[:120]
    lookup = table.as_dict()
    values = {"planted: model / no change": [], "planted: model / mean shift": [], "shuffled: model / best trivial": []}
    for seed in range(seeds):
        for shuffle in (False, True):
            sim = simulate_perturbseq(genes, np.vstack([lookup[g] for g in genes]), n_single=48, n_double=12, seed=0)
            if shuffle:
                sim.obs["perturbation"] = np.random.default_rng(1).permutation(sim.obs["perturbation"].to_numpy())
            e = select_expression(sim, "X")
            shifts = perturbation_shifts(e, sim.obs["perturbation"], control="control")
            mse = run_perturbation(shifts, lookup, align(table, e.var_names).matrix, seed=seed)[0].set_index("method")[
                "mse_all"
            ]
            if shuffle:
                values["shuffled: model / best trivial"].append(
                    mse["scELMo gene table"] / min(mse["no change"], mse["mean shift of training perturbations"])
                )
            else:
                values["planted: model / no change"].append(mse["scELMo gene table"] / mse["no change"])
                values["planted: model / mean shift"].append(
                    mse["scELMo gene table"] / mse["mean shift of training perturbations"]
                )
    summary("perturbation (run seed varied)", values)

    adata = pbmc.copy()
    reference, _ = train_test_split(
        np.arange(adata.n_obs), test_size=0.3, stratify=adata.obs["bulk_labels"], random_state=0
    )
    adata.obs["role"] = "query"
    adata.obs.iloc[reference, adata.obs.columns.get_loc("role")] = "reference"
    path = home / "pbmc_split.h5ad"
    adata.write_h5ad(path)
    values = {"accuracy": []}
    for seed in range(seeds):
        out = home / f"adaptor{seed}.h5ad"
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(
                [
                    "annotate",
                    "--query",
                    str(path),
                    "--split-key",
                    "role",
                    "--reference-value",
                    "reference",
                    "--label-key",
                    "bulk_labels",
                    "--mode",
                    "adaptor",
                    "--description-mode",
                    "facts",
                    "--out",
                    str(out),
                    "--seed",
                    str(seed),
                    "--store",
                    str(home / "adaptor.sqlite"),
                ]
            )
        assert code == 0, code
        values["accuracy"].append(float(ad.read_h5ad(out).uns["scelmo"]["annotation"]["metrics"]["accuracy"]))
    summary("annotate --mode adaptor (pbmc68k split)", values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only",
        default="pbmc3k,kang",
        help="any of pbmc3k, kang, kang-tasks, kang-samples, annotation, tasks (treatment: its first part only), "
        "or a set of tests/real_files.MORE_LABELLED (wu2020, tirosh2016, ...)",
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--draws", type=int, default=4)
    parser.add_argument("--full-seeds", type=int, default=0, help="also `scelmo run --seed s` for s = 1..N")
    parser.add_argument("--csv", type=Path, help="write every run's row here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="scelmo-noise-") as folder:
        work = Path(folder)
        for name in args.only.split(","):
            if name in ("annotation", "tasks", "treatment", "kang-tasks", "kang-samples"):
                print(f"# {name}", flush=True)
                if name == "annotation":
                    annotation(args.seeds, args.draws)
                elif name in ("tasks", "treatment"):
                    tasks(args.seeds, only_treatment=name == "treatment")
                elif name == "kang-samples":
                    kang_samples(work, args.seeds)
                else:
                    kang_tasks(work, args.seeds)
                continue
            if name in real_files.MORE_LABELLED:
                path, key = work / f"{name}.h5ad", "label"
                real_files.load_labelled(name).write_h5ad(path)
            elif name == "pbmc3k":
                path, key = real_files.path("pbmc3k"), "celltype"
            else:
                path, key = kang_small(work), "cell_type"
            print(f"# {name}", flush=True)
            rows += measure(name, path, key, work, seeds=args.seeds, draws=args.draws, full_seeds=args.full_seeds)
    if not rows:
        return
    frame = pd.DataFrame(rows)
    if args.csv:
        frame.to_csv(args.csv, index=False)
    tables(frame)


if __name__ == "__main__":
    main()
