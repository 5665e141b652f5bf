"""Tell cells from empty droplets in an unfiltered (raw) matrix.

Method: the barcode-rank rule of Cell Ranger 2 ("ordmag"). Barcodes are ranked by their total UMI count; with
``N`` the number of cells expected, ``m`` is the 99th percentile of the totals of the top ``N`` barcodes and a
barcode is a cell when its total is at least ``m / 10``. A droplet holding a cell carries an order of magnitude
more mRNA than one holding only ambient RNA, so the rule does not need ``N`` to be exact: a wrong guess within a
few-fold moves ``m`` only a little. When ``N`` is not given it is estimated the way Cell Ranger 3 and later do: the
``N`` whose threshold calls about ``N`` barcodes (least ``(called - N)^2 / N`` over a log-spaced grid).

Why this and not an EmptyDrops-style ambient test: the rule has one documented parameter, is deterministic, runs
in one sort, and is what Cell Ranger's own filtered matrices were made with; its recall and precision on PBMC 3k
with simulated empty droplets are measured by ``benchmarks/cell_calling.py``. Its known weakness is the low end:
a real cell with fewer than a tenth of the UMIs of the top cells is missed (EmptyDrops would rescue some).

Whatever the rule, a barcode below :data:`EMPTY_UMIS` UMIs is never called a cell, and the user may replace the
rule by a UMI threshold of their own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

EMPTY_UMIS = 100  # under this many UMIs a barcode is an empty droplet for looks_unfiltered and call_cells
ORDMAG_QUANTILE = 99.0  # percentile of the top-N totals that stands for a typical large cell
ORDMAG_RATIO = 10.0  # a cell carries at least this fraction (1/ratio) of that typical total
MAX_EXPECTED_CELLS = 262_144  # the top of the grid searched when the number of cells is estimated (2**18)
UNFILTERED_FRACTION = 0.5  # a matrix where at least this share of barcodes are under EMPTY_UMIS is unfiltered


@dataclass
class CellCall:
    """The outcome of cell calling: which barcodes are cells, the UMI threshold used and how it was chosen."""

    mask: np.ndarray  # one bool per barcode, True for a cell
    umi_threshold: float  # the least total UMI count of a called cell
    method: str  # "ordmag" (expected cells given), "ordmag, expected cells estimated" or "user threshold"
    expected_cells: int | None  # the N of the ordmag rule (None for a user threshold)
    totals: np.ndarray  # total UMIs per barcode, for the barcode-rank plot

    @property
    def n_cells(self) -> int:
        """How many barcodes were called cells."""
        return int(self.mask.sum())

    @property
    def n_barcodes(self) -> int:
        """How many barcodes the matrix had."""
        return int(self.mask.size)

    def record(self) -> dict:
        """The call as an h5ad-safe record."""
        return {
            "method": self.method,
            "umi_threshold": float(self.umi_threshold),
            "expected_cells": int(self.expected_cells) if self.expected_cells is not None else "none",
            "barcodes": self.n_barcodes,
            "cells": self.n_cells,
            "min_umis_of_a_cell": EMPTY_UMIS if self.method != "user threshold" else float(self.umi_threshold),
        }


def barcode_totals(counts) -> np.ndarray:
    """Total UMI count per barcode (row sums) of a barcodes x genes matrix, AnnData, or already a 1-D array."""
    if hasattr(counts, "X"):
        counts = counts.X
    if not sp.issparse(counts) and np.ndim(counts) == 1:
        return np.asarray(counts, dtype=np.float64)
    return np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()


def is_raw_counts(counts) -> bool:
    """Whether a matrix holds raw counts: non-negative integers (checked on its first stored values)."""
    values = counts.data if sp.issparse(counts) else np.asarray(counts)
    sample = np.asarray(values).ravel()[:100_000]
    return bool(np.all(sample >= 0)) and bool(np.all(np.mod(sample, 1) == 0))


def looks_unfiltered(adata) -> bool:
    """Whether a matrix of raw counts holds mostly empty droplets: at least :data:`UNFILTERED_FRACTION` of its
    barcodes have fewer than :data:`EMPTY_UMIS` UMIs. Normalised or log values (non-integers) never look
    unfiltered. ``adata``: AnnData or a barcodes x genes matrix."""
    counts = adata.X if hasattr(adata, "X") else adata
    if counts is None or counts.shape[0] == 0 or not is_raw_counts(counts):
        return False
    totals = barcode_totals(counts)
    return float(np.mean(totals < EMPTY_UMIS)) >= UNFILTERED_FRACTION


def _top_percentile(ranked: np.ndarray, n):
    """The ORDMAG_QUANTILE percentile of ``ranked[:n]`` (``ranked`` sorted descending; ``n`` scalar or array), as
    ``np.percentile`` computes it (linear), without sorting again."""
    n = np.asarray(n, dtype=np.int64)
    position = ORDMAG_QUANTILE / 100 * (n - 1)  # in ascending order of the top n
    low, high = np.floor(position).astype(np.int64), np.ceil(position).astype(np.int64)
    at_low, at_high = ranked[n - 1 - low], ranked[n - 1 - high]
    return at_low + (at_high - at_low) * (position - low)


def ordmag_threshold(totals: np.ndarray, expected_cells: int) -> float:
    """The ordmag UMI threshold: the 99th percentile of the totals of the top ``expected_cells`` barcodes / 10."""
    ranked = np.sort(np.asarray(totals, dtype=np.float64))[::-1]
    if ranked.size == 0:
        return 0.0
    return float(_top_percentile(ranked, max(1, min(int(expected_cells), ranked.size))) / ORDMAG_RATIO)


def estimate_expected_cells(totals: np.ndarray, max_cells: int = MAX_EXPECTED_CELLS) -> int:
    """The number of cells the ordmag rule agrees with itself on (Cell Ranger 3's estimate): over ``N`` on a
    log-spaced grid, the one minimising ``(barcodes called with N's threshold - N)^2 / N``."""
    ranked = np.sort(np.asarray(totals, dtype=np.float64)[np.asarray(totals) > 0])[::-1]
    if ranked.size == 0:
        return 0
    top = min(max_cells, ranked.size)
    if top < 2:
        return 1
    grid = np.unique(np.round(2 ** np.linspace(1, np.log2(top), 2000)).astype(np.int64))
    thresholds = _top_percentile(ranked, grid) / ORDMAG_RATIO
    ascending = ranked[::-1]
    called = ranked.size - np.searchsorted(ascending, thresholds, side="left")
    loss = (called - grid) ** 2 / grid
    return int(grid[int(np.argmin(loss))])


def call_cells(counts, expected_cells: int | None = None, *, umi_threshold: float | None = None) -> CellCall:
    """Call cells in an unfiltered matrix (barcodes x genes counts, AnnData, or per-barcode totals).

    With ``umi_threshold`` the barcodes with at least that many UMIs are the cells. Otherwise the ordmag rule
    (module docstring) with ``expected_cells`` (estimated when None); barcodes under :data:`EMPTY_UMIS` are never
    cells. A call may find no cells; the caller decides what that means."""
    totals = barcode_totals(counts)
    if umi_threshold is not None:
        return CellCall(totals >= float(umi_threshold), float(umi_threshold), "user threshold", None, totals)
    method = "ordmag"
    if expected_cells is None:
        expected_cells, method = estimate_expected_cells(totals), "ordmag, expected cells estimated"
    threshold = max(ordmag_threshold(totals, expected_cells), float(EMPTY_UMIS)) if totals.size else float(EMPTY_UMIS)
    return CellCall(totals >= threshold, threshold, method, int(expected_cells), totals)


def barcode_rank_points(call: CellCall, max_points: int = 4000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The barcode-rank curve as (rank, total UMIs, is a cell), barcodes with no UMIs left out. Above
    ``max_points`` barcodes, points are taken on a log grid of ranks, which is what a log-log plot shows: the
    curve stays exact where it bends and the drawing stays light at a million barcodes."""
    order = np.argsort(-call.totals, kind="stable")
    ranked, is_cell = call.totals[order], call.mask[order]
    keep = ranked > 0
    ranks = np.arange(1, ranked.size + 1)[keep]
    ranked, is_cell = ranked[keep], is_cell[keep]
    if ranks.size > max_points:
        picks = np.unique(np.round(np.geomspace(1, ranks.size, max_points)).astype(np.int64) - 1)
        ranks, ranked, is_cell = ranks[picks], ranked[picks], is_cell[picks]
    return ranks, ranked, is_cell


def barcodes_at_least(call: CellCall, umis: float) -> int:
    """How many barcodes carry at least ``umis`` UMIs: the cells a user threshold there would call."""
    return int(np.count_nonzero(call.totals >= float(umis)))


def write_barcode_rank_plot(call: CellCall, path: str | os.PathLike, *, title: str = "") -> Path:
    """Write the barcode-rank plot (total UMIs against rank, log-log; cells and background coloured, the
    threshold drawn) as a PNG, atomically. Returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from scelmo_desktop.core._infra.atomic import write_atomic

    ranks, ranked, is_cell = barcode_rank_points(call)
    figure = Figure(figsize=(5, 4), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.scatter(ranks[~is_cell], ranked[~is_cell], s=3, color="#9e9e9e", label="background", rasterized=True)
    axes.scatter(ranks[is_cell], ranked[is_cell], s=3, color="#1f77b4", label=f"cells ({call.n_cells:,})")
    axes.axhline(call.umi_threshold, color="#d62728", linewidth=1, linestyle="--", label="UMI threshold")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("barcode rank")
    axes.set_ylabel("total UMIs")
    axes.set_title(title or f"Barcode rank ({call.method})", fontsize=10)
    axes.legend(fontsize=8, loc="lower left")
    figure.tight_layout()
    return write_atomic(path, lambda tmp: figure.savefig(tmp, format="png"))
