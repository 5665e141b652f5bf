"""Integration, in-silico treatment and perturbation modelling on simulated data with a known answer, with the
real embedder and fact-sheet gene tables; and the CLI commands end to end."""

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from cli_inprocess import run_cli

from scelmo_desktop.core.data.gene_selection import select_genes
from scelmo_desktop.core.data.io import select_expression
from scelmo_desktop.core.embedding.gene_table import align, embed_texts
from scelmo_desktop.core.protocols import LLMSource
from scelmo_desktop.core.text.gene_texts import describe_gene_list
from scelmo_desktop.core.text.store import Store

NO_LLM = LLMSource("none", "", lambda: None)


@pytest.fixture(scope="module")
def small_pbmc(pbmc):
    """pbmc68k_reduced's log-normalised .raw restricted to its 200 most variable genes."""
    import anndata as ad

    expression = select_expression(pbmc, "raw")
    keep = sorted(select_genes(expression.matrix, 200))
    return ad.AnnData(
        X=expression.matrix[:, keep],
        obs=pbmc.obs[["bulk_labels"]].copy(),
        var=pd.DataFrame(index=[expression.var_names[i] for i in keep]),
    )


@pytest.fixture(scope="module")
def facts_table(small_pbmc, embedder, tmp_path_factory):
    with Store(tmp_path_factory.mktemp("store") / "store.sqlite") as store:
        texts = describe_gene_list(list(small_pbmc.var_names), mode="facts", llm=NO_LLM, store=store, params=None).texts
        table, _ = embed_texts(texts, embedder=embedder, store=store)
    return table


def test_treatment_ranks_planted_genes_first_with_small_p(small_pbmc, facts_table):
    from scelmo_desktop.core.data.simulate import simulate_condition
    from scelmo_desktop.core.tasks.treatment import in_silico_treatment

    data = simulate_condition(small_pbmc, label_key="bulk_labels", layer="X", n_planted=8, seed=0)
    planted = set(data.uns["simulation"]["planted_genes"])
    expression = select_expression(data, "X")
    alignment = align(facts_table, expression.var_names)
    result = in_silico_treatment(
        expression,
        alignment,
        data.obs["condition"],
        control="control",
        disease="disease",
        n_candidates=15,
        seeds=(0, 1),
        epochs=20,
    )
    # benchmarks/science_test_noise.py (--only treatment), seed pairs (0, 1) … (6, 7): planted genes in the top 8
    # 8, 8, 7, 8 (7.75 +- 0.5), the worst planted rank 8, 8, 9, 8 of 15 candidates: the old ">= 7 in the top 8"
    # sat at the measured minimum. Now worst - 3 sd: 7 - 1.5 -> at least 6 in the top 8, and every planted gene
    # within 9 + 1.5 -> the top 11 (a random order puts all 8 there 2.6 % of the time).
    ranks = {gene: rank for rank, gene in enumerate(result.table["gene"], start=1) if gene in planted}
    assert sum(rank <= 8 for rank in ranks.values()) >= 6 and max(ranks.values()) <= 11, ranks
    planted_rows = result.table[result.table["gene"].isin(planted)]
    assert (planted_rows["p_value"] < 0.05).mean() >= 0.75
    assert len(result.cs0) == 2 and result.table["delta_sd"].notna().all()


def test_treatment_p_values_are_not_small_without_an_effect(small_pbmc, facts_table):
    from scelmo_desktop.core.data.simulate import simulate_condition
    from scelmo_desktop.core.tasks.treatment import in_silico_treatment

    data = simulate_condition(
        small_pbmc, label_key="bulk_labels", layer="X", n_planted=8, fold=1.0, switch_on=0.0, seed=0
    )  # the same genes, no effect planted
    expression = select_expression(data, "X")
    result = in_silico_treatment(
        expression,
        align(facts_table, expression.var_names),
        data.obs["condition"],
        control="control",
        disease="disease",
        seeds=(0,),
        epochs=20,
        candidates=data.uns["simulation"]["planted_genes"],
    )
    assert np.median(result.table["p_value"]) > 0.1


def _perturbation_metrics(facts_table, *, shuffle: bool):
    from scelmo_desktop.core.data.simulate import simulate_perturbseq
    from scelmo_desktop.core.tasks.perturbation import perturbation_shifts, run_perturbation

    genes = facts_table.symbols[:120]
    lookup = facts_table.as_dict()
    data = simulate_perturbseq(genes, np.vstack([lookup[g] for g in genes]), n_single=48, n_double=12, seed=0)
    if shuffle:  # every cell's label permuted (controls too): no perturbation has an effect any more
        data.obs["perturbation"] = np.random.default_rng(1).permutation(data.obs["perturbation"].to_numpy())
    expression = select_expression(data, "X")
    shifts = perturbation_shifts(expression, data.obs["perturbation"], control="control")
    table, record = run_perturbation(shifts, lookup, align(facts_table, expression.var_names).matrix, seed=0)
    assert record["n_test"] > 0 and not record["genes_without_vector"]
    return table.set_index("method")["mse_all"]


