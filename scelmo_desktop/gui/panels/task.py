"""The shape shared by the analysis panels (annotation, integration, fine-tuning, treatment, perturbation):
settings → Run → a results table and a figure, with the files also written to a results folder."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSplitter

from scelmo_desktop.gui.panels.base import Panel
from scelmo_desktop.gui.widgets import FigureView, FrameView


def results_folder(name: str) -> Path:
    """A fresh folder under the user data folder for one run's files (CSV, PNG, HTML)."""
    from scelmo_desktop.core.workflows.environment import user_data_dir

    folder = user_data_dir() / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class TaskPanel(Panel):
    run_label = "Run"
    job_name = "task"

    def __init__(self, window):
        super().__init__(window)
        self.settings_form = self.form("Settings", collapsible=True)  # untick to give the results the height
        self.build_form(self.settings_form)
        row = QHBoxLayout()
        self.run_button = QPushButton(self.run_label)
        self.run_button.clicked.connect(self.run)
        row.addWidget(self.run_button)
        self.extra_buttons(row)
        self.export_button = QPushButton("Export table (CSV)…")
        self.export_button.clicked.connect(lambda: self.table.export_csv(self, f"{self.job_name}.csv"))
        row.addWidget(self.export_button)
        row.addStretch(1)
        self.settings_form.addRow(row)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.layout_.addWidget(self.status)
        splitter = QSplitter(Qt.Vertical)  # tables can be wide (integration has 13 columns): full width on top
        self.table = FrameView()
        self.figure = FigureView()
        splitter.addWidget(self.table)
        splitter.addWidget(self.figure)
        # a result's figure takes the panel's height: the settings fold away (tick Settings to show them again)
        self.figure.shown.connect(lambda _: self.settings_form.parentWidget().setChecked(False))
        splitter.setSizes([230, 470])
        self.layout_.addWidget(splitter, 1)

    def build_form(self, form) -> None:
        raise NotImplementedError

    def extra_buttons(self, row) -> None:
        """Panels add buttons beside Run here (e.g. 'Use simulated example')."""

    def make_work(self):
        """Return ``work(progress, cancel) -> result`` (runs in the worker thread), or None to do nothing."""
        raise NotImplementedError

    def show_result(self, result) -> None:
        raise NotImplementedError

    def run(self) -> None:
        work = self.make_work()
        if work is not None:
            self.window_.run_job(self.job_name, work, self._done)

    def _done(self, result) -> None:
        self.show_result(result)
        self.window_.results_changed()
