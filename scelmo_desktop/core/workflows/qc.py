"""Quality control, first of all: scanpy's QC metrics on the raw counts, Scrublet per sample, suggested
thresholds per sample, the filter; recorded and written atomically.

AnnData keys written into ``adata`` (the input): ``obs``: ``total_counts``, ``log1p_total_counts``,
``n_genes_by_counts``, ``log1p_n_genes_by_counts``, ``total_counts_{mt,ribo,hb}``,
``log1p_total_counts_{mt,ribo,hb}``, ``pct_counts_{mt,ribo,hb}``, ``doublet_score`` (NaN where a sample was
not scored), ``predicted_doublet``; ``var``: ``mt``, ``ribo``, ``hb`` and, when the counts are X or a layer,
scanpy's per-gene metrics; ``uns['scelmo']['qc']``: the record (matrix used, rule, thresholds and the cells
each removes per sample, doublets, what was skipped and why, settings, versions). The filtered copy carries the
same keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scelmo_desktop.core._infra.atomic import write_text_atomic
from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, check_cancel, no_progress
from scelmo_desktop.core._infra.provenance import h5ad_safe, now_iso, package_versions
from scelmo_desktop.core.data.io import require_obs_column, write_h5ad
from scelmo_desktop.core.keys import add_record
from scelmo_desktop.core.qc.doublets import SampleDoublets, score_doublets
from scelmo_desktop.core.qc.figures import doublet_figure, scatter_figure, violins_figure
from scelmo_desktop.core.qc.metrics import compute_metrics, count_matrix, mito_genes
from scelmo_desktop.core.qc.thresholds import (
    BOUNDS,
    Filtering,
    Thresholds,
    all_removed_message,
    apply_thresholds,
    rule_failures,
    sample_labels,
    sample_order,
    suggest_thresholds,
)
from scelmo_desktop.core.settings import PipelineSettings
from scelmo_desktop.core.workflows.figures import save_png
from scelmo_desktop.core.workflows.report import write_task_report

SAMPLE_KEY = "sample"  # the data step's sample column; without it, all cells are one sample
QC_SETTINGS = ("qc", "qc_nmads", "max_pct_mt", "min_genes", "remove_doublets", "seed")
INTRO = (
    "Per-cell metrics are scanpy's (calculate_qc_metrics on the raw counts); doublets are Scrublet's, scored per "
    "sample. Thresholds are suggested per sample: total counts and genes within median ± N MADs of their log "
    "values, % mitochondrial at most median + 3 MADs (never below 5%), unless set by hand. A cell failing two "
    "rules counts under both."
)


@dataclass
class QCOutcome:
    """What :func:`run_qc` made: the filtered copy, the keep mask (one bool per input cell), the per-sample
    table, the thresholds (None when QC is off), the record, what was skipped and why, warnings, and the
    files."""

    adata: object
    keep: np.ndarray
    table: pd.DataFrame
    thresholds: Thresholds | None
    record: dict
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. a whole sample removed
    files: dict[str, Path] = field(default_factory=dict)
    doublets: list = field(default_factory=list)  # Scrublet per sample (for the figures written later)
    obs: pd.DataFrame | None = None  # every input cell's metrics (the figures show the removed cells too)

    @property
    def n_kept(self) -> int:
        """The number of cells kept."""
        return int(self.keep.sum())


def qc_table(filtering: Filtering, thresholds: Thresholds, doublets: list[SampleDoublets]) -> pd.DataFrame:
    """One row per sample: cells, kept, removed (in all and by each rule), the thresholds used (empty where
    there is none), Scrublet's doublets and threshold, and notes."""
    table = filtering.per_sample.set_index("sample")
    bounds = thresholds.table[list(BOUNDS)].round(3)
    by_sample = {d.sample: d for d in doublets}
    table = table.join(bounds)
    table["doublets"] = [by_sample[s].doublets if s in by_sample else 0 for s in table.index]
    table["doublet_threshold"] = [
        round(by_sample[s].threshold, 4) if s in by_sample and by_sample[s].threshold is not None else np.nan
        for s in table.index
    ]
    notes = []
    for sample in table.index:
        parts = [thresholds.table.loc[sample, "note"], by_sample[sample].note if sample in by_sample else ""]
        notes.append("; ".join(p for p in parts if p))
    table["notes"] = notes
    return table.reset_index()


def _none_for_nan(value):
    return None if isinstance(value, float) and np.isnan(value) else value