def test_perturbation_model_beats_baselines_on_planted_signal_and_not_on_shuffled(facts_table):
    planted = _perturbation_metrics(facts_table, shuffle=False)
    assert planted["scELMo gene table"] < 0.7 * planted["no change"]
    assert planted["scELMo gene table"] < 0.7 * planted["mean shift of training perturbations"]
    shuffled = _perturbation_metrics(facts_table, shuffle=True)
    best_trivial = min(shuffled["no change"], shuffled["mean shift of training perturbations"])
    # benchmarks/science_test_noise.py (--only tasks), run seeds 0-2: shuffled model / best trivial 1.022 +- 0.021
    # (1.003-1.044), so the old 0.95 sat 2.5 sd below the worst seed; now worst - 3 sd = 0.94, rounded down. The
    # planted ratios (0.325 +- 0.012 and 0.320 +- 0.010, worst 0.336) are far from their 0.7 and stay.
    assert shuffled["scELMo gene table"] > 0.93 * best_trivial


def _cli(*args, home, check=True):
    """``scelmo *args`` in process, with the store in ``home``."""
    run = run_cli(*args, env={"OMP_NUM_THREADS": "1", "SCELMO_HOME": str(home)})
    if check:
        assert run.returncode == 0, run.stderr[-2000:]
    return run


def _integrate_simulated_batches(tmp_path, *options):
    """``scelmo integrate`` (facts, 120 genes) on ``scelmo simulate-batches`` output: (run, metrics by method)."""
    home = tmp_path / "home"
    _cli("simulate-batches", "--out", tmp_path / "batches.h5ad", home=home)
    run = _cli(
        "integrate",
        tmp_path / "batches.h5ad",
        "--batch-key",
        "batch",
        *options,
        "--mode",
        "facts",
        "--max-genes",
        "120",
        "--out",
        tmp_path / "out",
        home=home,
    )
    return run, pd.read_csv(tmp_path / "out" / "integration_metrics.csv").set_index("method")


def test_integrate_command_end_to_end(tmp_path):
    run, metrics = _integrate_simulated_batches(tmp_path, "--label-key", "bulk_labels", "--epochs", "15")
    assert len(metrics) == 5 and "Harmony (on PCA)" in metrics.index
    scores = metrics.drop(columns=[]).select_dtypes("number")
    assert ((scores >= 0) & (scores <= 1)).all().all()
    assert (
        metrics.loc["Harmony (on PCA)", "ilisi"] > metrics.loc["PCA (scanpy route)", "ilisi"]
    )  # the simulated effect is real
    assert (
        metrics.loc["scELMo adaptor (batch-adversarial, labelled)", "S_batch"]
        > metrics.loc["PCA (scanpy route)", "S_batch"]
    )
    default = metrics.loc["scELMo, samples integrated (default, no labels)"]
    assert default["S_batch"] > metrics.loc["scELMo, uncorrected", "S_batch"]  # the label-free default mixes
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert provenance["description_mode"] == "facts" and "torch" in provenance["versions"]
    assert (tmp_path / "out" / "integration_report.html").stat().st_size > 10_000  # holds the embedded PNG
    assert "scELMo, uncorrected" in run.stdout
    written = ad.read_h5ad(tmp_path / "out" / "integration.h5ad")
    assert {"X_scelmo_integrated", "X_scelmo_adaptor_integrated"} <= set(written.obsm)


def test_integrate_command_needs_no_labels(tmp_path):
    """``scelmo integrate DATA --batch-key KEY``: the label-free default is written and scored by what needs no
    labels (iLISI, PCR); no adaptor is trained, no bio score is invented."""
    run, metrics = _integrate_simulated_batches(tmp_path)
    assert (
        not {"nmi", "S_bio", "overall"} & set(metrics)
        and metrics[["ilisi", "pcr_batch", "S_batch"]].notna().all().all()
    )
    assert "scELMo adaptor (batch-adversarial, labelled)" not in metrics.index
    default, before = metrics.loc["scELMo, samples integrated (default, no labels)"], metrics.loc["scELMo, uncorrected"]
    # simulate-batches plants gene-specific shifts on half of the cells. Measured over its seeds 0-4 (this command):
    # the default's iLISI 0.907-0.936, uncorrected 0.508-0.640, their gap 0.27-0.41. Bounds: 0.8 (the worst minus
    # 0.11) and a gap of 0.1 (the worst minus 0.17): far outside the seeds' spread, failed by a method mixing nothing
    assert default["ilisi"] >= 0.8 and default["ilisi"] >= before["ilisi"] + 0.1, metrics
    written = ad.read_h5ad(tmp_path / "out" / "integration.h5ad")
    assert "X_scelmo_integrated" in written.obsm and "X_scelmo_adaptor_integrated" not in written.obsm
    record = written.uns["scelmo"]["integration"]
    assert record["label_key"] == "none" and "Harmony" in record["method"]
    # both simulated batches hold the same cell types, so the first pass finds clusters they share
    assert 1 <= record["shared_clusters"] <= record["first_pass_clusters"] and record["cells_in_shared_clusters"] > 0
    assert "labels: none" in (tmp_path / "out" / "integration_report.html").read_text()
    assert "samples integrated (default, no labels)" in run.stdout


