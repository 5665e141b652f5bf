"""Doublets with scanpy's Scrublet, sample by sample (as ``sc.pp.scrublet(batch_key=...)`` does).

Scanpy's automatic doublet threshold needs scikit-image's ``threshold_minimum``, which scELMo does not ship;
:func:`threshold_minimum` is the same algorithm (smooth the histogram of the simulated doublets' scores until
it has two peaks, take the lowest point between them), so the calls are scanpy's. A sample with fewer than
:data:`MIN_DOUBLET_CELLS` cells is not scored: Scrublet's threshold on a few dozen cells calls a large share of
them doublets (``benchmarks/qc_rules.py`` scores random subsamples of each size).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, check_cancel, no_progress
from scelmo_desktop.core.settings import default

MIN_DOUBLET_CELLS = 200
HISTOGRAM_BINS = 256  # skimage's default for threshold_minimum
MAX_SMOOTHING = 10_000


@dataclass
class SampleDoublets:
    """One sample's Scrublet run: the cells scored, the doublets called, the score threshold, or why not."""

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
        check_cancel(cancel)
        progress("doublets", done, total, sample)
        rows = np.flatnonzero(labels == sample)
        done += len(rows)
        result = SampleDoublets(sample=sample, cells=len(rows))
        results.append(result)
        if len(rows) < MIN_DOUBLET_CELLS:
            result.note = f"{len(rows)} cells, fewer than {MIN_DOUBLET_CELLS}: not scored"
            continue
        try:
            sample_scores, threshold = _scrublet(matrix[rows], seed)
        except Exception as exc:  # one sample's failure is recorded; the others still run
            result.note = f"Scrublet failed: {type(exc).__name__}: {exc}"
            continue
        scores[rows] = sample_scores
        if threshold is None:
            result.note = "the simulated doublets' scores have no two modes: no threshold, no doublets called"
            continue
        sample_called = np.nan_to_num(sample_scores, nan=-np.inf) > threshold
        called[rows] = sample_called
        result.threshold, result.doublets = threshold, int(sample_called.sum())
    progress("doublets", total, total, "")
    return scores, called, results