def _record(*, settings, counts, sample_key, thresholds, filtering, doublets, skipped, warnings, n_cells) -> dict:
    return {
        "created_at": now_iso(),
        "status": "done",
        "matrix": counts.as_dict(),
        "sample_key": sample_key if sample_key is not None else "none",
        "cells": n_cells,
        "kept": filtering.n_kept,
        "removed": n_cells - filtering.n_kept,
        "removed_by_rule": filtering.removed,
        "rule": thresholds.rule,
        "thresholds": thresholds.as_dict(),
        "per_sample": {
            str(row["sample"]): {k: _none_for_nan(v) for k, v in row.items() if k != "sample"}
            for row in filtering.per_sample.to_dict("records")
        },
        "doublets": {d.sample: d.as_dict() for d in doublets},
        "skipped": list(skipped),
        "warnings": list(warnings),
        "settings": {name: getattr(settings, name) for name in QC_SETTINGS},
        "versions": package_versions(),
    }


def _skipped(thresholds: Thresholds, doublets: list[SampleDoublets], n_mito: int) -> list[str]:
    skipped = [f"thresholds of {s}: {note}" for s, note in thresholds.table["note"].items() if note]
    skipped += [f"doublets of {d.sample}: {d.note}" for d in doublets if d.note]
    if not n_mito:
        skipped.append("% mitochondrial: the data has no MT-/mt- genes, so pct_counts_mt is 0 for every cell")
    return list(dict.fromkeys(skipped))


def qc_applies(adata, settings: PipelineSettings) -> str | None:
    """Why the pipeline's automatic QC does not run on ``adata`` (None: it runs): QC is off, the data was
    quality-controlled already (``uns['scelmo']['qc']``: the app's QC panel, ``scelmo.pp.qc``), or it holds no
    raw counts to compute the metrics on (a log-normalised file without counts)."""
    if settings.qc == "off":
        return "quality control is off"
    if "qc" in (adata.uns.get("scelmo") or {}):
        return "quality control was applied before this run"
    try:
        count_matrix(adata, layer=settings.layer, input_kind=settings.input_kind, symbol_column=settings.symbol_column)
    except ScelmoError:
        return "no raw counts to compute QC metrics on (X, a counts layer or .raw); the cells are used as given"
    return None


