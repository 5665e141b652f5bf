"""The main window: a project sidebar of panels, a status bar with progress, ETA and Cancel, menus for data,
projects, recent files and exports. One job runs at a time; the UI thread only ever updates widgets."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSettings, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QListWidget,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
)

from scelmo_desktop.app.session import ModelSession
from scelmo_desktop.core.workflows.environment import Cancelled
from scelmo_desktop.gui.jobs import Job
from scelmo_desktop.gui.panels.annotation import AnnotationPanel
from scelmo_desktop.gui.panels.clustering import ClusteringPanel
from scelmo_desktop.gui.panels.compare import ComparePanel
from scelmo_desktop.gui.panels.data import DataPanel
from scelmo_desktop.gui.panels.descriptions import DescriptionsPanel
from scelmo_desktop.gui.panels.embeddings import EmbeddingsPanel
from scelmo_desktop.gui.panels.finetune import FineTuningPanel
from scelmo_desktop.gui.panels.integration import IntegrationPanel
from scelmo_desktop.gui.panels.markers import MarkersPanel
from scelmo_desktop.gui.panels.models import ModelsPanel
from scelmo_desktop.gui.panels.qc import QCPanel
from scelmo_desktop.gui.panels.settings import SettingsPanel
from scelmo_desktop.gui.panels.treatment import TreatmentPanel
from scelmo_desktop.gui.project import DEMO_SOURCE, PROJECT_SUFFIX, Project
from scelmo_desktop.gui.widgets import show_error

log = logging.getLogger("scelmo_desktop.gui")
# the analyst's path first (data, QC, clusters, their markers and names, comparisons, samples, annotation with a
# reference, treatment); the steps behind the one-button run (models, descriptions, embeddings) after it
PANELS = (
    DataPanel,
    QCPanel,
    ClusteringPanel,
    MarkersPanel,
    ComparePanel,
    IntegrationPanel,
    AnnotationPanel,
    FineTuningPanel,
    TreatmentPanel,
    ModelsPanel,
    DescriptionsPanel,
    EmbeddingsPanel,
    SettingsPanel,
)
MAX_RECENT = 8


def _eta(seconds: float) -> str:
    if seconds < 0:
        return ""
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return f"about {minutes} min {secs:02d} s left" if minutes else f"about {secs} s left"


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None):
        super().__init__()
        self.setWindowTitle("scELMo Desktop")
        self.resize(1280, 820)
        self.qsettings = settings or QSettings("scELMo", "scELMo Desktop")
        self.project = Project()
        threads = self.qsettings.value("threads", None)
        if threads:
            self.project.settings.threads = int(threads)
        self.session = ModelSession()
        self.job: Job | None = None
        self.guide = None  # the Help → User guide window, made on first use
        self.sidebar = QListWidget()
        self.sidebar.setMaximumWidth(210)
        self.sidebar.setStyleSheet("QListWidget{font-size:14px} QListWidget::item{padding:7px}")
        self.stack = QStackedWidget()
        self.panels = {}
        for cls in PANELS:
            panel = cls(self)
            self.panels[cls.title] = panel
            self.stack.addWidget(panel)
            self.sidebar.addItem(cls.title)
        self.sidebar.currentRowChanged.connect(self._show_panel)
        splitter = QSplitter()
        splitter.addWidget(self.sidebar)
        splitter.addWidget(self.stack)
        splitter.setStretchFactor(1, 1)
        self.setCentralWidget(splitter)
        self._build_status_bar()
        self._build_menus()
        self.sidebar.setCurrentRow(0)

    # ---- chrome -------------------------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.job_label = QLabel("Ready.")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(320)
        self.progress.setVisible(False)
        self.eta = QLabel("")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_job)
        bar.addWidget(self.job_label, 1)
        bar.addPermanentWidget(self.eta)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, slot, keys in (
            ("Open data…", self._open_data_dialog, QKeySequence.Open),
            ("Open demo data", lambda: self.open_data(DEMO_SOURCE), None),
            ("Open project…", self._open_project_dialog, None),
            ("Save project…", self._save_project_dialog, QKeySequence.Save),
            ("Export data with results (.h5ad)…", self._export_h5ad, None),
        ):
            action = QAction(text, self)
            action.triggered.connect(slot)
            if keys is not None:
                action.setShortcut(keys)
            file_menu.addAction(action)
        self.recent_menu = file_menu.addMenu("Recent files")
        self._fill_recent()
        file_menu.addSeparator()
        quit_action = QAction("Quit", self)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        help_menu = self.menuBar().addMenu("&Help")
        self.guide_action = QAction("User guide", self)
        self.guide_action.setShortcut(QKeySequence("F1"))
        self.guide_action.triggered.connect(self.show_guide)
        help_menu.addAction(self.guide_action)
        logs = QAction("Open log folder", self)
        logs.triggered.connect(self._open_logs)
        help_menu.addAction(logs)

    def _show_panel(self, row: int) -> None:
        self.stack.setCurrentIndex(row)
        self.stack.currentWidget().refresh()

    def show_panel(self, title: str) -> None:
        self.sidebar.setCurrentRow(list(self.panels).index(title))

    def show_message(self, text: str) -> None:
        self.job_label.setText(text)

    # ---- data and projects --------------------------------------------------------------------------------
    def busy(self, doing: str = "") -> bool:
        """Whether a job runs now; with ``doing``, also says that it must end first (a job's results belong to the
        data it started on, so the data and its clusters do not change under it)."""
        running = self.job is not None and not self.job.delivered  # its outcome may still change the project
        if running and doing:
            self.show_message(f"'{self.job.name}' is still running; wait for it or press Cancel before {doing}.")
        return running

    def open_data(self, source) -> None:
        """Open a file or folder, several (joined as samples), or the demo: read in a background job (a large or
        unfiltered file takes a while; Cancel keeps the data open before), made the open data when read."""
        if self.busy("opening other data"):
            return
        project = self.project

        def work(progress, cancel):
            opened = project.read_data(source, progress=progress, cancel=cancel)
            if cancel.is_set():  # pressed during the last (or only) sample's read: the data open before stays
                raise Cancelled("cancelled by the user; the data open before stays")
            return opened

        def show(opened) -> None:
            if self.project is not project:  # another project was opened meanwhile
                return
            project.adopt(opened)
            if isinstance(source, str) and source != DEMO_SOURCE:
                self._remember(source)
            self.setWindowTitle(f"scELMo Desktop — {project.data_name}")
            self.show_message(f"Opened {project.data_name}.")
            self.results_changed()
            if project.holds_saved_results():  # read in the background: it normalises the whole matrix
                self._read_saved_results()

        self.run_job("opening data", work, show)

    def _read_saved_results(self) -> None:
        from scelmo_desktop.core.workflows.markers import saved_markers_and_names

        project, adata = self.project, self.project.adata

        def work(progress, cancel):
            progress("saved markers", 0, 1, "the file's marker test and cell-type names")
            return saved_markers_and_names(adata, cancel=cancel)  # cancelled: the panels stay empty

        def show(found) -> None:
            if self.project is project and project.adata is adata:  # still the data it was read from
                project.show_saved_results(found)
                self.results_changed()

        self.run_job("reading the saved markers", work, show)

    def results_changed(self) -> None:
        for panel in self.panels.values():
            panel.refresh()

    def _open_data_dialog(self) -> None:
        from scelmo_desktop.gui.panels.data import FILTER

        path, _ = QFileDialog.getOpenFileName(self, "Open single-cell data", "", FILTER)
        if path:
            self.open_data(path)

    def open_project(self, path: str) -> None:
        """Open a project file; its data is read in a background job, as :meth:`open_data` reads data."""
        if self.busy("opening a project"):
            return

        def work(progress, cancel):
            progress("open project", 0, 1, f"reading {Path(path).name} and its data")
            project = Project.load(path)
            if cancel.is_set():
                raise Cancelled("cancelled by the user; the project open before stays")
            return project

        def show(project) -> None:
            self.project = project
            self._remember(path)
            self.setWindowTitle(f"scELMo Desktop — {Path(path).name}")
            for panel in self.panels.values():
                panel.load_settings()
            self.results_changed()
            if project.skipped_settings:
                self.show_message("Opened with defaults for: " + "; ".join(project.skipped_settings))

        self.run_job("opening the project", work, show)

    def _open_project_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", "", f"scELMo project (*{PROJECT_SUFFIX})")
        if path:
            self.open_project(path)

    def _save_project_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save project", f"analysis{PROJECT_SUFFIX}", f"scELMo project (*{PROJECT_SUFFIX})"
        )
        if path:
            saved = self.project.save(path)
            self._remember(str(saved))
            self.show_message(f"Saved {saved}.")

    def _export_h5ad(self) -> None:
        if self.project.adata is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Export data with results", "scelmo_result.h5ad", "AnnData (*.h5ad)"
        )
        if path:
            self.export_results(Path(path))

    def export_results(self, path: Path) -> dict:
        """The data with every result (and the markers' and cell types' tables beside it)."""
        from scelmo_desktop.core.workflows.outputs import export_results

        project = self.project
        paths = export_results(project.adata, path, markers=project.markers, naming=project.naming)
        self.show_message("Wrote " + ", ".join(str(p) for p in paths.values()) + ".")
        return paths

    def _remember(self, path: str) -> None:
        recent = [p for p in (self.qsettings.value("recent", []) or []) if p != path]
        self.qsettings.setValue("recent", [path, *recent][:MAX_RECENT])
        self._fill_recent()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.qsettings.value("recent", []) or []:
            action = QAction(path, self)
            opener = self.open_project if path.endswith(PROJECT_SUFFIX) else self.open_data
            action.triggered.connect(lambda checked=False, p=path, o=opener: o(p))
            self.recent_menu.addAction(action)

    def show_guide(self) -> None:
        """Help → User guide: docs/guide.md and the pages it links to, in a window of the app (offline)."""
        from scelmo_desktop.gui.guide import GuideDialog

        if self.guide is None:
            try:
                self.guide = GuideDialog(self)
            except FileNotFoundError as exc:
                show_error(self, f"The user guide is not installed with this copy of the app ({exc}).")
                return
        self.guide.show()
        self.guide.raise_()
        self.guide.activateWindow()

    def _open_logs(self) -> None:
        from scelmo_desktop.core.workflows.environment import user_data_dir

        QDesktopServices.openUrl(QUrl.fromLocalFile(str(user_data_dir() / "logs")))

    # ---- jobs ---------------------------------------------------------------------------------------------
    def run_job(self, name: str, work, on_success) -> Job | None:
        """Start ``work(progress, cancel)`` in the background; ``on_success(result)`` runs on the UI thread."""
        if self.job is not None and self.job.is_running():
            self.show_message(f"'{self.job.name}' is still running; wait for it or press Cancel.")
            return None
        job = Job(name, work, self)
        job.progress.connect(self._on_progress)
        job.succeeded.connect(lambda _: self.show_message(f"'{name}' finished."))  # before: the handler's own wins
        job.succeeded.connect(on_success)
        job.failed.connect(lambda what, details: show_error(self, what, details))
        job.cancelled.connect(lambda: self.show_message(f"'{name}' cancelled; everything finished before was kept."))
        job.ended.connect(lambda: self._job_ended(job))
        outcome = {"status": "ok", "message": ""}
        job.failed.connect(lambda what, details: outcome.update(status="error", message=what))
        job.cancelled.connect(lambda: outcome.update(status="cancelled"))
        job.ended.connect(lambda: self._audit(name, outcome))
        self.job = job
        self.job_label.setText(f"{name}…")
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.cancel_button.setEnabled(True)
        job.start()
        return job

    def _audit(self, name: str, outcome: dict) -> None:
        from scelmo_desktop.core.workflows.environment import audit

        source = self.project.settings.data_path
        sources = source if isinstance(source, list) else [source]
        inputs = [s for s in sources if s and Path(s).exists()]
        saved = self.project.settings.as_dict()
        settings = {k: v for scope in ("analysis", "models") for k, v in saved[scope].items() if v is not None}
        try:
            audit.record(
                f"desktop: {name}",
                status=outcome["status"],
                inputs=inputs,
                parameters=settings,
                models=[{"name": n} for n in (self.project.settings.llm, self.project.settings.embedder) if n],
                message=outcome["message"],
            )
        except OSError as exc:
            log.warning("audit log not writable: %s", exc)

    def _on_progress(self, stage: str, done: int, total: int, message: str, left: float) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.job_label.setText(f"{self.job.name if self.job else ''}: {stage} {done}/{total} {message}".strip())
        self.eta.setText(_eta(left))

    def cancel_job(self) -> None:
        if self.job is not None and self.job.is_running():
            self.job.cancel()
            self.cancel_button.setEnabled(False)
            self.job_label.setText(f"Cancelling '{self.job.name}' after the current step…")

    def _job_ended(self, job: Job) -> None:
        if self.job is not job:  # its outcome started the next job (opening a result file reads its markers next)
            return
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self.eta.setText("")

    def closeEvent(self, event):  # noqa: N802
        if self.job is not None and self.job.is_running():
            self.job.cancel()
            self.job.wait(10)
        self.qsettings.setValue("threads", self.project.settings.threads or "")
        self.session.close()
        super().closeEvent(event)
