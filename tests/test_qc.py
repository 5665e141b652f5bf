"""Quality control before anything else (issue 23): scanpy's QC metrics on the raw counts, Scrublet per sample,
thresholds suggested per sample, the filter, its record and files. The fast tests use small made-up count
matrices; the slow ones run on real PBMC 3k and Kang 2018 counts (``tests/real_files.py``)."""

import inspect
import json

import numpy as np
import pandas as pd
import pytest
import real_files
import scipy.sparse as sp

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.keys import UNS_KEY
from scelmo_desktop.core.qc.doublets import MIN_DOUBLET_CELLS, threshold_minimum
from scelmo_desktop.core.qc.thresholds import MIN_THRESHOLD_CELLS, apply_thresholds, suggest_thresholds
from scelmo_desktop.core.settings import SETTINGS, PipelineSettings
from scelmo_desktop.core.workflows.qc import run_qc

SCANPY_OBS = ["total_counts", "n_genes_by_counts", "pct_counts_mt", "pct_counts_ribo", "pct_counts_hb"]
SCANPY_LOG1P = ["log1p_total_counts", "log1p_n_genes_by_counts", "log1p_total_counts_mt"]


def made_up_counts(n_cells: int, *, seed: int = 0, samples: tuple[str, ...] = ("a",)):
    """Counts of ``n_cells`` cells over 400 genes (13 MT-, 20 ribosomal, 2 haemoglobin), library sizes varying
    tenfold, mitochondrial share a few percent, cells spread over ``samples``."""
    import anndata as ad

    rng = np.random.default_rng(seed)
    names = (
        [f"MT-G{i}" for i in range(13)]
        + [f"RPL{i}" for i in range(10)]
        + [f"RPS{i}" for i in range(10)]
        + ["HBB", "HBA1"]
        + [f"GENE{i}" for i in range(365)]
    )
    profile = rng.gamma(0.6, 1.0, len(names))
    profile[:13] *= 0.03 * profile[13:].sum() / profile[:13].sum()  # ~3 % mitochondrial
    profile /= profile.sum()
    size = rng.lognormal(np.log(2000), 0.35, n_cells)
    counts = rng.poisson(size[:, None] * profile[None, :]).astype(np.float32)
    adata = ad.AnnData(sp.csr_matrix(counts), var=pd.DataFrame(index=names))
    adata.obs_names = [f"cell{i}" for i in range(n_cells)]
    adata.obs["sample"] = pd.Categorical([samples[i % len(samples)] for i in range(n_cells)], categories=samples)
    return adata


def _load(name):
    try:
        return real_files.load(name)
    except real_files.FetchError as exc:
        pytest.skip(f"real data could not be fetched: {exc}")


# ---- fast: made-up counts ---------------------------------------------------------------------------------------


def test_a_sample_too_large_for_scrublet_at_once_is_scored_in_random_parts(monkeypatch):
    """Scrublet's memory grows with the cells it scores at once (about 20 GB for 100,000), so a larger sample is
    scored in random parts, each with its own threshold; the limit is lowered here to run the rule on 900 cells.
    Every cell is scored exactly once and the record says how."""
    from scelmo_desktop.core.qc import doublets

    rows = np.arange(10, 910)
    monkeypatch.setattr(doublets, "MAX_SCORED_CELLS", 400)
    parts = doublets.scored_parts(rows, seed=0)
    assert [len(p) for p in parts] == [300, 300, 300] and doublets.largest_part(900) == 300
    assert np.array_equal(np.sort(np.concatenate(parts)), rows) and all(np.all(np.diff(p) > 0) for p in parts)
    assert all(np.array_equal(a, b) for a, b in zip(parts, doublets.scored_parts(rows, seed=0)))  # seeded
    adata = made_up_counts(1100)
    labels = pd.Series(["big"] * 800 + ["small"] * 300)
    scores, called, results = doublets.score_doublets(adata.X, labels, order=["big", "small"], seed=0)
    big, small = results
    assert big.cells == 800 and "scored in 2 random parts of at most 400 cells" in big.note
    assert small.cells == 300 and "parts" not in small.note
    assert np.isfinite(scores).sum() >= 0.99 * 1100  # Scrublet leaves out only cells with under 3 genes
    assert big.doublets == int(called[(labels == "big").to_numpy()].sum())


