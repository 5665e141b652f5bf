"""Descriptions: write gene (and cell-type) descriptions with the local LLM or the offline knowledge, search
them, see their source mode and quality flags, edit by hand, and move them between workstations as packs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
)

from scelmo_desktop.app.session import open_store
from scelmo_desktop.gui.panels.base import Panel
from scelmo_desktop.gui.widgets import FrameView


class DescriptionsPanel(Panel):
    title = "Descriptions"
    explanation = (
        "Each gene gets a text: written by the LLM (llm), by the LLM from offline facts (grounded), "
        "or the facts alone (facts). Everything is stored; a second run is instant and a cancelled "
        "run keeps what it finished. Small models invent things: read before you trust."
    )

    def __init__(self, window):
        super().__init__(window)
        form = self.form("Describe")
        editors = self.add_settings(["mode", "on_flag", "max_genes", "llm_genes", "llm_minutes"], form)
        # the editors tests and the screenshot script drive by hand
        self.mode, self.on_flag = editors.editor("mode").editor, editors.editor("on_flag").editor
        self.max_genes, self.all_genes = editors.editor("max_genes").editor, editors.editor("max_genes").none_box
        self.llm_genes = editors.editor("llm_genes").editor
        self.knowledge_label = QLabel("none")
        knowledge_button = QPushButton("Add knowledge file…")
        knowledge_button.setToolTip(
            "Your own gene texts for the fact sheets: NCBI gene_info, GenePT JSON, UniProt TSV or symbol,text CSV/TSV."
        )
        knowledge_button.clicked.connect(self._add_knowledge)
        knowledge = QHBoxLayout()
        knowledge.addWidget(self.knowledge_label, 1)
        knowledge.addWidget(knowledge_button)
        form.addRow("Knowledge files", knowledge)
        buttons = QHBoxLayout()
        self.describe_button = QPushButton("Describe genes")
        self.describe_button.clicked.connect(self.run_describe)
        self.cell_types_button = QPushButton("Describe cell types (label column)")
        self.cell_types_button.clicked.connect(self.run_cell_types)
        buttons.addWidget(self.describe_button)
        buttons.addWidget(self.cell_types_button)
        buttons.addStretch(1)
        form.addRow(buttons)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search genes or text…")
        self.layout_.addWidget(self.search)
        self.table = FrameView()
        self.search.textChanged.connect(self.table.proxy.setFilterFixedString)
        self.layout_.addWidget(self.table, 1)
        actions = QHBoxLayout()
        for text, slot in (
            ("Edit selected…", self._edit),
            ("Describe selected in this mode", self._redescribe),
            ("Export CSV…", lambda: self.table.export_csv(self, "descriptions.csv")),
            ("Export pack…", self._export_pack),
            ("Import pack…", self._import_pack),
        ):
            button = QPushButton(text)
            button.clicked.connect(slot)
            actions.addWidget(button)
        actions.addStretch(1)
        self.layout_.addLayout(actions)
        self.status = QLabel("")
        self.layout_.addWidget(self.status)
        self.rows = pd.DataFrame(columns=["name", "kind", "mode", "flags", "edited", "text"])

    # ---- jobs ---------------------------------------------------------------------------------------------
    def run_describe(self, genes: list[str] | None = None) -> None:
        """The data's gene set, or the selected ``genes`` again, in the chosen mode (with the flag policy, the
        knowledge files and the LLM budget of the project, exactly as the CLI)."""
        from scelmo_desktop.core.workflows.describe import describe

        project = self.project
        project.require_data()

        def work(progress, cancel):
            with self.resources(progress, cancel, embedder=False) as resources:
                del resources["embedder"]
                return describe(project.adata, genes=genes or None, **resources).genes

        self.window_.run_job("describe genes", work, self.show_descriptions)

    def show_descriptions(self, result) -> None:
        project = self.project
        if project.described is not None and set(result.texts) < set(project.described.texts):
            project.described.texts.update(result.texts)  # re-described a few: merge into the full set
        else:
            project.described = result
        project.table = None  # the gene table must be rebuilt from the new texts
        rows = [
            {
                "name": g,
                "kind": "gene",
                "mode": "facts" if g in result.from_facts else result.mode,
                "flags": ";".join(result.flags.get(g, [])),
                "edited": "yes" if g in result.edited else "",
                "text": t,
            }
            for g, t in result.texts.items()
        ]
        keep = self.rows[~self.rows["name"].isin(result.texts)] if len(self.rows) else self.rows
        self.rows = pd.concat([keep, pd.DataFrame(rows)], ignore_index=True) if len(keep) else pd.DataFrame(rows)
        self.table.set_frame(self.rows)
        self.status.setText(
            f"LLM calls: {result.n_llm_calls} (cached: {result.n_cached}) · mode {result.mode} · "
            f"flagged: {result.flag_counts().get('any', 0)}"
        )
        self.window_.results_changed()

    def run_cell_types(self) -> None:
        from scelmo_desktop.core.workflows.describe import describe

        project = self.project
        project.require_data()
        if not project.settings.label_key:
            self.status.setText("Choose a label column in the Data panel first.")
            return

        def work(progress, cancel):
            with self.resources(progress, cancel, embedder=False) as resources:
                del resources["embedder"]
                return describe(project.adata, genes=[], cell_types_key=project.settings.label_key, **resources)

        def done(outcome):
            rows = outcome.rows()
            rows = rows.loc[rows["kind"] == "cell_type", ["name", "kind", "mode", "flags", "edited", "text"]]
            rows = rows.assign(kind="cell type", edited="")
            self.rows = pd.concat([self.rows[self.rows["kind"] != "cell type"], rows], ignore_index=True)
            self.table.set_frame(self.rows)
            self.status.setText(f"{len(rows)} cell types described (mode {outcome.mode}).")

        self.window_.run_job("describe cell types", work, done)

    def _add_knowledge(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Gene knowledge file", "", "Gene texts (*.csv *.tsv *.txt *.json *.gz);;All files (*)"
        )
        if path:
            self.project.settings.knowledge_files.append(path)
            self.refresh()

    def refresh(self) -> None:
        files = self.project.settings.knowledge_files
        self.knowledge_label.setText(", ".join(Path(f).name for f in files) or "none")
        self.on_flag.setCurrentText(self.project.settings.on_flag)

    # ---- editing and packs --------------------------------------------------------------------------------
    def _selected_genes(self) -> list[str]:
        rows = self.table.selected_rows()
        return [str(n) for n, k in zip(rows.get("name", []), rows.get("kind", [])) if k == "gene"]

    def _edit(self) -> None:
        genes = self._selected_genes()
        if len(genes) != 1:
            self.status.setText("Select one gene to edit.")
            return
        gene = genes[0]
        current = self.rows.loc[self.rows["name"] == gene, "text"].iloc[0]
        text, ok = QInputDialog.getMultiLineText(
            self, f"Edit {gene}", "Description (used in every mode from now on):", current
        )
        if ok and text.strip():
            with open_store() as store:
                store.put_edit("gene", gene, text.strip(), author="desktop")
            self.rows.loc[self.rows["name"] == gene, ["text", "edited"]] = [text.strip(), "yes"]
            if self.project.described is not None:
                self.project.described.texts[gene] = text.strip()
            self.project.table = None
            self.table.set_frame(self.rows)
            self.status.setText(f"Stored the edit of {gene}; re-embed to use it.")

    def _redescribe(self) -> None:
        genes = self._selected_genes()
        if genes:
            self.run_describe(genes)

    def _export_pack(self) -> None:
        from scelmo_desktop.core.workflows.storage import export_pack

        path, _ = QFileDialog.getSaveFileName(
            self, "Export descriptions pack", "descriptions.scelmo-pack.zip", "scELMo pack (*.zip)"
        )
        if path:
            with open_store() as store:
                manifest = export_pack(store, path)
            self.status.setText(f"Exported {manifest['n_descriptions']} descriptions to {path}.")

    def _import_pack(self) -> None:
        from scelmo_desktop.backends import registry
        from scelmo_desktop.core.workflows.storage import import_pack

        path, _ = QFileDialog.getOpenFileName(self, "Import descriptions pack", "", "scELMo pack (*.zip)")
        if path:
            info = registry.find_model("sentence-transformers", self.project.settings.embedder)
            with open_store() as store:
                summary = import_pack(store, path, embedder_id=registry.embedder_id(info.name, info.sha256))
            self.status.setText(f"Imported {summary['descriptions_new']} new descriptions.")
