"""Markers: each cluster's cell-type name with its evidence (renamed by hand, or a runner-up taken), and its (or
any grouping's) marker genes against the rest, as a searchable, sortable table of every gene, exportable; a gene
double-clicked colours the UMAP by it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from scelmo_desktop.core.keys import CLUSTER_KEY, NAME_KEY
from scelmo_desktop.core.workflows.environment import ScelmoError
from scelmo_desktop.gui.panels.base import Panel, fill_obs_combo
from scelmo_desktop.gui.widgets import FigureView, FrameView

ALL_GROUPS = "(all groups)"


class MarkersPanel(Panel):
    title = "Markers"
    explanation = (
        "Marker genes of each cluster against the rest: scanpy's rank_genes_groups (Wilcoxon by default), with "
        "the share of cells expressing each gene in and out of the group, the fold change and the adjusted p. "
        "Genes passing filter_rank_genes_groups' rule (in ≥25% of the group, ≤50% outside, 2-fold) are marked. "
        "Every run finds them for its clusters and names each cluster with a Cell Ontology type from them and "
        "the curated marker knowledge (no reference, no candidate list): the markers for the call, the type's "
        "markers absent or down, and the runner-ups are shown. Rename a cluster, or take a runner-up, by hand. "
        "Explain names asks your local LLM for a short reason per cluster from that evidence; it may choose only "
        "among the ranked candidates, and its answers are checked (the embedded 270M model is too weak: bring "
        "an instruct GGUF in Models). Double-click a gene to colour the UMAP by it."
    )

    def __init__(self, window):
        super().__init__(window)
        form = self.form("Settings")
        editors = self.add_settings(["markers", "naming_llm"], form)
        self.method = editors.editor("markers").editor
        self.groupby = QComboBox()
        form.addRow("Groups (obs column)", self.groupby)
        row = QHBoxLayout()
        self.run_button = QPushButton("Find markers")
        self.run_button.clicked.connect(self.run_markers)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(lambda: self.table.export_csv(self, "markers.csv"))
        row.addWidget(self.run_button)
        row.addWidget(self.export_button)
        row.addStretch(1)
        form.addRow(row)
        filters = QHBoxLayout()
        self.group = QComboBox()
        self.group.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.group.setMinimumContentsLength(12)
        self.group.currentTextChanged.connect(lambda _: self._show_group())
        self.passing_only = QComboBox()
        self.passing_only.addItems(["genes passing the filter", "every gene"])
        self.passing_only.currentIndexChanged.connect(lambda _: self._show_group())
        self.search = QLineEdit()
        self.search.setPlaceholderText("search genes…")
        self.search.textChanged.connect(lambda text: self.table.proxy.setFilterFixedString(text))
        for label, widget in (("Group", self.group), ("Show", self.passing_only)):
            filters.addWidget(QLabel(label))
            filters.addWidget(widget)
        filters.addWidget(self.search, 1)
        self.layout_.addLayout(filters)
        self.status = QLabel("")
        self.layout_.addWidget(self.status)
        names_row = QHBoxLayout()
        self.rename_button = QPushButton("Rename…")
        self.rename_button.clicked.connect(self._ask_rename)
        self.runner_up_button = QPushButton("Take a runner-up…")
        self.runner_up_button.clicked.connect(self._ask_runner_up)
        self.merge_button = QPushButton("Merge…")
        self.merge_button.setToolTip("Merge the clusters selected in the cell-type table (Ctrl-click several)")
        self.merge_button.clicked.connect(lambda: self.merge(self._selected_groups()))
        self.subcluster_button = QPushButton("Sub-cluster")
        self.subcluster_button.setToolTip("Split the selected cluster with Leiden on the same graph, then name it")
        self.subcluster_button.clicked.connect(lambda: self.subcluster(next(iter(self._selected_groups()), None)))
        self.explain_button = QPushButton("Explain names (LLM)")
        self.explain_button.setToolTip(
            "Your local LLM writes a short reason per cluster from its evidence; with the setting 'choose' it may "
            "take a runner-up the evidence ranked"
        )
        self.explain_button.clicked.connect(self.explain)
        self.export_names_button = QPushButton("Export cell types…")
        self.export_names_button.clicked.connect(lambda: self.names.export_csv(self, "cell_types.csv"))
        self.names_status = QLabel("")
        buttons = (
            self.rename_button,
            self.runner_up_button,
            self.merge_button,
            self.subcluster_button,
            self.explain_button,
        )
        for widget in (*buttons, self.export_names_button):
            names_row.addWidget(widget)
        names_row.addStretch(1)
        self.layout_.addLayout(names_row)
        self.names_status.setWordWrap(True)
        self.layout_.addWidget(self.names_status)
        splitter = QSplitter(Qt.Vertical)
        self.names = FrameView()
        self.names.clicked.connect(self._name_clicked)
        self.call_detail = QLabel("")  # the clicked cluster's evidence and the LLM's reason, in words
        self.call_detail.setWordWrap(True)
        self.call_detail.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.table = FrameView()
        self.table.doubleClicked.connect(self._gene_clicked)
        splitter.addWidget(self.names)
        splitter.addWidget(self.call_detail)
        splitter.addWidget(self.table)
        splitter.setSizes([220, 60, 360])
        self.tabs = QTabWidget()
        self.tabs.addTab(splitter, "Cell types and markers")
        self.tabs.addTab(self._plots_tab(), "Plots")
        self.layout_.addWidget(self.tabs, 1)
        self.figure = None

    PLOTS = {
        "dot plot": "dotplot",
        "heatmap": "heatmap",
        "stacked violins": "stacked_violin",
        "violin of a gene": "violin",
    }

    def _plots_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        row = QHBoxLayout()
        self.plot_kind = QComboBox()
        self.plot_kind.addItems(list(self.PLOTS))
        self.plot_genes = QLineEdit("3")
        self.plot_genes.setMaximumWidth(50)
        self.plot_genes.setToolTip("markers per group (dot plot, heatmap, violins)")
        self.plot_gene = QLineEdit()
        self.plot_gene.setPlaceholderText("gene (violin)")
        self.draw_button = QPushButton("Draw")
        self.draw_button.clicked.connect(lambda: self.draw(self.PLOTS[self.plot_kind.currentText()]))
        self.export_svg_button = QPushButton("Export SVG/PDF…")
        self.export_svg_button.clicked.connect(self._export_figure)
        for widget in (QLabel("Plot"), self.plot_kind, QLabel("genes per group"), self.plot_genes, self.plot_gene):
            row.addWidget(widget)
        row.addWidget(self.draw_button)
        row.addWidget(self.export_svg_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.figure_view = FigureView("Draw scanpy's dot plot, heatmap or violins of the markers.")
        layout.addWidget(self.figure_view, 1)
        return tab

    def draw(self, kind: str, gene: str | None = None) -> None:
        """scanpy's marker plot of the current markers, shown here and kept for export (drawn in the UI thread:
        scanpy draws through pyplot)."""
        import tempfile
        from pathlib import Path

        from scelmo_desktop.core.workflows.figures import save_figure
        from scelmo_desktop.core.workflows.markers import marker_figure

        project = self.project
        if project.markers is None:
            self.window_.show_message("Find the markers first (Find markers, or run the pipeline).")
            return
        n_genes = int(self.plot_genes.text()) if self.plot_genes.text().isdigit() else 3
        gene = gene or self.plot_gene.text().strip() or None
        try:
            self.figure = marker_figure(project.adata, project.expression(), kind, n_genes=max(n_genes, 1), gene=gene)
        except ScelmoError as exc:
            self.window_.show_message(str(exc))
            return
        path = Path(tempfile.mkdtemp(prefix="scelmo-plot-")) / f"{kind}.png"
        self.figure_view.show_png(save_figure(self.figure, path))
        self.tabs.setCurrentIndex(1)

    def export_figure(self, path: str) -> None:
        from scelmo_desktop.core.workflows.figures import save_figure

        save_figure(self.figure, path)

    def _export_figure(self) -> None:
        if self.figure is None:
            self.window_.show_message("Draw a plot first.")
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Export plot", "markers.svg", "SVG (*.svg);;PDF (*.pdf);;PNG (*.png)"
        )
        if path:
            self.export_figure(path)

    def refresh(self) -> None:
        fill_obs_combo(self.groupby, self.project.adata, prefer=CLUSTER_KEY)  # the one shown before wins
        if self.project.markers is not self._shown:  # rebuilt only when the markers changed
            self.show_markers(self.project.markers)
        self.show_names(self.project.naming)

    _shown = None

    # ---- names ----------------------------------------------------------------------------------------------
    def show_names(self, naming) -> None:
        """The table of cluster names (rounded for reading; the export keeps full precision)."""
        if naming is None:
            self.names.set_frame(self._empty_names())
            why = self.project.naming_note or "the pipeline names its clusters (naming setting on)"
            self.names_status.setText(f"Clusters not named: {why}.")
        else:
            self.names.set_frame(naming.table())
            self.names_status.setText(
                f"{len(naming.groups)} clusters named among {naming.n_candidates:,} Cell Ontology types "
                f"(tissue hint: {naming.tissue}){self._split_note(naming)}{self._mixed_note(naming)}"
                f"{self._explanations_note(naming)}"
            )
        for button in self._naming_buttons():
            button.setEnabled(naming is not None)

    def _naming_buttons(self):
        return self.rename_button, self.runner_up_button, self.merge_button, self.subcluster_button, self.explain_button

    def _split_note(self, naming) -> str:
        """The clusters the run split because their cells mixed two lineages, while their parts are shown."""
        from scelmo_desktop.core.workflows.cluster import automatic_splits

        splits = {
            g: into for g, into in automatic_splits(self.project.adata).items() if set(into) <= set(naming.groups)
        }
        words = "; ".join(f"{group} into {', '.join(into)}" for group, into in splits.items())
        return f"; split by the run because their cells mixed two lineages: {words}" if splits else ""

    @staticmethod
    def _mixed_note(naming) -> str:
        mixed = [g for g, call in naming.groups.items() if call.mixed]
        return f"; may mix two lineages (sub-cluster them): {', '.join(mixed)}" if mixed else ""

    def _explanations_note(self, naming) -> str:
        """How many clusters the LLM explained and how many answers its checks flagged, and a warning when the
        model is measured too weak for it (the embedded 270M base model)."""
        import json

        said = [c.explanation for c in naming.groups.values() if c.explanation]
        record = (self.project.adata.uns.get("scelmo") or {}).get("naming") or {}
        if not said or "explanations" not in record:
            return ""
        run = json.loads(record["explanations"])
        note = f"; {len(said)} explained by {run['llm']['name']}, {sum(bool(e['flags']) for e in said)} flagged"
        if run.get("model_measured_weak"):
            note += ". That model is too weak to explain names: add an instruct GGUF of your own in Models"
        return note

    @staticmethod
    def _empty_names():
        import pandas as pd

        return pd.DataFrame(columns=["group", "cell_type", "ontology_id", "confidence"])

    def _selected_groups(self) -> list[str]:
        model = self.names.selectionModel()
        rows = sorted({index.row() for index in model.selectedIndexes()}) if model else []
        frame = self.names.model_.frame
        return [
            str(frame.iloc[self.names.proxy.mapToSource(self.names.proxy.index(r, 0)).row()]["group"]) for r in rows
        ]

    def _chosen_group(self) -> str | None:
        """The cluster selected in the cell-type table; None (and the user told to select one) when none is."""
        group = next(iter(self._selected_groups()), None)
        if group is None:
            self.window_.show_message("Select a cluster in the cell-type table first.")
        return group

    def merge(self, groups: list[str]) -> None:
        """Merge clusters by hand, then find the markers and names of the new clusters (kept hand renames stay)."""
        from scelmo_desktop.core.workflows.cluster import merge_clusters

        if len(groups) < 2:
            self.window_.show_message("Select two or more clusters in the cell-type table (Ctrl-click).")
            return
        self._edit_clusters("merge", lambda adata: merge_clusters(adata, groups))

    def subcluster(self, group: str | None) -> None:
        """Split one cluster by hand (Leiden within it on the same graph), then name the new clusters."""
        from scelmo_desktop.core.workflows.cluster import subcluster

        if group is None:
            self.window_.show_message("Select a cluster in the cell-type table first.")
            return
        seed = self.project.settings.seed
        self._edit_clusters("sub-cluster", lambda adata: subcluster(adata, group, seed=seed))

    def _edit_clusters(self, name: str, edit) -> None:
        from scelmo_desktop.core.workflows.markers import markers_and_names

        project = self.project
        settings = project.pipeline_settings(project.settings.mode)
        adata = project.adata

        def work(progress, cancel):
            progress(name, 0, 1, "")
            edit(adata)
            return markers_and_names(adata, project.expression(), settings=settings, progress=progress)

        self.window_.run_job(name, work, self._clusters_edited)

    def _clusters_edited(self, found) -> None:
        project = self.project
        project.markers, project.naming, project.naming_note = (
            found.markers,
            found.naming,
            found.notes.get("naming", ""),
        )
        self.window_.panels["Clustering"].view.set_data(project.adata, "X_umap", color_by=NAME_KEY)
        self.window_.results_changed()

    def _name_clicked(self, index) -> None:
        group = str(self.names.model_.frame.iloc[self.names.proxy.mapToSource(index).row()]["group"])
        if self.group.findText(group) >= 0:
            self.group.setCurrentText(group)
        self.call_detail.setText(self.describe_call(group))

    def describe_call(self, group: str) -> str:
        """One cluster's call in words: the markers for and against it, the runner-ups and the LLM's reason."""
        call = self.project.naming.groups[group]
        words = [
            f"Cluster {group}: {call.name} ({call.term_id or 'no term'}; confidence {call.confidence:.2f}"
            + (", named by hand" if call.edited else ", the LLM's choice" if call.chosen_by == "llm" else "")
            + ").",
            "For: " + (", ".join(m["gene"] for m in call.supporting) or "none") + ".",
            "Absent or not higher: " + (", ".join(m["gene"] for m in call.against) or "none") + ".",
        ]
        if call.mixed:
            words.append(f"Its cells may mix {call.mixed_parts()}: sub-cluster it before trusting the name.")
        if call.within:
            words.append(f"It was {call.within_parent()}.")
        runners = [r for r in call.runners_up if r["term_id"] != call.term_id]  # one may have been taken
        if runners:
            words.append(
                "Runner-ups: "
                + "; ".join(
                    f"{r['name']} (behind by {r['behind_by']:.3f}, lacks {', '.join(r['lacks']) or 'none of its top markers'})"
                    for r in runners
                )
                + "."
            )
        if call.explanation:
            flags = call.explanation["flags"]
            words.append(
                f"LLM: {' '.join(call.explanation['reason'].split())}"
                + (f" [checks: {'; '.join(flags)}]" if flags else " [checks passed]")
            )
        return " ".join(words)

    def rename(self, group: str, name: str, term_id: str = "") -> None:
        """A hand edit of one cluster's name, kept in the data, the table and the record."""
        from scelmo_desktop.core.workflows.naming import rename_group

        if self.window_.busy("renaming"):
            return
        project = self.project
        rename_group(project.adata, group, name, term_id=term_id, naming=project.naming)
        self.show_names(project.naming)
        self.window_.panels["Clustering"].view.set_data(project.adata, "X_umap", color_by=NAME_KEY)
        self.window_.results_changed()

    def take_runner_up(self, group: str, index: int = 0) -> None:
        """Name ``group`` by its ``index``-th runner-up (with its ontology id)."""
        runner = self.project.naming.groups[group].runners_up[index]
        self.rename(group, runner["name"], runner["term_id"])

    def _ask_rename(self) -> None:
        group = self._chosen_group()
        if group is None:
            return
        current = self.project.naming.groups[group].name
        name, ok = QInputDialog.getText(self, "Rename cluster", f"New name of cluster {group}:", text=current)
        if ok and name.strip():
            self.rename(group, name.strip())

    def _ask_runner_up(self) -> None:
        group = self._chosen_group()
        if group is None:
            return
        runners = self.project.naming.groups[group].runners_up
        if not runners:
            self.window_.show_message(f"Cluster {group} has no runner-up.")
            return
        words = [f"{r['name']} ({r['term_id']}; behind by {r['behind_by']:.3f})" for r in runners]
        choice, ok = QInputDialog.getItem(self, "Take a runner-up", f"Cluster {group}:", words, 0, False)
        if ok:
            self.take_runner_up(group, words.index(choice))

    def explain(self) -> None:
        """The chosen LLM explains each cluster's name from its evidence (chooses among the candidates when the
        setting says ``choose``); the answers and their checks join the cell-type table."""
        from scelmo_desktop.core.workflows.naming import explain_names

        project, session = self.project, self.window_.session
        if project.naming is None:
            self.window_.show_message("Name the clusters first (Find markers, with naming on).")
            return
        choice = project.model_choice()
        llm = session.explainer(choice)
        adata, naming, expression = project.adata, project.naming, project.expression()
        choose = project.settings.naming_llm == "choose"
        symbol_column = project.settings.symbol_column

        def work(progress, cancel):
            return explain_names(
                adata,
                naming,
                llm,
                expression,
                symbol_column=symbol_column,
                choose=choose,
                progress=progress,
                cancel=cancel,
            )

        self.window_.run_job("explain names", work, self._explained)

    def _explained(self, naming) -> None:
        self.window_.panels["Clustering"].view.set_data(self.project.adata, "X_umap", color_by=NAME_KEY)
        self.window_.results_changed()

    def run_markers(self) -> None:
        from scelmo_desktop.core.workflows.markers import markers_and_names

        project = self.project
        project.require_data()
        groupby, method = self.groupby.currentText(), project.settings.markers
        if method == "off":
            self.window_.show_message("Choose a marker test (wilcoxon or t-test) first.")
            return
        adata, settings = project.adata, project.pipeline_settings(project.settings.mode)

        def work(progress, cancel):
            expression = project.expression()
            return markers_and_names(adata, expression, settings=settings, groupby=groupby, progress=progress)

        self.window_.run_job("markers", work, self._found)

    def _found(self, found) -> None:
        self.project.markers, self.project.naming, self.project.naming_note = (
            found.markers,
            found.naming,
            found.notes.get("naming", ""),
        )
        self.show_markers(found.markers)
        self.window_.results_changed()

    def show_markers(self, markers) -> None:
        """Fill the group list and the table from ``markers`` (None: clear)."""
        self._shown = markers
        self.group.blockSignals(True)
        self.group.clear()
        if markers is not None:
            self.group.addItems([ALL_GROUPS, *[str(g) for g in markers.table["group"].cat.categories]])
            self.status.setText(
                f"{markers.method} test, each group of obs['{markers.groupby}'] against the rest; "
                f"{int(markers.table['passes_filter'].sum()):,} gene–group pairs pass the filter"
                + (f"; not tested (one cell): {', '.join(markers.skipped_groups)}" if markers.skipped_groups else "")
            )
        else:
            self.status.setText("No markers yet: run the pipeline (Data panel) or press Find markers.")
        self.group.blockSignals(False)
        self._show_group()

    def shown_frame(self):
        markers = self.project.markers
        if markers is None:
            return None
        table = markers.table
        if self.passing_only.currentIndex() == 0:
            table = table[table["passes_filter"]]
        if self.group.currentText() not in ("", ALL_GROUPS):
            table = table[table["group"].astype(str) == self.group.currentText()]
        return table.assign(group=table["group"].astype(str)).drop(columns=["passes_filter"])

    def _show_group(self) -> None:
        frame = self.shown_frame()
        if frame is not None:
            self.table.set_frame(frame)

    def _gene_clicked(self, index) -> None:
        row = self.table.proxy.mapToSource(index).row()
        gene = str(self.table.model_.frame.iloc[row]["gene"])
        self.window_.panels["Clustering"].view.show_gene(gene)
        self.window_.show_panel("Clustering")