@pytest.mark.parametrize("n_cells", [1, 2, 10])
def test_tiny_inputs_get_their_metrics_and_say_what_was_skipped(n_cells):
    adata = made_up_counts(n_cells)
    outcome = run_qc(adata, settings=PipelineSettings())
    assert outcome.adata.n_obs == n_cells and outcome.keep.all()
    assert set(SCANPY_OBS + SCANPY_LOG1P) <= set(adata.obs.columns)
    skipped = " ".join(outcome.skipped)
    assert f"fewer than {MIN_THRESHOLD_CELLS}" in skipped and f"fewer than {MIN_DOUBLET_CELLS}" in skipped
    assert adata.obs["doublet_score"].isna().all() and not adata.obs["predicted_doublet"].any()
    assert adata.uns[UNS_KEY]["qc"]["kept"] == n_cells


def test_metrics_are_scanpys_own_and_land_on_the_counts_wherever_they_are():
    import scanpy as sc

    adata = made_up_counts(60)
    expected = adata.copy()
    expected.var["mt"] = expected.var_names.str.startswith("MT-")
    expected.var["ribo"] = expected.var_names.str.startswith(("RPS", "RPL"))
    expected.var["hb"] = expected.var_names.str.contains("^HB[^(P)]")
    sc.pp.calculate_qc_metrics(expected, qc_vars=["mt", "ribo", "hb"], percent_top=None, log1p=True, inplace=True)
    # the counts kept in a layer, X log-normalised, as after scanpy's normalize_total + log1p
    adata.layers["counts"] = adata.X.copy()
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    outcome = run_qc(adata, settings=PipelineSettings())
    assert outcome.record["matrix"]["layer"] == "counts"
    for key in SCANPY_OBS + SCANPY_LOG1P:
        np.testing.assert_allclose(adata.obs[key], expected.obs[key], rtol=1e-5, err_msg=key)
    assert adata.var["mt"].sum() == 13 and adata.var["ribo"].sum() == 20 and adata.var["hb"].sum() == 2


def test_log_normalised_data_without_counts_is_refused():
    import scanpy as sc

    adata = made_up_counts(30)
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    with pytest.raises(ScelmoError, match="needs raw counts.*log-normalised.*'counts' layer or in .raw"):
        run_qc(adata, settings=PipelineSettings())
    adata.raw = made_up_counts(30)  # counts in .raw, as many files keep them
    assert run_qc(adata, settings=PipelineSettings()).record["matrix"]["layer"] == "raw"


def test_qc_that_would_remove_every_cell_names_the_threshold():
    adata = made_up_counts(40)
    with pytest.raises(
        ScelmoError,
        match=r"remove all 40 cells: the most % mitochondrial counts threshold "
        r"\(max_pct_mt; a: 0\.1\) removes 40.*Loosen the max pct mt setting",
    ):
        run_qc(adata, settings=PipelineSettings(max_pct_mt=0.1))
    with pytest.raises(ScelmoError, match=r"fewest genes threshold \(min_genes; a: 5000\) removes 40"):
        run_qc(adata, settings=PipelineSettings(min_genes=5000))


def test_a_run_left_with_too_few_cells_by_qc_says_which_thresholds_and_how_to_loosen_them():
    from scelmo_desktop.core.workflows.pipeline import quality_control

    adata = made_up_counts(40)
    genes = np.asarray((adata.X > 0).sum(axis=1)).ravel()
    keep_five = np.sort(genes)[-5]  # a gene floor that keeps about 5 cells (ties: a few more), under the run's 10
    with pytest.raises(
        ScelmoError, match=r"\d cell\(s\) of 40 after quality control \(min genes 3\d.*loosen the"
    ) as caught:
        quality_control(adata, settings=PipelineSettings(min_genes=int(keep_five)))
    assert "open a file with more cells" not in str(caught.value)


