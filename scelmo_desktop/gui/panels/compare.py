"""Compare: differential expression between two groups of cells (two clusters, two lasso groups, or two
conditions within one cell type), as an interactive volcano plot and a searchable table, both exportable; a
gene clicked colours the UMAP by it."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSplitter

from scelmo_desktop.core.keys import CLUSTER_KEY
from scelmo_desktop.gui.panels.base import Panel, combo_value, fill_obs_combo
from scelmo_desktop.gui.widgets import FrameView

SIDE_COLOURS = {"up": (215, 48, 31), "down": (43, 140, 190), "": (189, 189, 189)}


class ComparePanel(Panel):
    title = "Compare"
    explanation = (
        "Differential expression between two groups of cells: two clusters, two groups drawn with the lasso "
        "(obs['scelmo_groups']), or two conditions within one cell type. The markers' test (Wilcoxon by default) "
        "runs on the two groups' cells only. Red: up in the first group, blue: down (adjusted p < 0.05, 2-fold). "
        "Hover a point for its gene; click it to colour the UMAP by it."
    )

    def __init__(self, window):
        super().__init__(window)
        form = self.form("Groups")
        self.groupby = QComboBox()
        self.groupby.currentTextChanged.connect(lambda _: self._fill_values(self.groupby, (self.first, self.second)))
        self.first, self.second = QComboBox(), QComboBox()
        form.addRow("Groups (obs column)", self.groupby)
        form.addRow("Group", self.first)
        form.addRow("against", self.second)
        self.within = QComboBox()
        self.within_value = QComboBox()
        self.within.currentTextChanged.connect(lambda _: self._fill_values(self.within, (self.within_value,)))
        within_row = QHBoxLayout()
        within_row.addWidget(self.within, 1)
        within_row.addWidget(QLabel("="))
        within_row.addWidget(self.within_value, 1)
        form.addRow("Only cells where", within_row)
        row = QHBoxLayout()
        self.run_button = QPushButton("Compare")
        self.run_button.clicked.connect(self.run_compare)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(lambda: self.table.export_csv(self, "comparison.csv"))
        self.export_plot_button = QPushButton("Export plot…")
        self.export_plot_button.clicked.connect(self._export_plot)
        for widget in (self.run_button, self.export_button, self.export_plot_button):
            row.addWidget(widget)
        row.addStretch(1)
        form.addRow(row)
        self.status = QLabel("")
        self.layout_.addWidget(self.status)
        self.search = QLineEdit()
        self.search.setPlaceholderText("search genes…")
        self.search.textChanged.connect(lambda text: self.table.proxy.setFilterFixedString(text))
        splitter = QSplitter(Qt.Horizontal)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("bottom", "log2 fold change")
        self.plot.setLabel("left", "-log10 adjusted p")
        self.scatter = pg.ScatterPlotItem(size=6, pen=None, hoverable=True)
        self.scatter.sigClicked.connect(self._point_clicked)
        self.plot.addItem(self.scatter)
        self.table = FrameView()
        self.table.doubleClicked.connect(self._row_clicked)
        side = QSplitter(Qt.Vertical)
        side.addWidget(self.search)
        side.addWidget(self.table)
        splitter.addWidget(self.plot)
        splitter.addWidget(side)
        splitter.setSizes([520, 480])
        self.layout_.addWidget(splitter, 1)
        self.comparison = None
        self.points = None

    def refresh(self) -> None:
        adata = self.project.adata
        fill_obs_combo(self.groupby, adata, prefer=self.groupby.currentText() or CLUSTER_KEY)  # the user's choice stays
        fill_obs_combo(self.within, adata, allow_none=True, prefer=self.within.currentText())
        self._fill_values(self.groupby, (self.first, self.second))
        self._fill_values(self.within, (self.within_value,))

    def _fill_values(self, column_combo: QComboBox, targets) -> None:
        adata, column = self.project.adata, combo_value(column_combo)
        values = []
        if adata is not None and column in adata.obs and adata.obs[column].nunique() <= 500:
            counts = adata.obs[column].astype(str).value_counts()
            values = sorted(counts.index, key=lambda v: (0, int(v), "") if v.isdigit() else (1, 0, v))
        for index, combo in enumerate(targets):
            current = combo.currentText()
            combo.clear()
            combo.addItems(values)
            if current in values:
                combo.setCurrentText(current)
            elif len(values) > index:
                combo.setCurrentIndex(index)

    def run_compare(self) -> None:
        from scelmo_desktop.core.workflows.comparison import compare_in_data

        project = self.project
        project.require_data()
        within_column = combo_value(self.within)
        within = (within_column, self.within_value.currentText()) if within_column else None
        groupby, first, second = self.groupby.currentText(), self.first.currentText(), self.second.currentText()
        settings = project.pipeline_settings(project.settings.mode)
        adata = project.adata

        def work(progress, cancel):
            progress("compare", 0, 1, f"{first} against {second}")
            return compare_in_data(
                adata, groupby=groupby, group=first, reference=second, within=within, settings=settings
            )

        self.window_.run_job("compare", work, self.show_comparison)

    def show_comparison(self, markers) -> None:
        from scelmo_desktop.core.workflows.figures import volcano_points, volcano_x_range

        self.comparison = markers
        table = markers.table.drop(columns=["passes_filter"])
        self.table.set_frame(table)
        points = volcano_points(markers.table)
        self.points = points
        brushes = [pg.mkBrush(*SIDE_COLOURS[s]) for s in points["side"]]
        self.scatter.setData(
            x=points["log2_fold_change"].to_numpy(),
            y=points["neg_log10_p"].to_numpy(),
            brush=brushes,
            data=points["gene"].to_numpy(),
            tip=lambda x, y, data: f"{data}\nlog2 FC {x:.2f}, -log10 p {y:.1f}",
        )
        self.plot.setXRange(*volcano_x_range(points), padding=0)  # one-sided genes beyond it (pan to see them)
        up, down = int((points["side"] == "up").sum()), int((points["side"] == "down").sum())
        from scelmo_desktop.core.workflows.comparison import CELL_LEVEL_NOTE

        self.status.setText(
            f"{markers.groupby} ({markers.method}): {up} genes up, {down} down. Note: {CELL_LEVEL_NOTE}."
        )
        self.status.setWordWrap(True)
        self.window_.results_changed()

    def _colour_umap(self, gene: str) -> None:
        self.window_.panels["Clustering"].view.show_gene(gene)

    def _point_clicked(self, item, points, event=None) -> None:
        if len(points):
            self._colour_umap(str(points[0].data()))

    def _row_clicked(self, index) -> None:
        row = self.table.proxy.mapToSource(index).row()
        self._colour_umap(str(self.table.model_.frame.iloc[row]["gene"]))
        self.window_.show_panel("Clustering")

    def export_plot(self, path: str) -> None:
        """The comparison's volcano as a publication figure (matplotlib: PNG, SVG or PDF, genes labelled)."""
        from scelmo_desktop.core.workflows.figures import save_figure, volcano_figure

        if self.comparison is None:
            self.window_.show_message("Compare two groups first.")
            return
        save_figure(volcano_figure(self.comparison.table, title=self.comparison.groupby), path)

    def _export_plot(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export volcano plot", "volcano.png", "PNG (*.png);;SVG (*.svg);;PDF (*.pdf)"
        )
        if path:
            self.export_plot(path)