def test_run_leaves_samples_too_small_to_scale_unintegrated(tmp_path, small_pbmc):
    """``scelmo run`` on a file whose ``obs['sample']`` holds a sample of a few cells (scirpy's Wu 2020 has 30
    samples of 1-18 cells) does not integrate by itself: a sample's gene scaling estimated from so few cells is
    noise. The run says so in one line (which samples, how many cells, what to do) and clusters the unintegrated
    space; ``samples_not_integrated`` passes samples that are large enough."""
    from scelmo_desktop.core.tasks.integration import MIN_SAMPLE_CELLS
    from scelmo_desktop.core.workflows.integration import samples_line, samples_not_integrated

    adata = small_pbmc.copy()
    adata.obs["sample"] = np.where(np.arange(adata.n_obs) < 12, "tiny", "large")
    adata.write_h5ad(tmp_path / "two_samples.h5ad")
    run = _cli("run", tmp_path / "two_samples.h5ad", "--mode", "facts", "--out", tmp_path / "out", home=tmp_path / "h")
    line = next(line for line in run.stdout.splitlines() if line.startswith("samples integrated:"))
    assert line.startswith("samples integrated: no") and "tiny (12)" in line and "batch key 'sample'" in line, line
    written = ad.read_h5ad(tmp_path / "out" / "scelmo_result.h5ad")
    assert "X_scelmo_integrated" not in written.obsm and "scelmo_leiden" in written.obs
    record = dict(written.uns["scelmo"]["integration"])
    assert record["status"] == "not run"
    assert samples_line(record, written) == line  # what the app's Integration panel shows after Open -> Run
    assert samples_line(record, written[written.obs["sample"] == "large"]) is None  # one sample: nothing to say
    adata.obs["sample"] = np.where(np.arange(adata.n_obs) < MIN_SAMPLE_CELLS, "first", "second")
    assert adata.n_obs - MIN_SAMPLE_CELLS >= MIN_SAMPLE_CELLS and samples_not_integrated(adata, "sample") is None


@pytest.mark.slow  # two simulations and two commands end to end; the fast tier has the in-process tests above
def test_treatment_and_perturb_commands_end_to_end(tmp_path):
    home = tmp_path / "home"
    sim = _cli("simulate-condition", "--out", tmp_path / "cond.h5ad", home=home)
    planted = sim.stdout.split("planted genes: ")[1].splitlines()[0].split(", ")
    _cli(
        "treatment",
        tmp_path / "cond.h5ad",
        "--condition-key",
        "condition",
        "--control",
        "control",
        "--disease",
        "disease",
        "--mode",
        "facts",
        "--max-genes",
        "40",
        "--repeats",
        "2",
        "--epochs",
        "15",
        "--out",
        tmp_path / "treat",
        home=home,
    )
    ranking = pd.read_csv(tmp_path / "treat" / "treatment_ranking.csv")
    assert len(ranking) == 20 and ranking["described"].all()  # candidates are always described
    assert len(set(ranking.head(10)["gene"]) & set(planted)) >= 7
    assert (tmp_path / "treat" / "treatment_top10.png").exists()

    _cli(
        "simulate-perturbseq",
        "--out",
        tmp_path / "perturb.h5ad",
        "--genes",
        "80",
        "--singles",
        "32",
        "--doubles",
        "8",
        home=home,
    )
    _cli(
        "perturb",
        tmp_path / "perturb.h5ad",
        "--perturbation-key",
        "perturbation",
        "--control",
        "control",
        "--mode",
        "facts",
        "--max-genes",
        "all",
        "--out",
        tmp_path / "pert",
        home=home,
    )
    metrics = pd.read_csv(tmp_path / "pert" / "perturbation_metrics.csv").set_index("method")
    assert set(metrics.index) == {
        "no change",
        "mean shift of training perturbations",
        "scELMo gene table",
        "random gene table",
    }
    assert metrics.loc["scELMo gene table", "mse_all"] < metrics.loc["no change", "mse_all"]


def test_clear_errors_for_bad_columns(tmp_path):
    home = tmp_path / "home"
    _cli("simulate-batches", "--out", tmp_path / "b.h5ad", home=home)
    run = _cli(
        "integrate",
        tmp_path / "b.h5ad",
        "--batch-key",
        "donor",
        "--label-key",
        "bulk_labels",
        "--mode",
        "facts",
        "--out",
        tmp_path / "o",
        home=home,
        check=False,
    )
    assert run.returncode == 2 and "batch column 'donor'" in run.stderr and "available" in run.stderr
    run = _cli(
        "treatment",
        tmp_path / "b.h5ad",
        "--condition-key",
        "batch",
        "--control",
        "A",
        "--disease",
        "sick",
        "--mode",
        "facts",
        "--out",
        tmp_path / "o",
        home=home,
        check=False,
    )
    assert run.returncode == 2 and "No cell has condition 'sick'" in run.stderr
