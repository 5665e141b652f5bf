"""Clustering: neighbours, Leiden (a resolution sweep scored against the labels, or a fixed resolution), UMAP,
the baselines' metrics, and the interactive embedding view."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QPushButton, QSplitter

from scelmo_desktop.core.keys import CLUSTER_KEY
from scelmo_desktop.gui.embedding_view import EmbeddingView
from scelmo_desktop.gui.panels.base import Panel
from scelmo_desktop.gui.widgets import FrameView


class ClusteringPanel(Panel):
    title = "Clustering"
    explanation = (
        "Leiden clusters on the scELMo embedding's neighbour graph; with a label column the resolution "
        "is swept (0.2–2.0) and NMI/ARI/ASW are reported next to PCA and a random gene table."
    )

    def __init__(self, window):
        super().__init__(window)
        form = self.form("Settings")
        editors = self.add_settings(["n_neighbors", "resolution", "baselines"], form)
        self.neighbours, self.resolution = editors.editor("n_neighbors").editor, editors.editor("resolution").editor
        self.sweep, self.baselines = editors.editor("resolution").none_box, editors.editor("baselines").editor
        row = QHBoxLayout()
        self.run_button = QPushButton("Cluster")
        self.run_button.clicked.connect(self.run_cluster)
        self.export_button = QPushButton("Export plot (PNG/SVG)…")
        self.export_button.clicked.connect(self._export)
        row.addWidget(self.run_button)
        row.addWidget(self.export_button)
        row.addStretch(1)
        form.addRow(row)
        splitter = QSplitter(Qt.Vertical)
        self.view = EmbeddingView()
        self.metrics = FrameView()
        splitter.addWidget(self.view)
        splitter.addWidget(self.metrics)
        splitter.setSizes([470, 190])
        self.layout_.addWidget(splitter, 1)

    def run_cluster(self) -> None:
        from scelmo_desktop.core.workflows.cluster import evaluate_clustering

        project = self.project
        project.require_data()
        if project.alignment is None:
            self.window_.show_message("Embed the cells first (Embeddings panel).")
            return
        settings = project.pipeline_settings(project.settings.mode)
        expression = project.expression()

        def work(progress, cancel):
            return evaluate_clustering(
                project.adata, expression, project.alignment, settings=settings, progress=progress, cancel=cancel
            )

        self.window_.run_job("cluster", work, self.show_clustering)

    def show_clustering(self, metrics) -> None:
        project = self.project
        project.cluster_metrics = metrics
        self.metrics.set_frame(metrics.drop(columns=["embedding"], errors="ignore"))
        self.view.set_data(project.adata, "X_umap", color_by=project.settings.label_key or CLUSTER_KEY)
        project.results["clustering"] = metrics.drop(columns=["embedding"], errors="ignore").to_dict("records")
        self.window_.results_changed()

    def refresh(self) -> None:
        adata = self.project.adata
        if adata is not None and "X_umap" in adata.obsm and self.view.adata is not adata:
            self.view.set_data(adata, "X_umap", color_by=self.project.settings.label_key)

    def _export(self) -> None:
        if self.view.adata is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export plot", "umap.png", "PNG (*.png);;SVG (*.svg)")
        if path:
            self.view.export(path)