def run_qc(
    adata,
    *,
    settings: PipelineSettings,
    sample_key: str | None = SAMPLE_KEY,
    out: str | Path | None = None,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> QCOutcome:
    """Quality control of ``adata`` before anything else: scanpy's QC metrics on the raw counts (X, a counts
    layer or .raw; log-normalised data without counts is refused), Scrublet doublets per sample of
    ``obs[sample_key]`` (absent: one sample), suggested thresholds per sample (:mod:`scelmo_desktop.core.qc.thresholds`
    with ``settings.qc_nmads``, ``max_pct_mt``, ``min_genes``, ``remove_doublets``), the filter. Writes the keys
    this module lists into ``adata`` and returns the filtered copy. With ``out``: ``qc_table.csv``, the figures,
    ``qc_report.html``, ``qc_provenance.json`` and ``qc_filtered.h5ad``. ``settings.qc == 'off'`` keeps every
    cell and computes nothing. Too few cells for a step skip that step (said in ``skipped``); thresholds that
    would remove every cell raise :class:`ScelmoError` naming them."""
    if settings.qc == "off":
        record = {"created_at": now_iso(), "status": "off", "cells": int(adata.n_obs)}
        add_record(adata, "qc", h5ad_safe(record))
        keep = np.ones(adata.n_obs, dtype=bool)
        return QCOutcome(adata, keep, pd.DataFrame(), None, record, ["quality control is off: every cell kept"])
    measures = measure_qc(adata, settings=settings, sample_key=sample_key, progress=progress, cancel=cancel)
    return apply_qc(adata, measures, settings=settings, out=out, progress=progress)


@dataclass
class QCMeasures:
    """What :func:`measure_qc` found: the count matrix used, the sample column (None: one sample), Scrublet's
    result per sample and the suggested thresholds (which the app lets the user move before applying)."""

    counts: object
    sample_key: str | None
    doublets: list
    thresholds: Thresholds
    notes: list[str] = field(default_factory=list)


def measure_qc(
    adata,
    *,
    settings: PipelineSettings,
    sample_key: str | None = SAMPLE_KEY,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> QCMeasures:
    """The measuring half of :func:`run_qc`: scanpy's QC metrics and Scrublet's scores into ``adata.obs``, and
    the thresholds suggested per sample; nothing is filtered or recorded yet."""
    if adata.n_obs == 0:
        raise ScelmoError("The data holds no cells; there is nothing to quality-control.")
    if sample_key is not None and sample_key != SAMPLE_KEY:
        require_obs_column(adata, sample_key, "sample")  # a column the caller names must be there
    key = sample_key if sample_key is not None and sample_key in adata.obs.columns else None
    stages = 4
    progress("qc", 0, stages, "QC metrics (scanpy)")
    counts = count_matrix(
        adata, layer=settings.layer, input_kind=settings.input_kind, symbol_column=settings.symbol_column
    )
    compute_metrics(adata, counts)
    check_cancel(cancel)
    # no "qc 1/4" here: the time left would be the metrics' pace applied to Scrublet, many times slower; the
    # doublets stage reports its own progress in cells, a unit of like cost
    order = sample_order(adata.obs, key)
    scores, called, doublets = score_doublets(
        counts.matrix, sample_labels(adata.obs, key), order=order, seed=settings.seed, progress=progress, cancel=cancel
    )
    adata.obs["doublet_score"] = scores
    adata.obs["predicted_doublet"] = called
    progress("qc", 2, stages, "thresholds")
    thresholds = suggest_thresholds(
        adata.obs,
        key,
        nmads=settings.qc_nmads,
        max_pct_mt=settings.max_pct_mt,
        min_genes=settings.min_genes,
        remove_doublets=settings.remove_doublets,
    )
    notes = [f"no obs['{sample_key}'] column: all cells treated as one sample"] if sample_key and key is None else []
    return QCMeasures(counts, key, doublets, thresholds, notes)


def apply_qc(
    adata,
    measures: QCMeasures,
    *,
    settings: PipelineSettings,
    thresholds: Thresholds | None = None,
    out: str | Path | None = None,
    copy: bool = True,
    progress: Progress = no_progress,
) -> QCOutcome:
    """The filtering half of :func:`run_qc`: ``thresholds`` (default: the suggested ones; the app passes the ones
    the user moved) applied to the metrics in ``adata.obs``, recorded in ``uns['scelmo']['qc']``; returns the
    outcome with the filtered copy, and with ``out`` writes the files. Thresholds that would remove every cell
    raise :class:`ScelmoError` naming them. ``copy=False``: no filtered copy is made (``outcome.adata`` is None;
    the caller filters ``adata`` itself with ``outcome.keep``)."""
    stages = 4
    thresholds = thresholds or measures.thresholds
    filtering = apply_thresholds(adata.obs, thresholds)
    if filtering.n_kept == 0:
        raise ScelmoError(all_removed_message(adata.obs, thresholds, rule_failures(adata.obs, thresholds)))
    skipped = measures.notes + _skipped(thresholds, measures.doublets, mito_genes(measures.counts))
    warnings = [
        f"every cell of sample {row['sample']} ({row['cells']}) is removed; check its thresholds"
        for row in filtering.per_sample.to_dict("records")
        if row["kept"] == 0
    ]
    record = _record(
        settings=settings,
        counts=measures.counts,
        sample_key=measures.sample_key,
        thresholds=thresholds,
        filtering=filtering,
        doublets=measures.doublets,
        skipped=skipped,
        warnings=warnings,
        n_cells=int(adata.n_obs),
    )
    record["thresholds_moved_by_hand"] = thresholds is not measures.thresholds
    add_record(adata, "qc", h5ad_safe(record))
    filtered = adata[filtering.keep].copy() if copy else None
    outcome = QCOutcome(
        filtered, filtering.keep, qc_table(filtering, thresholds, measures.doublets), thresholds, record, skipped
    )
    outcome.doublets, outcome.obs = measures.doublets, adata.obs.copy()
    if out is not None:
        progress("qc", 3, stages, "writing")
        outcome.files = write_qc_files(outcome, out)
    progress("qc", stages, stages, f"{filtering.n_kept} of {adata.n_obs} cells kept")
    return outcome


def write_qc_files(outcome: QCOutcome, out: str | Path) -> dict[str, Path]:
    """Write ``qc_table.csv``, the three figures, ``qc_report.html``, ``qc_provenance.json`` and the filtered
    ``qc_filtered.h5ad`` into ``out``, each atomically; returns ``{name: path}``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    thresholds = outcome.thresholds
    figures = {
        "qc_violins": save_png(violins_figure(outcome.obs, thresholds), out / "qc_violins.png"),
        "qc_genes_vs_counts": save_png(scatter_figure(outcome.obs, outcome.keep), out / "qc_genes_vs_counts.png"),
        "qc_doublet_scores": save_png(
            doublet_figure(outcome.obs, thresholds, {d.sample: d.threshold for d in outcome.doublets}),
            out / "qc_doublet_scores.png",
        ),
    }
    files = {"qc_table": write_text_atomic(out / "qc_table.csv", outcome.table.to_csv(index=False))}
    shown = {k: v for k, v in outcome.record.items() if k not in ("thresholds", "per_sample", "doublets")}
    files["report"] = write_task_report(
        out / "qc_report.html",
        title="quality control",
        intro=f"{outcome.n_kept} of {len(outcome.keep)} cells kept. " + INTRO,
        tables={"QC per sample": outcome.table},
        figures=list(figures.values()),
        record=shown,
    )
    files["provenance"] = write_text_atomic(
        out / "qc_provenance.json", json.dumps(outcome.record, indent=2, default=str)
    )
    files.update(figures)
    if outcome.adata is not None:
        files["h5ad"] = write_h5ad(outcome.adata, out / "qc_filtered.h5ad")
    return files
