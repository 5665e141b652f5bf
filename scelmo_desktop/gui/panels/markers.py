"""Markers: each cluster's (or any grouping's) marker genes against the rest, as a searchable, sortable table of
every gene, exportable; a gene double-clicked colours the UMAP by it."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QPushButton

from scelmo_desktop.core.keys import CLUSTER_KEY
from scelmo_desktop.gui.panels.base import Panel, fill_obs_combo
from scelmo_desktop.gui.widgets import FrameView

ALL_GROUPS = "(all groups)"


class MarkersPanel(Panel):
    title = "Markers"
    explanation = (
        "Marker genes of each cluster against the rest: scanpy's rank_genes_groups (Wilcoxon by default), with "
        "the share of cells expressing each gene in and out of the group, the fold change and the adjusted p. "
        "Genes passing filter_rank_genes_groups' rule (in ≥25% of the group, ≤50% outside, 2-fold) are marked. "
        "Every run finds them for its clusters; double-click a gene to colour the UMAP by it."
    )

    def __init__(self, window):
        super().__init__(window)
        form = self.form("Settings")
        self.method = self.add_settings(["markers"], form).editor("markers").editor
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
        self.table = FrameView()
        self.table.doubleClicked.connect(self._gene_clicked)
        self.layout_.addWidget(self.table, 1)

    def refresh(self) -> None:
        fill_obs_combo(self.groupby, self.project.adata, prefer=CLUSTER_KEY)  # the one shown before wins
        self.show_markers(self.project.markers)

    def run_markers(self) -> None:
        from scelmo_desktop.core.workflows.markers import find_markers

        project = self.project
        project.require_data()
        groupby, method = self.groupby.currentText(), project.settings.markers
        if method == "off":
            self.window_.show_message("Choose a marker test (wilcoxon or t-test) first.")
            return
        expression = project.expression()
        adata = project.adata

        def work(progress, cancel):
            return find_markers(adata, expression, groupby=groupby, method=method, progress=progress)

        self.window_.run_job("markers", work, self._found)

    def _found(self, markers) -> None:
        self.project.markers = markers
        self.show_markers(markers)
        self.window_.results_changed()

    def show_markers(self, markers) -> None:
        """Fill the group list and the table from ``markers`` (None: clear)."""
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
        clustering = self.window_.panels["Clustering"]
        clustering.view.gene_edit.setText(gene)
        clustering.view.gene_edit.returnPressed.emit()
        self.window_.show_panel("Clustering")
