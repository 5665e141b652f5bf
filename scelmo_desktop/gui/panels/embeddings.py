"""Embeddings: turn the descriptions into the gene table and the cells into wa/aa embeddings; show coverage."""

from __future__ import annotations

import pandas as pd
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton

from scelmo_desktop.gui.panels.base import Panel
from scelmo_desktop.gui.widgets import FrameView


class EmbeddingsPanel(Panel):
    title = "Embeddings"
    explanation = (
        "Each description becomes a vector (the embedder); each cell becomes the expression-weighted "
        "(wa) or plain (aa) average of its genes' vectors. Genes without a description get zero rows."
    )

    def __init__(self, window):
        super().__init__(window)
        form = self.form("Gene table")
        self.source = QComboBox()
        form.addRow("Source", self.source)
        row = QHBoxLayout()
        self.embed_button = QPushButton("Embed cells")
        self.embed_button.clicked.connect(self.run_embed)
        row.addWidget(self.embed_button)
        row.addStretch(1)
        form.addRow(row)
        self.status = QLabel("Not embedded yet.")
        self.layout_.addWidget(self.status)
        self.coverage = FrameView()
        self.layout_.addWidget(self.coverage, 1)
        self.refresh()

    def refresh(self) -> None:
        from scelmo_desktop.core.workflows.storage import list_tables

        current = self.source.currentText()
        self.source.clear()
        self.source.addItem("descriptions of this data (Descriptions panel)")
        self.source.addItems([f"stored table: {t['name']}" for t in list_tables()])
        if self.source.findText(current) >= 0:
            self.source.setCurrentText(current)

    def run_embed(self) -> None:
        from scelmo_desktop.core.workflows.embed import embed
        from scelmo_desktop.core.workflows.storage import resolve_table

        project = self.project
        project.require_data()
        source = self.source.currentText()
        stored = source[len("stored table: ") :] if source.startswith("stored table: ") else None

        def work(progress, cancel):
            table = resolve_table(stored) if stored else None
            with self.resources(progress, cancel, embedder=table is None) as resources:
                # texts already written in the Descriptions panel are embedded as they are (edits included)
                return embed(
                    project.adata,
                    table=table,
                    described=None if table else project.described,
                    data_name=project.data_name,
                    **resources,
                )

        self.window_.run_job("embed", work, self._embedded)

    def _embedded(self, outcome) -> None:
        table, coverage = outcome.table, outcome.coverage
        project = self.project
        project.table, project.alignment, project.coverage = table, outcome.alignment, coverage
        if outcome.described is not None:
            project.described = outcome.described
        self.status.setText(
            "scELMo embedding written to obsm['X_scelmo'] (the paper's wa/aa: ['X_scelmo_wa'] / "
            f"['X_scelmo_aa']): {coverage['n_matched']} of "
            f"{coverage['n_genes']} genes have a vector ({table.dim}-d), covering "
            f"{100 * coverage.get('fraction_expression_covered', 0):.1f}% of expression."
        )
        self.coverage.set_frame(pd.DataFrame([{"measure": k, "value": str(v)} for k, v in coverage.items()]))
        project.results["embeddings"] = {k: v for k, v in coverage.items() if isinstance(v, (int, float, str))}
        self.window_.results_changed()
