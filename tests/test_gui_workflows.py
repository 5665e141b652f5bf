"""The app's analysis panels run the same workflows as the CLI: an Ensembl-indexed file is mapped to symbols in
the Integration and Treatment panels, their results carry provenance and a report, and an adaptor trained in
the Fine-tuning panel is reused by the Annotation panel on data without a reference."""

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pytestqt")

from gui_support import finish  # noqa: E402  (the window fixture comes from the same plugin)


@pytest.fixture
def facts_window(window):
    window.project.settings.mode = "facts"  # the knowledge's fact sheets: no LLM time in these tests
    window.project.settings.max_genes = 200
    return window


@pytest.fixture
def ensembl_h5ad(tmp_path, pbmc):
    """pbmc68k_reduced's log-normalised .raw with Ensembl ids as var_names (no symbol column), plus a batch and a
    condition column: the way many pipelines export files."""
    import anndata as ad

    from scelmo_desktop.core.knowledge.genes import GeneCatalog

    catalog = GeneCatalog.load()
    raw = pbmc.raw.to_adata()
    ids = [getattr(catalog.records.get(g), "ensembl_id", None) for g in raw.var_names]
    keep = np.array([bool(i) for i in ids])
    adata = ad.AnnData(raw.X[:, keep], obs=pbmc.obs[["bulk_labels"]].copy())
    adata.var_names = [i for i in ids if i]
    adata.var_names_make_unique()
    rng = np.random.default_rng(0)
    adata.obs["batch"] = np.where(rng.random(adata.n_obs) < 0.5, "A", "B")
    adata.obs["condition"] = np.where(rng.random(adata.n_obs) < 0.5, "control", "disease")
    path = tmp_path / "ensembl_indexed.h5ad"
    adata.write_h5ad(path)
    assert adata.var_names[0].startswith("ENSG") and adata.n_vars > 600
    return path


def latest_results(name: str):
    from scelmo_desktop.core._infra.paths import user_data_dir

    folders = sorted((user_data_dir() / "results").glob(f"*-{name}"))
    assert folders, f"no results folder for {name}"
    return folders[-1]


def provenance(folder) -> dict:
    record = json.loads((folder / "provenance.json").read_text())
    assert record["versions"]["scelmo-desktop"] and record["embedder"]["name"] and record["seed"] == 0
    assert record["description_mode"] == "facts" and record["settings"]["max_genes"] == 200
    return record


def test_integration_panel_maps_ensembl_ids_and_records_provenance(qtbot, facts_window, ensembl_h5ad):
    window = facts_window
    window.open_data(str(ensembl_h5ad))
    finish(qtbot, window)
    panel = window.panels["Integration"]
    panel.refresh()
    panel.batch.setCurrentText("batch")
    panel.label.setCurrentText("bulk_labels")
    panel.epochs.setValue(2)
    panel.run()
    finish(qtbot, window)
    folder = latest_results("integration")
    record = provenance(folder)
    # without the Ensembl → symbol mapping no gene had a vector (the drift this test pins down)
    assert record["genes_with_vector"] >= 150 and record["n_genes"] == window.project.adata.n_vars
    assert {"integration_metrics.csv", "integration_scores.png", "integration_report.html", "integration.h5ad"} <= {
        p.name for p in folder.iterdir()
    }
    methods = set(panel.table.model_.frame["method"])
    assert {"scELMo, samples integrated (default, no labels)", "PCA (scanpy route)", "Harmony (on PCA)"} <= methods
    assert "best overall" in panel.status.text() and "X_scelmo_integrated" in panel.status.text()


def test_treatment_panel_maps_ensembl_ids_and_records_provenance(qtbot, facts_window, ensembl_h5ad):
    window = facts_window
    window.open_data(str(ensembl_h5ad))
    finish(qtbot, window)
    panel = window.panels["Treatment & perturbation"]
    panel.refresh()
    panel.column.setCurrentText("condition")
    panel.repeats.setValue(1)
    panel.run()
    finish(qtbot, window)
    folder = latest_results("treatment")
    record = provenance(folder)
    assert record["genes_with_vector"] >= 150
    assert record["device"] in ("cpu", "cuda", "mps")  # the project's device setting, resolved (not forced CPU)
    ranking = panel.table.model_.frame
    assert len(ranking) == 20 and ranking["gene"].str.startswith("ENSG").all()
    assert (folder / "treatment_ranking.csv").is_file() and (folder / "treatment_report.html").is_file()


