"""The app's intake and QC: two Cell Ranger runs opened at once become samples; the QC panel measures them,
suggests thresholds per sample, updates the kept count as a bound moves, and Apply filters the cells every later
panel uses, with the thresholds recorded."""

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from cellranger_files import run_from, write_h5_v3, write_mtx  # noqa: E402
from gui_support import finish  # noqa: E402  (the window fixture comes from the same plugin)

MITO = ["MT-CO1", "MT-CO2", "MT-ND1", "MT-ATP6", "MT-CYB"]


def _run(seed: int, n_cells: int = 300, n_genes: int = 300, n_damaged: int = 15):
    """Poisson counts over real-looking symbols with five mitochondrial genes; the first ``n_damaged`` cells are
    damaged (a third of their counts mitochondrial), the way broken cells look."""
    rng = np.random.default_rng(seed)
    profile = rng.dirichlet(np.full(n_genes, 0.5))
    profile[:5] = 0.01  # mitochondrial share of a healthy cell: 5 genes x 1%
    profile /= profile.sum()
    counts = np.vstack([rng.multinomial(t, profile) for t in rng.integers(1500, 4000, size=n_cells)])
    counts[:n_damaged, :5] += (counts[:n_damaged].sum(axis=1, keepdims=True) // 10).astype(counts.dtype)
    ids = [f"ENSG{9000 + i:011d}" for i in range(n_genes)]
    names = MITO + [f"GENE{i}" for i in range(5, n_genes)]
    barcodes = np.array([f"{''.join(rng.choice(list('ACGT'), 16))}-1" for _ in range(n_cells)])
    return run_from(counts, barcodes, ids, names)


@pytest.fixture
def two_samples(tmp_path):
    h5 = write_h5_v3(_run(1), tmp_path / "patientA" / "filtered_feature_bc_matrix.h5")
    folder = write_mtx(_run(2), tmp_path / "patientB" / "filtered_feature_bc_matrix")
    return h5, folder


def test_two_runs_open_as_samples_and_qc_filters_them(qtbot, window, two_samples):
    h5, folder = two_samples
    window.open_data([str(h5), str(folder)])
    adata = window.project.adata
    assert adata is not None and sorted(adata.obs["sample"].unique()) == ["patientA", "patientB"]
    assert adata.n_obs == 600 and "gene_ids" in adata.var
    assert "patientA" in window.panels["Data"].intake.text()  # one line per sample, as the CLI prints

    panel = window.panels["QC"]
    panel.run_measure()
    finish(qtbot, window)
    assert panel.thresholds is not None and panel.sample.count() == 2
    for column in ("total_counts", "n_genes_by_counts", "pct_counts_mt", "doublet_score", "predicted_doublet"):
        assert column in adata.obs, column  # scanpy's names
    suggested = panel.thresholds.for_sample("patientA")["max_pct_mt"]
    assert suggested is not None and suggested < 20  # the damaged cells sit far above the healthy median (~5%)
    damaged = adata.obs_names[:15]
    kept_before = panel.last_filtering.n_kept
    panel.bound_boxes["max_pct_mt"].setValue(99.0)  # typing a looser bound keeps the damaged cells of patientA
    assert panel.last_filtering.n_kept > kept_before and "Kept" in panel.kept.text()
    panel.bound_boxes["max_pct_mt"].setValue(suggested)

    panel.apply()
    kept = window.project.adata
    assert kept.n_obs == panel.per_sample()["kept"].sum() < 600
    assert not set(damaged) & set(kept.obs_names)  # the damaged cells of patientA are gone
    record = kept.uns["scelmo"]["qc"]
    assert record["removed_by_rule"]["max_pct_mt"] >= 15 and record["thresholds_moved_by_hand"]
    assert window.project.alignment is None  # later results belong to the new cells: computed again
    # the samples are the Integration panel's batches by default
    integration = window.panels["Integration"]
    integration.refresh()
    assert integration.batch.currentText() == "sample"


def test_a_reopened_project_shows_its_hand_moved_thresholds_again(qtbot, window, two_samples, tmp_path):
    h5, folder = two_samples
    window.open_data([str(h5), str(folder)])
    panel = window.panels["QC"]
    panel.run_measure()
    finish(qtbot, window)
    panel.sample.setCurrentText("patientA")
    panel.bound_boxes["max_pct_mt"].setValue(12.5)  # moved by hand, for patientA only
    panel.apply()
    kept = window.project.adata.n_obs
    saved = window.project.save(tmp_path / "analysis")
    window.open_project(str(saved))
    assert window.project.adata.n_obs == 600 and "applied QC thresholds" in panel.kept.text()
    panel.run_measure()
    finish(qtbot, window)
    assert panel.thresholds.for_sample("patientA")["max_pct_mt"] == 12.5
    panel.apply()
    assert window.project.adata.n_obs == kept
