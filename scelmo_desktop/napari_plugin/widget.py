"""The napari dock widget. Long work runs through napari's ``thread_worker``; the science is the same
``core.workflows.pipeline.run_pipeline`` the CLI and the desktop app call, with models opened by the same
session layer (``app.session``). qtpy keeps it binding-neutral (napari may run
on PyQt or PySide)."""

from __future__ import annotations

import threading

from scelmo_desktop.core.settings import DEFAULT_GENES

try:  # inside napari: qtpy picks whichever binding napari runs on
    from qtpy.QtWidgets import QComboBox, QFileDialog, QFormLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget
except ImportError:  # the desktop app's own binding
    from PySide6.QtWidgets import (
        QComboBox,
        QFileDialog,
        QFormLayout,
        QLabel,
        QPushButton,
        QSpinBox,
        QVBoxLayout,
        QWidget,
    )


class ScelmoWidget(QWidget):
    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.path: str | None = None
        self.cancel_flag = threading.Event()
        self.worker = None
        self.open_button = QPushButton("Open .h5ad…")
        self.open_button.clicked.connect(self._choose)
        self.mode = QComboBox()
        self.mode.addItems(["facts", "grounded", "llm"])
        self.genes = QSpinBox()
        self.genes.setRange(8, 100_000)
        self.genes.setValue(DEFAULT_GENES)
        self.run_button = QPushButton("Embed and cluster")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_flag.set)
        self.status = QLabel("Open a file to start. Local models only.")
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Description mode", self.mode)
        form.addRow("Gene set (most variable)", self.genes)
        layout = QVBoxLayout(self)
        layout.addWidget(self.open_button)
        layout.addLayout(form)
        layout.addWidget(self.run_button)
        layout.addWidget(self.cancel_button)
        layout.addWidget(self.status)
        layout.addStretch(1)

    def _choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open AnnData", "", "AnnData (*.h5ad)")
        if path:
            self.path = path
            self.status.setText(path)

    def work(self):
        """Generator for ``thread_worker``: yields progress text, returns the embedded AnnData."""
        from scelmo_desktop.app.session import ModelSession, ModelSettings, open_store
        from scelmo_desktop.core.settings import PipelineSettings
        from scelmo_desktop.core.workflows.data import read_data
        from scelmo_desktop.core.workflows.pipeline import run_pipeline

        adata = read_data(self.path)
        choice, models = ModelSettings(mode=self.mode.currentText()), ModelSession()
        settings = PipelineSettings(max_genes=self.genes.value(), mode=models.resolved_mode(choice))
        messages = []
        try:
            with open_store() as store:
                result = run_pipeline(
                    adata,
                    settings=settings,
                    llm=models.llm_source(choice),
                    embedder=models.embedder(choice),
                    store=store,
                    data_name=self.path,
                    cancel=self.cancel_flag,
                    progress=lambda stage, done, total, m="", metrics=None: messages.append(f"{stage} {done}/{total}"),
                )
        finally:
            models.close()
        yield messages[-1] if messages else "done"
        return result.adata

    def run(self) -> None:
        from napari.qt.threading import thread_worker

        if not self.path:
            self.status.setText("Open a file first.")
            return
        self.cancel_flag.clear()
        self.worker = thread_worker(self.work)()
        self.worker.yielded.connect(self.status.setText)
        self.worker.returned.connect(self.add_cells_layer)
        self.worker.errored.connect(lambda exc: self.status.setText(f"Error: {exc}"))
        self.worker.start()

    def add_cells_layer(self, adata) -> None:
        import numpy as np

        coords = np.asarray(adata.obsm["X_umap"])[:, ::-1]  # napari points are (row, column)
        from scelmo_desktop.core.keys import CLUSTER_KEY

        features = {"cluster": adata.obs[CLUSTER_KEY].astype(str).to_numpy()}
        self.viewer.add_points(coords * 20, features=features, face_color="cluster", size=3, name="scELMo cells")
        self.status.setText(f"{adata.n_obs} cells embedded; coloured by Leiden cluster.")
