"""The barcode-rank plot of an unfiltered matrix, in the Data panel: total UMIs against rank (log-log), called
cells in blue, background in grey, the UMI threshold as a red line the user can drag. While it moves, the panel
says how many barcodes a threshold there would call; "Call cells at this threshold" opens the data again with it
(the ``umi_threshold`` setting, the same as ``scelmo run --umi-threshold``)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from scelmo_desktop.core.workflows.intake import barcode_rank_points, barcodes_at_least

CELL_COLOUR, BACKGROUND_COLOUR, LINE_COLOUR = "#1f77b4", "#9e9e9e", "#d62728"


class BarcodeRankView(QWidget):
    """Barcode-rank plots of the samples whose cells were called, one at a time; emits ``threshold_chosen``
    with the UMI threshold the user settled on."""

    threshold_chosen = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.calls: dict = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.sample = QComboBox()
        self.sample.currentTextChanged.connect(self._show_sample)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.apply_button = QPushButton("Call cells at this threshold")
        self.apply_button.setToolTip("Open the data again with the red line's UMI threshold as the cell call.")
        self.apply_button.clicked.connect(lambda: self.threshold_chosen.emit(self.threshold()))
        row.addWidget(QLabel("Sample"))
        row.addWidget(self.sample)
        row.addWidget(self.status, 1)
        row.addWidget(self.apply_button)
        layout.addLayout(row)
        self.plot = pg.PlotWidget(background="w", title="Barcode rank (drag the red line to move the cell call)")
        self.plot.setLogMode(x=True, y=True)
        self.plot.setLabel("bottom", "barcode rank")
        self.plot.setLabel("left", "total UMIs")
        self.plot.setMinimumHeight(220)
        self.plot.addLegend(offset=(-10, 10))
        self.line = pg.InfiniteLine(angle=0, movable=True, pen=pg.mkPen(LINE_COLOUR, width=2))
        self.line.sigPositionChanged.connect(self._line_moved)
        self.plot.addItem(self.line)
        layout.addWidget(self.plot)
        self.setVisible(False)

    def show_calls(self, calls: dict) -> None:
        """Show the cell calls of the opened samples (hidden when no sample had its cells called)."""
        self.calls = calls  # the project's own dict: the panel redraws only when the data changed
        self.sample.blockSignals(True)
        self.sample.clear()
        self.sample.addItems(list(self.calls))
        self.sample.blockSignals(False)
        self.sample.setEnabled(len(self.calls) > 1)
        self.setVisible(bool(self.calls))
        if self.calls:
            self._show_sample(self.sample.currentText())

    def threshold(self) -> float:
        """The UMI threshold at the red line (whole UMIs)."""
        return float(max(1, round(10 ** self.line.value())))

    def set_threshold(self, umis: float) -> None:
        """Move the red line to ``umis`` (what a drag does), updating the count."""
        self.line.setValue(float(np.log10(max(umis, 1.0))))

    def _show_sample(self, name: str) -> None:
        call = self.calls.get(name)
        if call is None:
            return
        ranks, totals, is_cell = barcode_rank_points(call)
        self.plot.clear()  # also removes the line and the legend's entries; both come back below
        self.plot.addItem(self.line)
        for mask, colour, label in ((~is_cell, BACKGROUND_COLOUR, "background"), (is_cell, CELL_COLOUR, "cells")):
            self.plot.plot(ranks[mask], totals[mask], pen=None, symbol="o", symbolSize=3, symbolPen=None,
                           symbolBrush=colour, name=label)  # fmt: skip
        self.line.blockSignals(True)
        self.set_threshold(call.umi_threshold)
        self.line.blockSignals(False)
        self._line_moved()

    def _line_moved(self) -> None:
        call = self.calls.get(self.sample.currentText())
        if call is None:
            return
        threshold = self.threshold()
        count = barcodes_at_least(call, threshold)
        self.status.setText(
            f"{call.n_cells:,} of {call.n_barcodes:,} barcodes called cells ({call.method}, at least "
            f"{call.umi_threshold:,.0f} UMIs). At the red line: {count:,} barcodes with at least {threshold:,.0f} UMIs."
        )
