"""Data: open a file (.h5ad, 10x .h5 / mtx folder, CSV) or the shipped demo; see what is in it; choose the
matrix that feeds the embedding and the label column."""

from __future__ import annotations

import html

import pandas as pd
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton

from scelmo_desktop.core.workflows.data import INPUT_KIND_CHOICES as INPUT_CHOICES
from scelmo_desktop.gui.barcode_rank import BarcodeRankView
from scelmo_desktop.gui.panels.base import Panel, combo_value, fill_obs_combo
from scelmo_desktop.gui.project import DEMO_SOURCE
from scelmo_desktop.gui.widgets import FrameView

WARNING_COLOUR = "#b35900"  # what to know before a run (a run that may not fit in memory)

FILTER = "Single-cell data (*.h5ad *.h5 *.csv *.tsv *.txt *.loom);;All files (*)"


class DataPanel(Panel):
    title = "Data"
    explanation = (
        "Open your data. Nothing leaves this computer. Raw counts, TPM/CPM and log-normalised values "
        "are detected and prepared (normalised and log-transformed when needed); scaled values are "
        "refused. 'auto' uses .raw when present."
    )

    def __init__(self, window):
        super().__init__(window)
        buttons = QHBoxLayout()
        self.open_button = QPushButton("Open file…")
        self.folder_button = QPushButton("Open 10x folder…")
        self.add_sample_button = QPushButton("Add sample folder…")
        self.add_sample_button.setToolTip("Join another Cell Ranger run to the open data, one sample per run.")
        self.add_sample_button.clicked.connect(lambda: self.add_sample())
        self.demo_button = QPushButton("Open demo data")
        self.open_button.clicked.connect(self._open_file)
        self.folder_button.clicked.connect(self._open_folder)
        self.demo_button.clicked.connect(lambda: self.window_.open_data(DEMO_SOURCE))
        for b in (self.open_button, self.folder_button, self.add_sample_button, self.demo_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.layout_.addLayout(buttons)
        self.pipeline_button = QPushButton("Run the whole pipeline (describe → embed → cluster → report)")
        self.pipeline_button.setToolTip("Uses the settings of the other panels, or their defaults.")
        self.pipeline_button.clicked.connect(self.run_pipeline)
        buttons.addWidget(self.pipeline_button)
        self.name = QLabel("No data open.")
        self.name.setStyleSheet("font-size:14px; font-weight:600")
        self.layout_.addWidget(self.name)
        form = self.form("Input")
        self.layer = QComboBox()
        self.layer.currentTextChanged.connect(self._layer_changed)
        self.label = QComboBox()
        self.label.currentTextChanged.connect(self._label_changed)
        self.input_kind = QComboBox()
        self.input_kind.addItems(list(INPUT_CHOICES))
        self.input_kind.currentTextChanged.connect(self._input_kind_changed)
        self.detected = QLabel("")
        self.detected.setWordWrap(True)
        form.addRow("Matrix for the embedding", self.layer)
        form.addRow("Values are", self.input_kind)
        form.addRow("", self.detected)
        form.addRow("Cell-type label column", self.label)
        self.calling = self.add_settings(["cell_calling", "umi_threshold", "expected_cells"], form)  # on opening
        self.intake = QLabel("")
        self.intake.setWordWrap(True)
        self.intake.setTextFormat(Qt.RichText)  # escaped lines, a warning in its colour
        form.addRow("Opened", self.intake)
        self.barcode_rank = BarcodeRankView()  # shown when cells were called in an unfiltered matrix
        self.barcode_rank.threshold_chosen.connect(self.call_cells_at)
        self.layout_.addWidget(self.barcode_rank, 1)
        self.summary = FrameView()
        self.layout_.addWidget(QLabel("Observation columns (first values)"))
        self.layout_.addWidget(self.summary, 1)

    def run_pipeline(self) -> None:
        """One job for the whole zero-shot run, as ``scelmo run``: the results land in every panel and the HTML
        report, h5ad and CSVs in a results folder."""
        from scelmo_desktop.core.workflows.pipeline import run_pipeline
        from scelmo_desktop.gui.panels.task import results_folder

        project = self.project
        project.require_data()
        folder = results_folder("pipeline")

        def work(progress, cancel):
            with self.resources(progress, cancel) as resources:
                return run_pipeline(project.adata, data_name=project.data_name, out=folder, **resources)

        def done(result):
            paths = result.files
            if result.described is not None and result.described.texts:
                self.window_.panels["Descriptions"].show_descriptions(result.described)  # the texts, in their panel
            project.table, project.alignment = result.table, result.alignment
            project.coverage, project.cluster_metrics = result.record.get("coverage", {}), result.metrics
            project.results["pipeline"] = {"report": str(paths["report"])}
            clustering = self.window_.panels["Clustering"]
            project.naming_note = (result.record.get("naming") or {}).get("reason", "")
            clustering.show_clustering(result.metrics, result.markers, result.naming)
            self.window_.show_panel("Clustering")
            from scelmo_desktop.core.workflows.integration import samples_line

            integrated = result.record.get("integration") or {}
            line = samples_line(integrated, project.adata)
            if line:  # several samples: which were integrated and how well, or why they were not
                project.results["pipeline"]["integration"] = line
                self.window_.panels["Integration"].status.setText(line)
            note = " (samples not integrated: see Integration)" if line and "samples" not in integrated else ""
            self.window_.show_message(f"Pipeline finished{note}; report: {paths['report']}")

        self.window_.run_job("pipeline", work, done)

    def call_cells_at(self, umis: float) -> None:
        """Open the same files again with ``umis`` as the UMI threshold of the cell call (a user override,
        recorded in the intake record and the project's settings)."""
        source = self.project.settings.data_path
        if source is None or source == DEMO_SOURCE:
            return
        self.project.settings.umi_threshold = int(umis)
        self.calling.load()
        self.window_.open_data(source)

    def _open_file(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open single-cell data (several files: one sample each)", "",
                                                FILTER)  # fmt: skip
        if paths:
            self.window_.open_data(paths if len(paths) > 1 else paths[0])

    def add_sample(self, path: str | None = None) -> None:
        """Another sample (a file or a Cell Ranger folder) joined to the open data (obs['sample'])."""
        if path is None:
            path = QFileDialog.getExistingDirectory(self, "Add a sample: a Cell Ranger matrix folder") or None
        current = self.project.settings.data_path
        if path is None or current is None or current == DEMO_SOURCE:
            if path:
                self.window_.open_data(path)
            return
        paths = current if isinstance(current, list) else [current]
        self.window_.open_data([*paths, path])

    def _open_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a 10x matrix folder")
        if path:
            self.window_.open_data(path)

    def _layer_changed(self, text: str) -> None:
        if text:
            self.project.settings.layer = text
            self._show_detected()

    def _input_kind_changed(self, text: str) -> None:
        if text:
            self.project.settings.input_kind = text
            self._show_detected()

    def _show_detected(self) -> None:
        """What the chosen matrix holds and what will be done with it, before anything runs."""
        from scelmo_desktop.core.workflows.data import INPUT_KIND_DESCRIPTIONS as DESCRIPTIONS
        from scelmo_desktop.core.workflows.data import chosen_matrix, detect_input_kind, effective_kind, preparation_for
        from scelmo_desktop.core.workflows.environment import ScelmoError

        if self.project.adata is None:
            return
        try:  # a sample of the stored values: cheap on the UI thread, even for a large file
            layer, matrix, _ = chosen_matrix(self.project.adata, self.project.settings.layer)
        except ScelmoError as exc:
            self.detected.setText(f"⚠ {exc}")
            return
        kind, evidence = detect_input_kind(matrix)
        declared = self.project.settings.input_kind
        action = preparation_for(effective_kind(kind, declared))
        self.detected.setText(f"'{layer}' holds {DESCRIPTIONS[kind]} ({evidence}); {action}.")

    def _label_changed(self, text: str) -> None:
        self.project.settings.label_key = combo_value(self.label)

    def refresh(self) -> None:
        project = self.project
        info = project.summary()
        if not info:
            return
        self.name.setText(f"{project.data_name}: {info['cells']:,} cells × {info['genes']:,} genes")
        lines = [html.escape(line) for line in project.intake_lines] or ["as stored in the file"]
        lines += [f"<b style='color:{WARNING_COLOUR}'>{html.escape(line)}</b>" for line in project.intake_warnings]
        self.intake.setText("<br>".join(lines))
        if self.barcode_rank.calls is not project.cell_calls:
            self.barcode_rank.show_calls(project.cell_calls)
        self.layer.blockSignals(True)
        self.layer.clear()
        self.layer.addItems(["auto"] + info["layers"])
        self.layer.setCurrentText(
            project.settings.layer if self.layer.findText(project.settings.layer) >= 0 else "auto"
        )
        self.layer.blockSignals(False)
        self.input_kind.blockSignals(True)
        self.input_kind.setCurrentText(project.settings.input_kind)
        self.input_kind.blockSignals(False)
        self._show_detected()
        self.label.blockSignals(True)
        fill_obs_combo(self.label, project.adata, allow_none=True, prefer=project.settings.label_key)
        self.label.blockSignals(False)
        obs = project.adata.obs
        rows = [
            {
                "column": str(c),
                "type": str(obs[c].dtype),
                "distinct values": int(obs[c].nunique()),
                "examples": ", ".join(map(str, obs[c].astype(str).unique()[:5])),
            }
            for c in obs.columns
        ]
        rows.append(
            {
                "column": "(obsm)",
                "type": "embeddings",
                "distinct values": len(info["embeddings (obsm)"]),
                "examples": ", ".join(info["embeddings (obsm)"]),
            }
        )
        self.summary.set_frame(pd.DataFrame(rows))