def test_thresholds_are_suggested_per_sample_and_moved_live():
    adata = made_up_counts(200, samples=("low", "high"))
    high = (adata.obs["sample"] == "high").to_numpy()
    adata.X = sp.csr_matrix(adata.X.multiply(np.where(high, 4.0, 1.0)[:, None]))  # four times the depth
    run_qc(adata, settings=PipelineSettings(remove_doublets=False))
    thresholds = suggest_thresholds(adata.obs, "sample")
    low_bounds, high_bounds = thresholds.for_sample("low"), thresholds.for_sample("high")
    assert high_bounds["min_counts"] > 2 * low_bounds["min_counts"]
    assert high_bounds["max_counts"] > 2 * low_bounds["max_counts"]
    # pooled bounds would cut into both samples; per sample, each keeps nearly all its cells
    assert apply_thresholds(adata.obs, thresholds).per_sample.set_index("sample")["kept"].min() >= 95
    # a slider: a cap of 1 % mitochondrial on one sample removes cells there only, without recomputing
    moved = apply_thresholds(adata.obs, thresholds.replace("low", max_pct_mt=1.0))
    per_sample = moved.per_sample.set_index("sample")
    assert per_sample.loc["low", "removed_max_pct_mt"] == 100 and per_sample.loc["high", "removed_max_pct_mt"] == 0
    assert moved.removed["max_pct_mt"] == 100 and moved.n_kept <= 100


def test_a_sample_column_named_by_the_caller_must_exist_while_the_default_may_be_absent():
    adata = made_up_counts(30)
    del adata.obs["sample"]
    with pytest.raises(ScelmoError, match="sample column 'donor' is not in obs"):
        run_qc(adata, settings=PipelineSettings(), sample_key="donor")
    outcome = run_qc(adata, settings=PipelineSettings())
    assert list(outcome.table["sample"]) == ["all cells"] and "all cells treated as one sample" in outcome.skipped[0]


def test_qc_off_keeps_every_cell_and_computes_nothing():
    adata = made_up_counts(30)
    outcome = run_qc(adata, settings=PipelineSettings(qc="off"))
    assert outcome.keep.all() and outcome.adata is adata and "total_counts" not in adata.obs
    assert adata.uns[UNS_KEY]["qc"]["status"] == "off"


def test_doublet_threshold_is_scikit_images_minimum_method():
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(0.1, 0.03, 3000), rng.normal(0.6, 0.05, 600)])
    assert 0.2 < threshold_minimum(scores) < 0.5
    assert threshold_minimum(np.full(10, 0.3)) is None
    skimage = pytest.importorskip("skimage.filters")  # when scikit-image is there, the two agree exactly
    assert threshold_minimum(scores) == pytest.approx(float(skimage.threshold_minimum(scores)))


def test_scanpy_face_filters_in_place_or_returns_a_copy(tmp_path):
    from scelmo_desktop import pp

    parameters = inspect.signature(pp.qc).parameters
    for name in ("qc", "qc_nmads", "max_pct_mt", "min_genes", "remove_doublets"):
        assert parameters[name].default == SETTINGS[name].default, name
    adata = made_up_counts(300)
    adata.X[:5] = adata.X[:5].multiply(0.02)  # five near-empty cells
    adata.X = sp.csr_matrix(adata.X.toarray().round())
    copy = pp.qc(adata, inplace=False, out=tmp_path)
    assert adata.n_obs == 300 and "total_counts" not in adata.obs  # untouched
    assert copy.n_obs < 300 and not set(adata.obs_names[:5]) & set(copy.obs_names)
    assert pp.qc(adata) is None and adata.n_obs == copy.n_obs
    table = pd.read_csv(tmp_path / "qc_table.csv")
    assert list(table["sample"]) == ["a"] and int(table["removed_min_counts"].iloc[0]) >= 5
    record = json.loads((tmp_path / "qc_provenance.json").read_text())
    assert record["removed"] == 300 - copy.n_obs and record["settings"]["qc_nmads"] == SETTINGS["qc_nmads"].default
    for name in ("qc_violins.png", "qc_genes_vs_counts.png", "qc_doublet_scores.png", "qc_report.html"):
        assert (tmp_path / name).stat().st_size > 1000, name
    import anndata as ad

    assert ad.read_h5ad(tmp_path / "qc_filtered.h5ad").n_obs == copy.n_obs