def test_adaptor_from_fine_tuning_is_reused_for_annotation_without_reference(qtbot, facts_window, tmp_path):
    window = facts_window
    from scelmo_desktop.core.data.demo import DEMO_SOURCE
    from scelmo_desktop.gui.panels.annotation import NO_REFERENCE

    window.open_data(DEMO_SOURCE)
    finish(qtbot, window)
    window.panels["Embeddings"].run_embed()
    finish(qtbot, window)
    tuning = window.panels["Fine-tuning"]
    tuning.refresh()
    tuning.epochs.setValue(5)
    tuning.run()
    finish(qtbot, window)
    assert tuning.adaptor is not None and len(tuning.losses) >= 1  # live points came from structured metrics
    saved = tmp_path / "adaptor.pt"
    tuning.adaptor.save(saved)

    annotation = window.panels["Annotation"]
    annotation.refresh()
    annotation.mode.setCurrentText("adaptor")
    annotation.reference.setCurrentText(NO_REFERENCE)
    annotation.adaptor_path.setText(str(saved))
    annotation.label.setCurrentText("bulk_labels")
    annotation.run()
    finish(qtbot, window)
    adata = window.project.adata
    record = adata.uns["scelmo"]["annotation"]
    assert record["adaptor"]["reused"] and record["adaptor"]["readout"] == "head"
    assert set(adata.obs["scelmo_label"].astype(str)) <= set(adata.obs["bulk_labels"].astype(str)) | {"Unknown"}
    # trained on these very cells, the head must recover most labels
    assert record["metrics"]["accuracy"] > 0.6, record["metrics"]
    assert (latest_results("annotation") / "annotation.report.html").is_file()


def text_annotation_panel(qtbot, window):
    """The demo open and the Annotation panel in text mode without a reference, the label column chosen."""
    from scelmo_desktop.core.data.demo import DEMO_SOURCE
    from scelmo_desktop.gui.panels.annotation import NO_REFERENCE

    window.open_data(DEMO_SOURCE)
    finish(qtbot, window)
    annotation = window.panels["Annotation"]
    annotation.refresh()
    annotation.mode.setCurrentText("text")
    annotation.reference.setCurrentText(NO_REFERENCE)
    annotation.label.setCurrentText("bulk_labels")
    return annotation


def test_annotation_panel_without_reference_scores_curated_markers(qtbot, facts_window):
    window = facts_window
    annotation = text_annotation_panel(qtbot, window)  # candidates default to the label's values
    assert annotation.text_scoring.currentText() == "auto"  # knowledge, with the extra installed
    annotation.run()
    finish(qtbot, window)
    frame = annotation.table.model_.frame
    assert {"Cell Ontology term", "markers scored", "markers seen"} <= set(frame.columns)
    row = frame.set_index("label").loc["CD14+ Monocyte"]
    assert row["Cell Ontology term"] == "CD14-positive monocyte" and "LYZ" in row["markers scored"]
    assert window.project.results["annotation"]["accuracy"] > 0.55


def test_annotation_panel_with_the_blood_preset_shows_markers_seen_and_confidence(qtbot, facts_window):
    """No label list at all: the blood preset's candidates, each type's markers seen and mean confidence; the
    file's labels only say, in the confusion matrix, which type their cells were called."""
    window = facts_window
    annotation = text_annotation_panel(qtbot, window)
    annotation.preset.setCurrentText("blood")
    annotation.run()
    finish(qtbot, window)
    frame = annotation.table.model_.frame.set_index("label")
    assert {"cells", "mean confidence", "markers seen", "Cell Ontology term"} <= set(frame.columns)
    calls = window.project.adata.obs["scelmo_label"].astype(str)
    by_label = calls[window.project.adata.obs["bulk_labels"].astype(str) == "CD14+ Monocyte"].value_counts()
    assert by_label.index[0].endswith("classical monocyte")  # the demo lacks CD14: either monocyte, by lineage
    monocytes = frame.loc[by_label.index[0]]
    assert monocytes["Cell Ontology term"] == by_label.index[0] and monocytes["cells"] > 20
    assert any(g in monocytes["markers seen"] for g in ("LYZ", "S100A8", "S100A9", "FCN1", "FCGR3A"))
    assert 0 < frame["mean confidence"].min() <= frame["mean confidence"].max() <= 1
    assert "calls of each label" in annotation.status.text()


