"""Small reusable widgets: a pandas table view, a PNG figure view with export, the error dialog."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTableView,
    QVBoxLayout,
    QWidget,
)


class DataFrameModel(QAbstractTableModel):
    def __init__(self, frame: pd.DataFrame | None = None, parent=None):
        super().__init__(parent)
        self.frame = frame if frame is not None else pd.DataFrame()

    def set_frame(self, frame: pd.DataFrame) -> None:
        self.beginResetModel()
        self.frame = frame.reset_index(drop=True)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()):  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self.frame)

    def columnCount(self, parent=QModelIndex()):  # noqa: N802
        return 0 if parent.isValid() else len(self.frame.columns)

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        value = self.frame.iat[index.row(), index.column()]
        if role in (Qt.DisplayRole, Qt.ToolTipRole):
            if isinstance(value, (float, np.floating)):  # rounded for reading; exports keep every digit
                return "" if pd.isna(value) else f"{value:.4g}"
            return str(value)
        if role == Qt.UserRole:  # sorting by the real value, not its text
            return value
        return None

    def headerData(self, section, orientation, role=Qt.DisplayRole):  # noqa: N802
        if role != Qt.DisplayRole:
            return None
        return str(self.frame.columns[section]) if orientation == Qt.Horizontal else str(section + 1)


class FrameView(QTableView):
    """A sortable, filterable read-only view of a DataFrame."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model_ = DataFrameModel()
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model_)
        self.proxy.setSortRole(Qt.UserRole)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseInsensitive)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.setAlternatingRowColors(True)
        self.setSelectionBehavior(QTableView.SelectRows)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.Interactive)
        self.horizontalHeader().setStretchLastSection(True)
        self.verticalHeader().setVisible(False)

    def set_frame(self, frame: pd.DataFrame) -> None:
        self.model_.set_frame(frame)
        self.proxy.sort(-1)  # show new results in their own order until the user clicks a header
        self.horizontalHeader().setSortIndicator(-1, Qt.AscendingOrder)
        self.resizeColumnsToContents()
        for column in range(self.model_.columnCount()):
            self.setColumnWidth(column, min(self.columnWidth(column), 420))
        self.viewport().update()

    def selected_rows(self) -> pd.DataFrame:
        rows = sorted({self.proxy.mapToSource(i).row() for i in self.selectionModel().selectedRows()})
        return self.model_.frame.iloc[rows]

    def export_csv(self, parent: QWidget, suggested: str = "table.csv") -> None:
        path, _ = QFileDialog.getSaveFileName(parent, "Export table", suggested, "CSV (*.csv)")
        if path:
            from scelmo_desktop.core.workflows.environment import write_text_atomic

            write_text_atomic(Path(path), self.model_.frame.to_csv(index=False))


class FigureView(QWidget):
    """Shows a PNG written by core, scaled to the width available, with 'View full size…' and 'Export PNG…'."""

    shown = Signal(object)  # the path of a figure just shown

    def __init__(self, placeholder: str = "No figure yet.", parent=None):
        super().__init__(parent)
        self.path: Path | None = None
        self.label = QLabel(placeholder)
        self.label.setAlignment(Qt.AlignCenter)
        self.label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Ignored)
        self.label.setMinimumHeight(220)
        self.export_button = QPushButton("Export PNG…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self._export)
        self.full_size_button = QPushButton("View full size…")
        self.full_size_button.setEnabled(False)
        self.full_size_button.clicked.connect(self.show_full_size)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.full_size_button)
        row.addWidget(self.export_button)
        layout.addLayout(row)

    def show_png(self, path: Path) -> None:
        self.path = Path(path)
        self._pixmap = QPixmap(str(path))
        self.export_button.setEnabled(True)
        self.full_size_button.setEnabled(True)
        self._rescale()
        self.shown.emit(self.path)

    def show_full_size(self) -> QDialog:
        """The figure at its own resolution in a window of its own (scrolls when larger than the screen)."""
        dialog = QDialog(self)
        dialog.setWindowTitle(self.path.name)
        area = QScrollArea(dialog)
        label = QLabel()
        label.setPixmap(self._pixmap)
        area.setWidget(label)
        layout = QVBoxLayout(dialog)
        layout.addWidget(area)
        screen = self.screen().availableGeometry() if self.screen() else None
        width, height = self._pixmap.width() + 40, self._pixmap.height() + 40
        if screen is not None:
            width, height = min(width, int(screen.width() * 0.9)), min(height, int(screen.height() * 0.9))
        dialog.resize(width, height)
        dialog.show()
        return dialog

    def resizeEvent(self, event):  # noqa: N802
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self.path is not None and not self._pixmap.isNull():
            self.label.setPixmap(self._pixmap.scaled(self.label.size(), Qt.KeepAspectRatio, Qt.SmoothTransformation))

    def _export(self) -> None:
        target, _ = QFileDialog.getSaveFileName(self, "Export figure", self.path.name, "PNG (*.png)")
        if target:
            from scelmo_desktop.core.workflows.environment import write_bytes_atomic

            write_bytes_atomic(Path(target), self.path.read_bytes())


def show_error(parent: QWidget, what: str, details: str = "", *, title: str = "scELMo Desktop") -> None:
    """A readable dialog: what happened and what to do on top, the traceback under 'Show Details…'."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Warning)
    box.setWindowTitle(title)
    box.setText(what)
    box.setInformativeText(
        "Nothing already stored was lost. The log file is in the user data folder (Help ▸ Open log folder)."
    )
    if details:
        box.setDetailedText(details)
    box.open()  # non-blocking: tests and long jobs keep running
