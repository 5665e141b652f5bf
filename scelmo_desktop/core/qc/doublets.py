"""Doublets with scanpy's Scrublet, sample by sample (as ``sc.pp.scrublet(batch_key=...)`` does).

Scanpy's automatic doublet threshold needs scikit-image's ``threshold_minimum``, which scELMo does not ship;
:func:`threshold_minimum` is the same algorithm (smooth the histogram of the simulated doublets' scores until
it has two peaks, take the lowest point between them), so the calls are scanpy's. A sample with fewer than
:data:`MIN_DOUBLET_CELLS` cells is not scored: Scrublet's threshold on a few dozen cells calls a large share of
them doublets (``benchmarks/qc_rules.py`` scores random subsamples of each size).

A sample of more than :data:`MAX_SCORED_CELLS` cells is scored in random parts of at most that many, each with
its own simulated doublets and threshold: Scrublet centres and scales a dense matrix of the cells and twice as many
simulated doublets, whose memory grows with the cells scored at once (about 20 GB for one file of 100,000 cells,
``docs/benchmarks.md``, "Memory before trouble"), while the doublet rate a part sees is its sample's. Measured on
Kang 2018 with 8% planted heterotypic doublets (``docs/benchmarks.md``): splitting cost little of the scores'
ranking of doublets over singlets.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, check_cancel, no_progress
from scelmo_desktop.core.settings import default

MIN_DOUBLET_CELLS = 200
MAX_SCORED_CELLS = 20_000  # a larger sample is scored in random parts of at most this many cells (docstring)
HISTOGRAM_BINS = 256  # skimage's default for threshold_minimum
MAX_SMOOTHING = 10_000


@dataclass
class SampleDoublets:
    """One sample's Scrublet run: the cells scored, the doublets called, the score threshold (the median of its
    parts' when it was scored in parts, :func:`scored_parts`), or why not."""

    sample: str
    cells: int
    doublets: int = 0
    threshold: float | None = None
    note: str = ""

    def as_dict(self) -> dict:
        """The record's entry for the sample."""
        return {"cells": self.cells, "doublets": self.doublets, "threshold": self.threshold, "note": self.note}


def _maxima(histogram: np.ndarray) -> list[int]:
    """Positions of the local maxima, plateaus counted once (skimage's rule)."""
    found, rising = [], True
    for i in range(len(histogram) - 1):
        if rising and histogram[i + 1] < histogram[i]:
            rising = False
            found.append(i)
        elif not rising and histogram[i + 1] > histogram[i]:
            rising = True
    return found


def threshold_minimum(values: np.ndarray, nbins: int = HISTOGRAM_BINS) -> float | None:
    """The minimum between the two modes of the histogram of ``values`` (scikit-image's ``threshold_minimum``,
    as Scrublet's automatic threshold uses it); None when the histogram never has exactly two peaks."""
    from scipy import ndimage

    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 2 or values.min() == values.max():
        return None
    counts, edges = np.histogram(values, bins=nbins, range=(values.min(), values.max()))
    centres = (edges[:-1] + edges[1:]) / 2
    smooth = counts.astype(np.float32)
    for _ in range(MAX_SMOOTHING):
        smooth = ndimage.uniform_filter1d(smooth, 3)
        peaks = _maxima(smooth)
        if len(peaks) < 3:
            break
    if len(peaks) != 2:
        return None
    return float(centres[peaks[0] + int(np.argmin(smooth[peaks[0] : peaks[1] + 1]))])


def _scrublet(matrix, seed: int) -> tuple[np.ndarray, float | None]:
    """Scanpy's Scrublet on one sample's counts: each cell's doublet score (NaN for a cell Scrublet drops, one
    with fewer than 3 genes) and the automatic threshold (None when the scores are not bimodal)."""
    import anndata as ad
    import scanpy as sc

    sample = ad.AnnData(X=matrix)
    sample.obs_names = [str(i) for i in range(sample.n_obs)]
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        # an infinite threshold calls nothing; the threshold is found below as scanpy would with scikit-image
        sc.pp.scrublet(sample, threshold=np.inf, random_state=seed, verbose=False)
    scores = sample.obs["doublet_score"].reindex([str(i) for i in range(matrix.shape[0])]).to_numpy(np.float64)
    return scores, threshold_minimum(sample.uns["scrublet"]["doublet_scores_sim"])


def largest_part(n_cells: int) -> int:
    """The most cells Scrublet scores at once in a sample of ``n_cells`` (:func:`scored_parts`)."""
    return -(-int(n_cells) // max(-(-int(n_cells) // MAX_SCORED_CELLS), 1))


def scored_parts(rows: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """A sample's cells (``rows``) as Scrublet scores them: all at once up to :data:`MAX_SCORED_CELLS`, else in
    random parts of at most that many (seeded, each in the sample's order)."""
    n_parts = -(-len(rows) // MAX_SCORED_CELLS)
    if n_parts <= 1:
        return [rows]
    shuffled = np.random.default_rng(seed).permutation(len(rows))
    return [rows[np.sort(part)] for part in np.array_split(shuffled, n_parts)]


def score_doublets(
    matrix,
    samples: pd.Series,
    *,
    order: list[str],
    seed: int = default("seed"),
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> tuple[np.ndarray, np.ndarray, list[SampleDoublets]]:
    """Scrublet on the raw counts ``matrix`` (cells x genes), one sample of ``samples`` (a label per cell) at a
    time in ``order``. Returns each cell's doublet score (NaN where not scored), its call (False where not
    scored) and one :class:`SampleDoublets` per sample. A sample that cannot be scored is noted, never fatal."""
    import scipy.sparse as sp

    labels = samples.to_numpy()
    scores = np.full(len(labels), np.nan)
    called = np.zeros(len(labels), dtype=bool)
    results = []
    matrix = sp.csr_matrix(matrix) if not sp.issparse(matrix) else matrix.tocsr()
    # progress in cells, not samples: samples differ in size, and Scrublet's time grows with the cells it scores
    done, total = 0, len(labels)
    for sample in order:
        rows = np.flatnonzero(labels == sample)
        result = SampleDoublets(sample=sample, cells=len(rows))
        results.append(result)
        if len(rows) < MIN_DOUBLET_CELLS:
            result.note = f"{len(rows)} cells, fewer than {MIN_DOUBLET_CELLS}: not scored"
            done += len(rows)
            continue
        parts = scored_parts(rows, seed)
        notes = [f"scored in {len(parts)} random parts of at most {MAX_SCORED_CELLS:,} cells"] if len(parts) > 1 else []
        thresholds = []
        for part in parts:
            check_cancel(cancel)
            progress("doublets", done, total, sample)
            done += len(part)
            try:
                part_scores, threshold = _scrublet(matrix[part], seed)
            except Exception as exc:  # one sample's failure is recorded; the others still run
                notes.append(f"Scrublet failed: {type(exc).__name__}: {exc}")
                continue
            scores[part] = part_scores
            if threshold is None:
                notes.append("the simulated doublets' scores have no two modes: no threshold, no doublets called")
                continue
            called[part] = np.nan_to_num(part_scores, nan=-np.inf) > threshold
            thresholds.append(threshold)
        result.note = "; ".join(dict.fromkeys(notes))
        if thresholds:
            result.threshold, result.doublets = float(np.median(thresholds)), int(called[rows].sum())
    progress("doublets", total, total, "")
    return scores, called, results