# ---- slow: real PBMC 3k and Kang counts -------------------------------------------------------------------------


@pytest.mark.slow
def test_pbmc3k_keeps_almost_every_cell_and_removes_planted_low_quality_ones():
    import anndata as ad

    pbmc = _load("pbmc3k")
    rng = np.random.default_rng(0)
    mito = np.asarray(pbmc.var_names.str.startswith("MT-"))
    picked = rng.choice(pbmc.n_obs, 40, replace=False)
    dying = pbmc.X[picked[:20]].toarray()
    dying[:, mito] += 0.5 * dying.sum(axis=1, keepdims=True) / mito.sum()  # a third of the cell mitochondrial
    sparse_cells = rng.binomial(pbmc.X[picked[20:]].toarray().astype(int), 0.04).astype(np.float32)
    planted = ad.AnnData(sp.csr_matrix(np.vstack([np.round(dying), sparse_cells])), var=pbmc.var[[]].copy())
    planted.obs_names = [f"dying{i}" for i in range(20)] + [f"few-genes{i}" for i in range(20)]
    adata = ad.concat([pbmc, planted], join="outer")
    adata.var_names_make_unique()
    outcome = run_qc(adata, settings=PipelineSettings())
    assert set(SCANPY_OBS + SCANPY_LOG1P + ["doublet_score", "predicted_doublet"]) <= set(adata.obs.columns)
    kept = set(outcome.adata.obs_names)
    assert not kept & set(planted.obs_names)  # every planted cell goes
    assert len(kept & set(pbmc.obs_names)) >= 0.9 * pbmc.n_obs  # 10x's called cells are mostly good
    record = adata.uns[UNS_KEY]["qc"]
    assert record["removed_by_rule"]["max_pct_mt"] >= 20 and record["removed_by_rule"]["min_genes"] >= 20
    assert 0 < record["removed_by_rule"]["doublet"] < 0.05 * adata.n_obs
    assert record["thresholds"]["all cells"]["max_pct_mt"] >= 5


@pytest.mark.slow
def test_kang_conditions_get_their_own_thresholds():
    kang = _load("kang")
    rng = np.random.default_rng(0)
    cells = np.concatenate(
        [rng.choice(np.flatnonzero(kang.obs["stim"] == s), 600, replace=False) for s in ("CTRL", "STIM")]
    )
    adata = kang[np.sort(cells)].copy()
    adata.obs["sample"] = adata.obs["stim"].astype(str)
    stim = (adata.obs["sample"] == "STIM").to_numpy()
    # the stimulated library sequenced at a third of the depth: pooled bounds would cut it, per-sample ones do not
    adata.X = sp.csr_matrix(rng.binomial(adata.X.toarray().astype(int), np.where(stim, 1 / 3, 1.0)[:, None]))
    outcome = run_qc(adata, settings=PipelineSettings())
    table = outcome.table.set_index("sample")
    assert list(table.index) == ["CTRL", "STIM"] and (table["cells"] == 600).all()
    assert table.loc["STIM", "min_counts"] < 0.6 * table.loc["CTRL", "min_counts"]
    assert (table["kept"] >= 0.9 * 600).all()
    assert all(table["doublet_threshold"].notna())  # each sample scored on its own
    assert any("no MT-/mt- genes" in s for s in outcome.skipped)  # Kang's file carries no mitochondrial genes
