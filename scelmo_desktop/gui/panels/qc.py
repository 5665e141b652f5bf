"""QC: scanpy's QC metrics and Scrublet's doublet scores per sample, with the suggested thresholds drawn on the
distributions; drag a line or type a bound and the kept count updates at once; Apply filters the cells that
every later panel uses, and records what was done."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QWidget

from scelmo_desktop.gui.panels.base import Panel
from scelmo_desktop.gui.widgets import FrameView

NO_BOUND = -1.0  # the spin boxes' "none" (their special value text)
# (bound, obs column, plot title, drawn on a log10(1+x) axis)
PLOTS = (
    ("counts", "total_counts", "total counts (log10 1+x)", True),
    ("genes", "n_genes_by_counts", "genes per cell (log10 1+x)", True),
    ("mito", "pct_counts_mt", "% mitochondrial counts", False),
    ("doublets", "doublet_score", "Scrublet doublet score", False),
)
PLOT_BOUNDS = {"counts": ("min_counts", "max_counts"), "genes": ("min_genes", "max_genes"), "mito": ("max_pct_mt",)}


def _to_axis(value: float, log: bool) -> float:
    return float(np.log10(1 + value)) if log else float(value)


def _from_axis(value: float, log: bool) -> float:
    return float(10**value - 1) if log else float(value)


class QCPanel(Panel):
    title = "QC"
    explanation = (
        "Quality control before anything else, per sample: scanpy's QC metrics, Scrublet's doublet scores and "
        "suggested thresholds (red lines). Drag a line or type a bound: the kept count updates at once. Apply "
        "filters the cells every later panel uses and records the thresholds; Run the whole pipeline does the "
        "same with the suggested thresholds when QC was not applied here."
    )

    def __init__(self, window):
        super().__init__(window)
        self.measures = None  # QCMeasures of the open data
        self.thresholds = None  # the bounds as shown (suggested, then moved by the user)
        self.measured = None  # the AnnData they were measured on
        form = self.form("Thresholds")
        self.add_settings(["qc_nmads", "max_pct_mt", "min_genes", "remove_doublets"], form)
        row = QHBoxLayout()
        self.measure_button = QPushButton("Compute QC metrics")
        self.measure_button.clicked.connect(self.run_measure)
        self.suggest_button = QPushButton("Suggest again")
        self.suggest_button.setToolTip("Suggested thresholds from the settings above, for every sample.")
        self.suggest_button.clicked.connect(self.suggest)
        self.apply_button = QPushButton("Apply: keep these cells")
        self.apply_button.clicked.connect(self.apply)
        for button in (self.measure_button, self.suggest_button, self.apply_button):
            row.addWidget(button)
        row.addStretch(1)
        form.addRow(row)
        self.sample = QComboBox()
        self.sample.currentTextChanged.connect(self._show_sample)
        form.addRow("Sample", self.sample)
        bounds = QHBoxLayout()
        self.bound_boxes = {}
        for name, text in (
            ("min_counts", "min counts"),
            ("max_counts", "max counts"),
            ("min_genes", "min genes"),
            ("max_genes", "max genes"),
            ("max_pct_mt", "max % mito"),
        ):
            box = QDoubleSpinBox()
            box.setRange(NO_BOUND, 1e9)
            box.setDecimals(1)
            box.setSpecialValueText("none")
            box.setToolTip(f"{text} for the chosen sample ('none': no bound)")
            box.valueChanged.connect(lambda value, bound=name: self._bound_typed(bound, value))
            bounds.addWidget(QLabel(text))
            bounds.addWidget(box)
            self.bound_boxes[name] = box
        form.addRow(bounds)
        self.kept = QLabel("Open data with raw counts, then Compute QC metrics.")
        self.kept.setStyleSheet("font-weight:600")
        form.addRow(self.kept)
        grid_host = QWidget()
        grid = QGridLayout(grid_host)
        grid.setContentsMargins(0, 0, 0, 0)
        self.plots, self.lines = {}, {}
        for index, (key, _, title, _) in enumerate(PLOTS):
            plot = pg.PlotWidget(background="w", title=title)
            plot.setMinimumHeight(170)
            self.plots[key] = plot
            grid.addWidget(plot, index // 3, index % 3)
        self.scatter = pg.PlotWidget(background="w", title="genes vs counts (colour: % mito; grey: removed)")
        self.scatter.setLabel("bottom", "total counts (log10 1+x)")
        self.scatter.setLabel("left", "genes (log10 1+x)")
        grid.addWidget(self.scatter, 1, 1, 1, 2)
        self.layout_.addWidget(grid_host, 3)
        self.table = FrameView()
        self.layout_.addWidget(self.table, 1)

    # ---- jobs -----------------------------------------------------------------------------------------------
    def run_measure(self) -> None:
        """Scanpy's QC metrics and Scrublet on the open data (a job), then the suggested thresholds."""
        from scelmo_desktop.core.workflows.qc import measure_qc

        project = self.project
        project.require_data()
        adata, settings = project.adata, project.pipeline_settings(project.settings.mode)

        def work(progress, cancel):
            return measure_qc(adata, settings=settings, progress=progress, cancel=cancel)

        self.window_.run_job("quality control", work, self.show_measures)

    def show_measures(self, measures) -> None:
        """Show what :func:`measure_qc` found, with its suggested thresholds."""
        self.measures, self.thresholds, self.measured = measures, measures.thresholds, self.project.adata
        saved = self.project.results.get("qc_thresholds")
        if saved:  # the project applied these by hand: shown again, to Apply as they were
            for sample, bounds in saved["bounds"].items():
                if sample in self.thresholds.table.index:
                    self.thresholds = self.thresholds.replace(sample, **bounds)
            self.thresholds = self.thresholds.replace(remove_doublets=saved["remove_doublets"])
        self.sample.blockSignals(True)
        self.sample.clear()
        self.sample.addItems([str(s) for s in self.thresholds.table.index])
        self.sample.blockSignals(False)
        self._show_sample(self.sample.currentText())

    def suggest(self) -> None:
        """The thresholds suggested again from the settings (after a setting was changed)."""
        from scelmo_desktop.core.workflows.qc import suggest_thresholds

        if self.measures is None:
            return
        s = self.project.settings
        self.thresholds = suggest_thresholds(
            self.project.adata.obs,
            self.measures.sample_key,
            nmads=s.qc_nmads,
            max_pct_mt=s.max_pct_mt,
            min_genes=s.min_genes,
            remove_doublets=s.remove_doublets,
        )
        self._show_sample(self.sample.currentText())

    def apply(self) -> None:
        """Keep the cells the thresholds keep, in every later panel, and record what was done."""
        from scelmo_desktop.core.workflows.environment import ScelmoError
        from scelmo_desktop.core.workflows.qc import apply_qc

        if self.measures is None:
            self.kept.setText("Compute QC metrics first.")
            return
        if self.window_.busy("applying QC"):
            return
        project = self.project
        try:
            outcome = apply_qc(
                project.adata, self.measures, settings=project.pipeline_settings("facts"), thresholds=self.thresholds
            )
        except ScelmoError as exc:
            self.kept.setText(str(exc))
            return
        thresholds = self.thresholds
        project.replace_cells(outcome.adata)
        project.results["qc_thresholds"] = {  # what a reopened project shows again after Compute QC metrics
            "bounds": {sample: thresholds.for_sample(sample) for sample in thresholds.table.index},
            "remove_doublets": thresholds.remove_doublets,
        }
        project.results["qc"] = {
            "kept": outcome.n_kept,
            "cells": len(outcome.keep),
            **outcome.record["removed_by_rule"],
        }
        self.measures = None
        self.kept.setText(
            f"Applied: {outcome.n_kept:,} of {len(outcome.keep):,} cells kept. {self._removed(outcome.record['removed_by_rule'])}"
        )
        self.table.set_frame(outcome.table)
        self.window_.results_changed()
        self.window_.show_message(f"QC applied: {outcome.n_kept:,} cells kept.")

    def load_settings(self) -> None:
        super().load_settings()
        if self.project.results.get("qc_thresholds"):
            self.kept.setText(
                "This project applied QC thresholds: press Compute QC metrics to see them again, then Apply to "
                "filter the cells as before."
            )

    # ---- live thresholds ------------------------------------------------------------------------------------
    def _bound_typed(self, bound: str, value: float) -> None:
        if self.thresholds is None or not self.sample.currentText():
            return
        self._move(bound, None if value <= NO_BOUND else value, redraw=True)

    def _line_moved(self, bound: str, log: bool, line) -> None:
        value = max(0.0, _from_axis(line.value(), log))
        box = self.bound_boxes[bound]
        box.blockSignals(True)
        box.setValue(value)
        box.blockSignals(False)
        self._move(bound, value, redraw=False)

    def _move(self, bound: str, value, *, redraw: bool) -> None:
        self.thresholds = self.thresholds.replace(self.sample.currentText(), **{bound: value})
        if redraw:
            self._show_sample(self.sample.currentText())
        else:
            self._show_kept()

    def _show_kept(self) -> None:
        from scelmo_desktop.core.workflows.qc import apply_thresholds

        filtering = apply_thresholds(self.project.adata.obs, self.thresholds)
        self.last_filtering = filtering
        self.kept.setText(
            f"Kept {filtering.n_kept:,} of {len(filtering.keep):,} cells. {self._removed(filtering.removed)}"
        )
        self.table.set_frame(filtering.per_sample)
        self._draw_scatter(filtering.keep)

    @staticmethod
    def _removed(removed: dict) -> str:
        parts = [f"{rule.replace('_', ' ')} {n:,}" for rule, n in removed.items() if n]
        return ("Removed by: " + ", ".join(parts) + " (a cell can fail several).") if parts else "None removed."

    # ---- drawing --------------------------------------------------------------------------------------------
    def _cells(self) -> np.ndarray:
        obs = self.project.adata.obs
        key = self.measures.sample_key if self.measures is not None else None
        if key is None:
            return np.ones(len(obs), dtype=bool)
        return (obs[key].astype(str) == self.sample.currentText()).to_numpy()

    def _show_sample(self, sample: str) -> None:
        if self.thresholds is None or not sample:
            return
        obs = self.project.adata.obs
        cells = self._cells()
        bounds = self.thresholds.for_sample(sample)
        for name, box in self.bound_boxes.items():
            box.blockSignals(True)
            box.setValue(NO_BOUND if bounds[name] is None else bounds[name])
            box.blockSignals(False)
        for key, column, _, log in PLOTS:
            plot = self.plots[key]
            plot.clear()
            if column not in obs:
                continue
            values = obs[column].to_numpy(dtype=float)[cells]
            values = values[np.isfinite(values)]
            if not len(values):
                continue
            shown = np.log10(1 + values) if log else values
            heights, edges = np.histogram(shown, bins=60)
            plot.plot(edges, heights, stepMode="center", fillLevel=0, brush=(31, 119, 180, 120), pen="#1f77b4")
            if key == "doublets" and self.measures is not None:  # Scrublet's own call, shown, not moved here
                called = {d.sample: d.threshold for d in self.measures.doublets}.get(sample)
                if called is not None:
                    plot.addItem(pg.InfiniteLine(called, angle=90, pen=pg.mkPen("r", width=2, style=Qt.DashLine)))
            for bound in PLOT_BOUNDS.get(key, ()):
                if bounds[bound] is None:
                    continue
                line = pg.InfiniteLine(_to_axis(bounds[bound], log), angle=90, movable=True, pen=pg.mkPen("r", width=2))
                line.setToolTip(f"{bound.replace('_', ' ')}: drag to move")
                line.sigPositionChangeFinished.connect(lambda item, b=bound, lg=log: self._line_moved(b, lg, item))
                plot.addItem(line)
                self.lines[bound] = line
        self._show_kept()

    def _draw_scatter(self, keep: np.ndarray) -> None:
        obs = self.project.adata.obs
        self.scatter.clear()
        if "total_counts" not in obs:
            return
        cells = self._cells()
        x = np.log10(1 + obs["total_counts"].to_numpy(dtype=float)[cells])
        y = np.log10(1 + obs["n_genes_by_counts"].to_numpy(dtype=float)[cells])
        mito = obs["pct_counts_mt"].to_numpy(dtype=float)[cells] if "pct_counts_mt" in obs else np.zeros(len(x))
        kept = keep[cells]
        scale = max(float(np.nanpercentile(mito, 99)), 1e-9) if len(mito) else 1.0
        colours = pg.colormap.get("viridis").map(np.clip(mito / scale, 0, 1), mode="qcolor")
        brushes = [pg.mkBrush(c) if k else pg.mkBrush(170, 170, 170, 120) for c, k in zip(colours, kept)]
        self.scatter.addItem(pg.ScatterPlotItem(x=x, y=y, size=4, pen=None, brush=brushes))

    def refresh(self) -> None:
        adata = self.project.adata
        if adata is None:
            return
        if self.measures is not None and self.measured is not adata:
            self.measures = self.thresholds = None  # other data, or other cells: the shown thresholds are stale
        if self.measures is None and "qc" in (adata.uns.get("scelmo") or {}):
            record = adata.uns["scelmo"]["qc"]
            self.kept.setText(f"QC applied to this data: {record.get('kept', adata.n_obs):,} cells kept.")

    def per_sample(self) -> pd.DataFrame:
        """The per-sample table as shown (tests and the screenshot script read it)."""
        return self.table.model_.frame
