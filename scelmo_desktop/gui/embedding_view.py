"""The UMAP/embedding view: colour by any obs column or gene, legend, hover tooltip, box and lasso selection that
create a named cell group (a new label in ``obs['scelmo_groups']``), zoom and pan (pyqtgraph).

Above ``MAX_DRAWN`` cells a fixed random subset is drawn (stated under the plot) so the view stays
interactive; selections always test every cell, not just the drawn ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyqtgraph as pg
from matplotlib.path import Path as MplPath
from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from scelmo_desktop.core.keys import CLUSTER_KEY, LABEL_KEY

MAX_DRAWN = 150_000
GROUP_KEY = "scelmo_groups"
PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#dbdb8d",
    "#9edae5",
    "#393b79",
]


N_SHADES = 64  # continuous values are drawn in 64 viridis shades: one shared brush per shade


def category_colors(values) -> tuple[np.ndarray, list, dict[str, str]]:
    """Per-cell brush index, the brushes, and the legend for a categorical column (categories in order).

    One brush object per category, shared by all its points: a QBrush per cell would dominate loading a large
    view (and stress the Qt bindings); benchmarks/gui_scatter.py times loading at 10k-300k cells."""
    series = pd.Series(values).astype("category")
    categories = [str(c) for c in series.cat.categories]
    legend = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(categories)}
    codes = series.cat.codes.to_numpy().astype(int)
    brushes = [pg.mkBrush(legend[c]) for c in categories] + [pg.mkBrush("#cccccc")]  # last: missing values
    return np.where(codes >= 0, codes, len(categories)), brushes, legend


def continuous_colors(values) -> tuple[np.ndarray, list]:
    values = np.asarray(values, dtype=float)
    low, high = np.nanpercentile(values, [1, 99]) if np.isfinite(values).any() else (0.0, 1.0)
    scaled = np.clip((np.nan_to_num(values, nan=low) - low) / max(high - low, 1e-12), 0, 1)
    shades = pg.colormap.get("viridis").map(np.linspace(0, 1, N_SHADES), mode="byte")
    brushes = [pg.mkBrush(QColor(*c)) for c in shades]
    return np.minimum((scaled * N_SHADES).astype(int), N_SHADES - 1), brushes


class EmbeddingView(QWidget):
    group_created = Signal(str, int)  # group name, cells

    def __init__(self, parent=None):
        super().__init__(parent)
        self.adata = None
        self.basis = "X_umap"
        self.coords = np.zeros((0, 2))
        self.drawn = np.zeros(0, dtype=int)
        self.color_by = None
        self.colour_combo = QComboBox()
        self.colour_combo.setMinimumWidth(180)
        self.colour_combo.currentTextChanged.connect(self._recolour)
        self.gene_edit = QLineEdit()
        self.gene_edit.setPlaceholderText("gene symbol…")
        self.gene_edit.returnPressed.connect(lambda: self._recolour(f"gene: {self.gene_edit.text().strip()}"))
        self.box_button = QPushButton("Box select")
        self.lasso_button = QPushButton("Lasso select")
        self.group_button = QPushButton("Make group…")
        self.clear_button = QPushButton("Clear")
        self.box_button.clicked.connect(self._add_box)
        self.lasso_button.clicked.connect(self._add_lasso)
        self.group_button.clicked.connect(self._ask_group)
        self.clear_button.clicked.connect(self._clear_roi)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setAspectLocked(False)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.scatter = pg.ScatterPlotItem(size=5, pen=None, hoverable=True, tip=None)
        self.scatter.sigHovered.connect(self._hover)
        self.plot.addItem(self.scatter)
        self.legend = QListWidget()
        self.legend.setMaximumWidth(260)
        self.note = QLabel("")
        self.note.setStyleSheet("color:#666")
        self.roi = None
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Colour by"))
        controls.addWidget(self.colour_combo)
        controls.addWidget(self.gene_edit)
        controls.addStretch(1)
        for button in (self.box_button, self.lasso_button, self.group_button, self.clear_button):
            controls.addWidget(button)
        body = QHBoxLayout()
        body.addWidget(self.plot, 1)
        body.addWidget(self.legend)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addLayout(body, 1)
        layout.addWidget(self.note)

    # ---- data ---------------------------------------------------------------------------------------------
    def set_data(self, adata, basis: str = "X_umap", color_by: str | None = None) -> None:
        if basis not in adata.obsm:
            raise ValueError(f"obsm['{basis}'] is missing")
        self.adata, self.basis = adata, basis
        self.coords = np.asarray(adata.obsm[basis])[:, :2].astype(float)
        n = len(self.coords)
        self.drawn = (
            np.arange(n) if n <= MAX_DRAWN else np.sort(np.random.default_rng(0).choice(n, MAX_DRAWN, replace=False))
        )
        self.note.setText(
            f"{n:,} cells"
            + (f" — drawing a fixed random {MAX_DRAWN:,}; selections use all cells" if n > MAX_DRAWN else "")
            + " · scroll to zoom, drag to pan"
        )
        columns = [str(c) for c in adata.obs.columns]
        self.colour_combo.blockSignals(True)
        self.colour_combo.clear()
        self.colour_combo.addItems(columns)
        self.colour_combo.blockSignals(False)
        choice = color_by if color_by in columns else (columns[0] if columns else None)
        if choice:
            self.colour_combo.setCurrentText(choice)
        self._recolour(choice)
        self.plot.autoRange()

    def n_points(self) -> int:
        return len(self.scatter.data)

    def _values(self, key: str):
        if key.startswith("gene: "):
            gene = key[len("gene: ") :]
            source = self.adata.raw if self.adata.raw is not None and gene in self.adata.raw.var_names else self.adata
            if gene not in source.var_names:
                self.note.setText(f"Gene {gene} is not in this data.")
                return None
            column = source[:, gene].X
            return np.asarray(column.toarray() if hasattr(column, "toarray") else column).ravel()
        return self.adata.obs[key]

    def show_gene(self, gene: str) -> None:
        """Colour the cells by one gene's expression, as typing it in the gene box does."""
        self.gene_edit.setText(gene)
        self._recolour(f"gene: {gene.strip()}")

    def _recolour(self, key: str | None) -> None:
        if self.adata is None or not key:
            return
        values = self._values(key)
        if values is None:
            return
        self.color_by = key
        self.legend.clear()
        if (
            isinstance(values, pd.Series)
            and not pd.api.types.is_numeric_dtype(values)
            or (isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype))
        ):
            index, palette, legend = category_colors(values)
            counts = pd.Series(values).astype(str).value_counts()
            for name, colour in legend.items():
                item = QListWidgetItem(f"■  {name}  ({counts.get(name, 0)})")
                item.setForeground(QColor(colour))
                self.legend.addItem(item)
        else:
            numeric = np.asarray(values, dtype=float)
            index, palette = continuous_colors(numeric)
            self.legend.addItem(f"{key}: {np.nanmin(numeric):.3g} (dark) … {np.nanmax(numeric):.3g} (yellow)")
        self.brush_index = index[self.drawn]
        brushes = [palette[i] for i in self.brush_index]  # references to a few shared brushes
        self.scatter.setData(x=self.coords[self.drawn, 0], y=self.coords[self.drawn, 1], brush=brushes, data=self.drawn)

    def colours_in_use(self) -> int:
        return int(len(np.unique(self.brush_index))) if self.n_points() else 0

    # ---- hover and selection ------------------------------------------------------------------------------
    def tooltip_for(self, cell: int) -> str:
        obs = self.adata.obs
        name = str(self.adata.obs_names[cell])
        keys = [k for k in (LABEL_KEY, f"{LABEL_KEY}_confidence", CLUSTER_KEY, self.color_by) if k and k in obs.columns]
        parts = [name] + [
            f"{k}: {obs[k].iloc[cell]:.3f}" if isinstance(obs[k].iloc[cell], float) else f"{k}: {obs[k].iloc[cell]}"
            for k in dict.fromkeys(keys)
        ]
        return "\n".join(parts)

    def _hover(self, item, points, event=None) -> None:
        self.plot.setToolTip(self.tooltip_for(int(points[0].data())) if len(points) else "")

    def _clear_roi(self) -> None:
        if self.roi is not None:
            self.plot.removeItem(self.roi)
            self.roi = None

    def _span(self):
        (x0, x1), (y0, y1) = self.plot.viewRange()
        return x0, y0, x1 - x0, y1 - y0

    def _add_box(self) -> None:
        self._clear_roi()
        x, y, w, h = self._span()
        self.roi = pg.RectROI([x + w * 0.3, y + h * 0.3], [w * 0.4, h * 0.4], pen=pg.mkPen("r", width=2))
        self.plot.addItem(self.roi)

    def _add_lasso(self) -> None:
        self._clear_roi()
        x, y, w, h = self._span()
        corners = [[x + w * a, y + h * b] for a, b in ((0.3, 0.3), (0.7, 0.3), (0.75, 0.6), (0.5, 0.75), (0.25, 0.6))]
        self.roi = pg.PolyLineROI(corners, closed=True, pen=pg.mkPen("r", width=2))
        self.plot.addItem(self.roi)

    def selected_cells(self) -> np.ndarray:
        """Indices of all cells inside the current box or lasso."""
        if self.roi is None:
            return np.zeros(0, dtype=int)
        if isinstance(self.roi, pg.PolyLineROI):
            vertices = [self.roi.mapToParent(h["item"].pos()) for h in self.roi.handles]
            path = MplPath([(p.x(), p.y()) for p in vertices])
            return np.flatnonzero(path.contains_points(self.coords))
        (x, y), (w, h) = self.roi.pos(), self.roi.size()
        inside = (
            (self.coords[:, 0] >= x)
            & (self.coords[:, 0] <= x + w)
            & (self.coords[:, 1] >= y)
            & (self.coords[:, 1] <= y + h)
        )
        return np.flatnonzero(inside)

    def make_group(self, name: str) -> int:
        """Label the selected cells ``name`` in ``obs['scelmo_groups']`` (others keep theirs, default 'ungrouped')."""
        cells = self.selected_cells()
        if not name or not len(cells):
            return 0
        obs = self.adata.obs
        groups = (
            obs[GROUP_KEY].astype(str).to_numpy()
            if GROUP_KEY in obs
            else np.full(self.adata.n_obs, "ungrouped", dtype=object)
        )
        groups = groups.astype(object)
        groups[cells] = name
        obs[GROUP_KEY] = pd.Categorical(groups)
        if self.colour_combo.findText(GROUP_KEY) < 0:
            self.colour_combo.addItem(GROUP_KEY)
        self.colour_combo.setCurrentText(GROUP_KEY)
        self._recolour(GROUP_KEY)
        self.group_created.emit(name, len(cells))
        return len(cells)

    def _ask_group(self) -> None:
        if self.roi is None:
            self.note.setText("Draw a box or lasso first (buttons above), then make a group of the cells inside.")
            return
        name, ok = QInputDialog.getText(self, "New cell group", "Name for the selected cells:")
        if ok and name.strip():
            count = self.make_group(name.strip())
            self.note.setText(f"Group '{name.strip()}': {count} cells (obs['{GROUP_KEY}'], usable as a label).")

    def export(self, path: str) -> None:
        exporter = (
            pg.exporters.ImageExporter(self.plot.plotItem)
            if not path.endswith(".svg")
            else pg.exporters.SVGExporter(self.plot.plotItem)
        )
        exporter.export(path)
