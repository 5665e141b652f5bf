"""Clustering: neighbours, Leiden (a resolution sweep scored against the labels, or a fixed resolution), UMAP,
the baselines' metrics, and the interactive embedding view."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QSlider, QSplitter

from scelmo_desktop.core.keys import CLUSTER_KEY, NAME_KEY, analysis_rep, neighbors_key
from scelmo_desktop.gui.embedding_view import EmbeddingView
from scelmo_desktop.gui.panels.base import Panel
from scelmo_desktop.gui.widgets import FrameView


class ClusteringPanel(Panel):
    title = "Clustering"
    explanation = (
        "Leiden clusters on the scELMo embedding's neighbour graph; with a label column the resolution "
        "is swept (0.2–2.0) and NMI/ARI/ASW are reported; 'Compare with baselines' adds the paper's cell "
        "vectors, the scanpy route (PCA) and a random gene table. Once clustered, the resolution slider "
        "reclusters on the same graph (the UMAP stays)."
    )
    SLIDER_STEP = 0.05  # resolution per slider step; the slider spans 1 to 60 steps

    def __init__(self, window):
        super().__init__(window)
        form = self.form("Settings")
        editors = self.add_settings(["n_neighbors", "resolution", "compare"], form)
        self.neighbours, self.resolution = editors.editor("n_neighbors").editor, editors.editor("resolution").editor
        self.sweep, self.compare = editors.editor("resolution").none_box, editors.editor("compare").editor
        row = QHBoxLayout()
        self.run_button = QPushButton("Cluster")
        self.run_button.clicked.connect(self.run_cluster)
        self.export_button = QPushButton("Export plot (PNG/SVG)…")
        self.export_button.clicked.connect(self._export)
        row.addWidget(self.run_button)
        row.addWidget(self.export_button)
        row.addStretch(1)
        form.addRow(row)
        slider_row = QHBoxLayout()
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setObjectName("resolution slider")
        self.slider.setRange(1, 60)
        self.slider.setValue(round(1.0 / self.SLIDER_STEP))
        self.slider.setTracking(False)  # recluster when the handle is let go (or moved by the keyboard)
        self.slider.setToolTip("Leiden resolution: higher gives more, smaller clusters.")
        self.slider.sliderMoved.connect(lambda step: self.slider_label.setText(self._slider_words(step)))
        self.slider.valueChanged.connect(self.recluster)
        self.slider_label = QLabel(self._slider_words(self.slider.value()))
        slider_row.addWidget(self.slider, 1)
        slider_row.addWidget(self.slider_label)
        form.addRow("Resolution", slider_row)
        splitter = QSplitter(Qt.Vertical)
        self.view = EmbeddingView()
        self.metrics = FrameView()
        splitter.addWidget(self.view)
        splitter.addWidget(self.metrics)
        splitter.setSizes([470, 190])
        self.layout_.addWidget(splitter, 1)

    def run_cluster(self) -> None:
        from scelmo_desktop.core.workflows.cluster import evaluate_clustering
        from scelmo_desktop.core.workflows.markers import markers_and_names

        project = self.project
        project.require_data()
        if project.alignment is None:
            self.window_.show_message("Embed the cells first (Embeddings panel).")
            return
        settings = project.pipeline_settings(project.settings.mode)

        def work(progress, cancel):
            expression = project.expression()  # log-normalising a large matrix takes seconds: not in the UI thread
            metrics = evaluate_clustering(
                project.adata, expression, project.alignment, settings=settings, progress=progress, cancel=cancel
            )
            found = markers_and_names(project.adata, expression, settings=settings, progress=progress)
            project.naming_note = found.notes.get("naming", "")
            return metrics, found.markers, found.naming

        self.window_.run_job("cluster", work, lambda result: self.show_clustering(*result))

    def _slider_words(self, step: int) -> str:
        return f"{step * self.SLIDER_STEP:.2f}"

    def _has_graph(self) -> bool:
        adata = self.project.adata
        return adata is not None and neighbors_key(analysis_rep(adata)) in adata.uns

    def _show_slider(self, resolution: float | None) -> None:
        """Put the slider at ``resolution`` without reclustering, enabled once there is a graph to recluster."""
        self.slider.setEnabled(self._has_graph())
        if resolution is not None:
            self.slider.blockSignals(True)
            self.slider.setValue(max(1, min(60, round(resolution / self.SLIDER_STEP))))
            self.slider.blockSignals(False)
        self.slider_label.setText(self._slider_words(self.slider.value()))

    def _clustered_resolution(self) -> float | None:
        """The resolution the scELMo clusters shown were made at (None before clustering)."""
        metrics = self.project.cluster_metrics
        if metrics is None or "embedding" not in metrics:
            return None
        scelmo = metrics[metrics["embedding"] == analysis_rep(self.project.adata)]
        return float(scelmo["resolution"].iloc[0]) if len(scelmo) else None

    def recluster(self, step: int) -> None:
        """Leiden at the slider's resolution on the existing scELMo graph (no new graph or UMAP)."""
        from scelmo_desktop.core.workflows.cluster import recluster
        from scelmo_desktop.core.workflows.markers import markers_and_names

        self.slider_label.setText(self._slider_words(step))
        if not self._has_graph():
            return
        project = self.project
        resolution = step * self.SLIDER_STEP
        adata, label_key, seed = project.adata, project.settings.label_key, project.settings.seed
        settings = project.pipeline_settings(project.settings.mode)

        def work(progress, cancel):
            progress("recluster", 0, 1, f"resolution {resolution:.2f}")
            expression = project.expression()
            row = recluster(adata, resolution, label_key=label_key, seed=seed)
            found = markers_and_names(adata, expression, settings=settings, progress=progress)
            project.naming_note = found.notes.get("naming", "")
            return row, found.markers, found.naming

        self.window_.run_job("recluster", work, lambda result: self.show_reclustered(*result))

    def show_reclustered(self, row: dict, markers=None, naming=None) -> None:
        project = self.project
        project.markers, project.naming = markers, naming  # the clusters changed: their markers and names with them
        project.settings.resolution = row["resolution"]
        self.load_settings()
        metrics = project.cluster_metrics
        if metrics is not None and "embedding" in metrics:
            metrics = metrics.copy()
            scelmo = metrics["embedding"] == row["embedding"]
            for column, value in row.items():
                if column in metrics and column != "embedding":
                    metrics.loc[scelmo, column] = value
            project.cluster_metrics = metrics
            self.metrics.set_frame(metrics.drop(columns=["embedding"], errors="ignore"))
            project.results["clustering"] = metrics.drop(columns=["embedding"], errors="ignore").to_dict("records")
        self.view.set_data(project.adata, "X_umap", color_by=CLUSTER_KEY)  # the slider's clusters, as they move
        self.window_.results_changed()

    def show_clustering(self, metrics, markers=None, naming=None) -> None:
        project = self.project
        project.cluster_metrics = metrics
        project.markers, project.naming = markers, naming
        self._show_slider(self._clustered_resolution())
        self.metrics.set_frame(metrics.drop(columns=["embedding"], errors="ignore"))
        shown = project.settings.label_key or (NAME_KEY if naming is not None else CLUSTER_KEY)
        self.view.set_data(project.adata, "X_umap", color_by=shown)
        project.results["clustering"] = metrics.drop(columns=["embedding"], errors="ignore").to_dict("records")
        self.window_.results_changed()

    def refresh(self) -> None:
        adata = self.project.adata
        if adata is not None and "X_umap" in adata.obsm and self.view.adata is not adata:
            self.view.set_data(adata, "X_umap", color_by=self.project.settings.label_key)
        self._show_slider(self._clustered_resolution())

    def _export(self) -> None:
        if self.view.adata is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export plot", "umap.png", "PNG (*.png);;SVG (*.svg)")
        if path:
            self.view.export(path)
