"""Annotation: label cells from a labelled reference (10-NN vote or the fine-tuned adaptor) or from cell-type
descriptions alone; confidence, Unknown below a threshold, metrics and the confusion matrix when truth exists."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLineEdit

from scelmo_desktop.core.keys import LABEL_KEY
from scelmo_desktop.gui.panels.base import combo_value, fill_obs_combo, path_field
from scelmo_desktop.gui.panels.task import TaskPanel, results_folder

SPLIT_70_30 = "this data: stratified 70/30 split by the label (evaluation)"
SPLIT_COLUMN = "this data: cells whose column equals a value"
REFERENCE_FILE = "a reference file…"
NO_REFERENCE = "no reference (text mode, or a saved adaptor)"


class AnnotationPanel(TaskPanel):
    title = "Annotation"
    explanation = (
        "knn: each cell takes the majority label of its 10 most similar reference cells. adaptor: a "
        "small network fine-tuned on the reference. text: no reference, each cell scored against the "
        "curated markers of the candidate types (your list, the label's values or a tissue preset), "
        "averaged over its neighbours; the table shows each type's term and the markers seen."
    )
    run_label = "Annotate"
    job_name = "annotation"

    def build_form(self, form) -> None:
        self.mode = self.add_settings(["method"], form).editor("method").editor
        self.reference = QComboBox()
        self.reference.addItems([SPLIT_70_30, SPLIT_COLUMN, REFERENCE_FILE, NO_REFERENCE])
        self.split_column = QComboBox()
        self.split_value = QLineEdit()
        self.split_value.setPlaceholderText("value marking reference cells")
        self.reference_path, file_row = path_field("reference .h5ad", self._browse)
        split_row = QHBoxLayout()
        split_row.addWidget(self.split_column)
        split_row.addWidget(self.split_value, 1)
        self.adaptor_path, adaptor_row = path_field(
            "adaptor mode: a saved adaptor .pt to reuse (empty: train one)", self._browse_adaptor
        )
        self.label = QComboBox()
        self.candidates = QLineEdit()
        self.candidates.setPlaceholderText("text mode: comma-separated cell types (default: the label's values)")
        form.addRow("Reference", self.reference)
        form.addRow("Split column / value", split_row)
        form.addRow("Reference file", file_row)
        form.addRow("Saved adaptor", adaptor_row)
        form.addRow("Label column", self.label)
        form.addRow("Candidates", self.candidates)
        editors = self.add_settings(
            ["preset", "text_scoring", "smoothing", "n_markers", "threshold", "k", "epochs"], form
        )
        self.preset, self.text_scoring = editors.editor("preset").editor, editors.editor("text_scoring").editor
        self.smoothing, self.threshold = editors.editor("smoothing").editor, editors.editor("threshold").editor

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Reference data", "", "AnnData (*.h5ad);;All files (*)")
        if path:
            self.reference_path.setText(path)
            self.reference.setCurrentText(REFERENCE_FILE)

    def _browse_adaptor(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Saved adaptor", "", "scELMo adaptor (*.pt);;All files (*)")
        if path:
            self.adaptor_path.setText(path)
            self.mode.setCurrentText("adaptor")

    def refresh(self) -> None:
        adata = self.project.adata
        fill_obs_combo(self.label, adata, prefer=self.project.settings.label_key)
        fill_obs_combo(self.split_column, adata)

    def make_work(self):
        from scelmo_desktop.core.workflows.annotation import run_annotation
        from scelmo_desktop.core.workflows.annotation_files import write_annotation_files
        from scelmo_desktop.core.workflows.annotation_inputs import split_by_column, stratified_split
        from scelmo_desktop.core.workflows.data import read_data

        project = self.project
        project.require_data()
        label_key, mode, how = combo_value(self.label), project.settings.method, self.reference.currentText()
        adata = project.adata
        if how == SPLIT_70_30:
            if label_key is None:
                self.status.setText("Choose the label column to split by.")
                return None
            reference, query, query_idx = stratified_split(adata, label_key, seed=project.settings.seed)
        elif how == SPLIT_COLUMN:
            reference, query = split_by_column(adata, self.split_column.currentText(), self.split_value.text())
            query_idx = np.flatnonzero(~adata.obs_names.isin(reference.obs_names))
        elif how == REFERENCE_FILE:
            reference, query, query_idx = read_data(self.reference_path.text()), adata, np.arange(adata.n_obs)
        else:
            reference, query, query_idx = None, adata, np.arange(adata.n_obs)
        candidates = [c.strip() for c in self.candidates.text().split(",") if c.strip()] or None
        preset = project.settings.preset if mode == "text" else None
        if candidates is None and preset is None and mode == "text" and label_key and reference is None:
            candidates = sorted(set(adata.obs[label_key].astype(str)))
        adaptor_file = self.adaptor_path.text().strip() or None if mode == "adaptor" else None
        folder = results_folder("annotation")

        def work(progress, cancel):
            with self.resources(progress, cancel, preset=preset) as resources:
                annotation, record = run_annotation(
                    query,
                    reference=reference,
                    label_key=label_key,
                    candidates=candidates,
                    table=project.table,
                    device=project.models.device,
                    adaptor_file=adaptor_file,
                    **resources,
                )
            files = write_annotation_files(query, annotation, record, folder / "annotation.h5ad", label_key=label_key)
            return annotation, record, files.get("confusion"), query_idx

        return work

    @staticmethod
    def _evidence(record: dict, label: str) -> dict:
        """What a type's calls rest on in text mode: its ontology term, the markers seen in the cells called it
        (with the fraction of them where each is detected) and the markers scored."""
        evidence = {}
        if label in (record.get("cell_ontology") or {}):
            evidence["Cell Ontology term"] = record["cell_ontology"][label].get("term_label", "")
        if (record.get("markers_seen") or {}).get(label):
            evidence["markers seen"] = ", ".join(
                f"{m['gene']} {m['detected']:.0%}" for m in record["markers_seen"][label]
            )
        if label in (record.get("markers") or {}):
            evidence["markers scored"] = ", ".join(record["markers"][label])
        return evidence

    def show_result(self, result) -> None:
        annotation, record, figure, query_idx = result
        adata = self.project.adata
        labels = np.full(adata.n_obs, "(reference)", dtype=object)
        confidence = np.full(adata.n_obs, np.nan, dtype=np.float32)
        labels[query_idx], confidence[query_idx] = annotation.labels, annotation.confidence
        adata.obs[LABEL_KEY] = pd.Categorical(labels)
        adata.obs[f"{LABEL_KEY}_confidence"] = confidence
        metrics = record.get("metrics")
        if metrics:
            per_class = metrics["per_class_f1"]
            counts = pd.Series(annotation.labels).value_counts()
            self.table.set_frame(
                pd.DataFrame(
                    [
                        {"label": k, "F1": v, "predicted cells": int(counts.get(k, 0)), **self._evidence(record, k)}
                        for k, v in per_class.items()
                    ]
                )
            )
            self.status.setText(
                f"{record['method']}: accuracy {metrics['accuracy']:.3f}, macro-F1 "
                f"{metrics['macro_f1']:.3f} on {len(query_idx)} query cells · labels written to "
                "obs['scelmo_label'] (colour the UMAP by it in Clustering)."
            )
            self.project.results["annotation"] = {k: metrics[k] for k in ("accuracy", "macro_f1")}
        else:
            calls = pd.DataFrame({"label": annotation.labels, "confidence": annotation.confidence})
            summary = calls.groupby("label")["confidence"].agg(["size", "mean"]).sort_values("size", ascending=False)
            self.table.set_frame(
                pd.DataFrame(
                    [
                        {
                            "label": k,
                            "cells": int(row["size"]),
                            "mean confidence": round(float(row["mean"]), 3),
                            **self._evidence(record, k),
                        }
                        for k, row in summary.iterrows()
                    ]
                )
            )
            said = (
                " · the calls of each label's cells are in the confusion matrix"
                if record.get("calls_per_label")
                else " (no truth to score against)"
            )
            self.status.setText(f"Annotated {len(query_idx)} cells{said}.")
        if figure is not None:
            self.figure.show_png(figure)