def test_several_samples_are_integrated_by_the_one_button_run_and_the_panel_needs_no_labels(
    qtbot, facts_window, ensembl_h5ad, tmp_path
):
    """Open → Run on data with several samples integrates them (as ``scelmo run A.h5 B.h5``): the clusters and UMAP
    are the integrated space's and the app says which samples were integrated; the Integration panel then runs
    with no label column and shows the label-free scores."""
    import anndata as ad

    from scelmo_desktop.core.keys import INTEGRATED_KEY, neighbors_key

    adata = ad.read_h5ad(ensembl_h5ad)
    adata.obs["sample"] = adata.obs["batch"]  # what opening two Cell Ranger runs makes
    adata.write_h5ad(ensembl_h5ad)
    window = facts_window
    window.open_data(str(ensembl_h5ad))
    finish(qtbot, window)
    window.panels["Data"].run_pipeline()
    finish(qtbot, window)
    adata = window.project.adata
    assert INTEGRATED_KEY in adata.obsm and neighbors_key(INTEGRATED_KEY) in adata.uns
    assert window.panels["Clustering"].slider.isEnabled()  # the resolution slider reclusters the integrated graph
    panel = window.panels["Integration"]
    assert "samples integrated: A" in panel.status.text() and "B (" in panel.status.text()
    assert "samples integrated" in window.project.results["pipeline"]["integration"]
    assert "pooled make-up of" in panel.status.text() and "shared by every sample" in panel.status.text()
    window.show_panel("Integration")
    shot = tmp_path / "integration_after_run.png"
    assert window.grab().save(str(shot)) and shot.stat().st_size > 10_000  # looked at by hand: the status line

    panel.refresh()
    assert panel.batch.currentText() == "sample" and panel.label.currentText() == "(none)"
    panel.run()
    finish(qtbot, window)
    frame = panel.table.model_.frame
    assert "ilisi" in frame and "S_bio" not in frame and len(frame) == 4
    assert "(no labels)" in panel.status.text() and "iLISI" in panel.status.text()
    window.show_panel("Integration")
    shot = tmp_path / "integration_no_labels.png"
    assert window.grab().save(str(shot)) and shot.stat().st_size > 10_000  # looked at by hand: the panel as shown


def open_and_run(qtbot, window, pbmc, tmp_path):
    """Open → Run on pbmc68k_reduced saved as a file, every gene of its ``.raw`` described."""
    path = tmp_path / "pbmc68k.h5ad"
    pbmc.write_h5ad(path)
    window.project.settings.max_genes = pbmc.raw.n_vars
    window.open_data(str(path))
    finish(qtbot, window)
    window.panels["Data"].run_pipeline()
    finish(qtbot, window)
    return window


def test_open_run_splits_a_cluster_that_mixes_two_lineages_and_the_markers_panel_says_so(
    qtbot, facts_window, pbmc, tmp_path
):
    """Open → Run on pbmc68k_reduced: its NK + CD8 T cluster is flagged and split (as ``scelmo run`` does; split at
    every run seed 0-3 measured, docs/benchmarks.md), the parts are named, and the Markers panel's status names
    the split while its parts are shown."""
    window = open_and_run(qtbot, facts_window, pbmc, tmp_path)
    clusters = set(window.project.adata.obs["scelmo_leiden"].astype(str))
    parts = sorted(c for c in clusters if "," in c)
    assert len(parts) >= 2, clusters
    naming = window.project.naming
    assert all(naming.groups[part].term_id for part in parts)  # the new clusters are named
    window.show_panel("Markers")
    status = window.panels["Markers"].names_status.text()
    assert "split by the run because their cells mixed two lineages" in status and parts[0] in status, status
    shot = tmp_path / "markers_after_split.png"
    assert window.grab().save(str(shot)) and shot.stat().st_size > 10_000  # looked at by hand: the status line


def test_an_exported_result_reopens_with_its_markers_and_hand_edited_names(qtbot, facts_window, pbmc, tmp_path):
    """Open → Run, rename one cluster by hand, Export data with results, then open that file: the Markers panel
    shows the same marker table (the saved statistics, the filter rebuilt on the saved matrix) and the same
    names, the hand edit included, with no new run (Loupe reopens a .cloupe file with its clusters and labels)."""
    window = open_and_run(qtbot, facts_window, pbmc, tmp_path)
    before = window.project
    group = next(iter(before.naming.groups))
    window.panels["Markers"].rename(group, "my own call")
    saved_table, saved_names = before.markers.table.copy(), before.naming.table().copy()
    written = window.export_results(tmp_path / "exported.h5ad")
    exported, cells = written["h5ad"], pd.read_csv(written["cells"])
    assert written["cells"].name == "exported_cells.csv" and len(cells) == before.adata.n_obs
    renamed = (before.adata.obs[before.markers.groupby].astype(str) == str(group)).sum()
    assert (cells["scelmo_cell_type"] == "my own call").sum() == renamed > 0
    assert {"UMAP_1", "UMAP_2", before.markers.groupby} <= set(cells.columns)

    window.open_data(str(exported))
    finish(qtbot, window)
    after = window.project
    assert after.markers is not None and after.naming is not None
    assert any("read back from the file" in line for line in after.intake_lines), after.intake_lines
    table = after.markers.table
    assert list(table["gene"]) == list(saved_table["gene"]) and list(table["group"]) == list(saved_table["group"])
    assert np.allclose(table["score"], saved_table["score"]) and table["passes_filter"].sum() > 0
    assert (table["passes_filter"].to_numpy() == saved_table["passes_filter"].to_numpy()).all()
    assert list(after.naming.table()["cell_type"]) == list(saved_names["cell_type"])
    assert after.naming.groups[group].name == "my own call" and after.naming.groups[group].edited
    window.show_panel("Markers")
    panel = window.panels["Markers"]
    assert panel.names.model_.rowCount() == len(saved_names) and "named among" in panel.names_status.text()
    assert panel.table.model_.rowCount() > 0
