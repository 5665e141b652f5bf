"""Suggested QC thresholds per sample, and applying them (cheap: no recomputation, so a slider can update the
kept count live).

The rule (chosen by measurement on PBMC 3k and Kang: ``benchmarks/qc_rules.py`` prints every candidate's
cells kept and removed per sample, per cell type, and the planted low-quality cells each one catches):

- **total counts** and **genes per cell**: outside ``median ± nmads × MAD`` of the ``log1p`` values of the
  sample (the single-cell best-practices book's outlier rule, ``nmads`` = the ``qc_nmads`` setting). The MAD
  is scaled to a normal standard deviation (R's ``mad``, scater's ``isOutlier``); the book's code uses the
  unscaled MAD, which at 5 MADs takes out most megakaryocytes and many dendritic cells of PBMC 3k.
- **genes per cell**, additionally: never fewer than the ``min_genes`` setting (0: the bound alone).
- **% mitochondrial counts**: above ``median + 3 MAD`` (Cellenics' and OSCA's rule), never below
  :data:`MITO_FLOOR` percent, so that a sample with very little mitochondrial RNA does not lose healthy cells
  to a cut-off a fraction of a percent above its median. The ``max_pct_mt`` setting replaces the rule.
- **doublets**: the cells Scrublet calls doublets, when the ``remove_doublets`` setting is on.

A sample with fewer than :data:`MIN_THRESHOLD_CELLS` cells gets no data-driven bound (a median and MAD of a
handful of cells mean little); settings the user gave as numbers (``max_pct_mt``, ``min_genes``) still apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from scelmo_desktop.core.settings import default

MIN_THRESHOLD_CELLS = 20
MITO_NMADS = 3.0
MITO_FLOOR = 5.0
ALL_CELLS = "all cells"  # the one sample of data without a sample column
BOUNDS = ("min_counts", "max_counts", "min_genes", "max_genes", "max_pct_mt")
RULES = (*BOUNDS, "doublet")
# the obs column each bound reads (scanpy's names) and whether it is a lower bound
BOUND_COLUMNS = {
    "min_counts": ("total_counts", True),
    "max_counts": ("total_counts", False),
    "min_genes": ("n_genes_by_counts", True),
    "max_genes": ("n_genes_by_counts", False),
    "max_pct_mt": ("pct_counts_mt", False),
}
RULE_SETTINGS = {  # the settings that move each rule, in the words core's messages use
    "min_counts": "the qc nmads setting",
    "max_counts": "the qc nmads setting",
    "min_genes": "the min genes setting or the qc nmads setting",
    "max_genes": "the qc nmads setting",
    "max_pct_mt": "the max pct mt setting",
    "doublet": "the remove doublets setting",
}
RULE_WORDS = {
    "min_counts": "fewest total counts",
    "max_counts": "most total counts",
    "min_genes": "fewest genes",
    "max_genes": "most genes",
    "max_pct_mt": "most % mitochondrial counts",
    "doublet": "Scrublet doublet call",
}


def sample_labels(obs: pd.DataFrame, sample_key: str | None) -> pd.Series:
    """Each cell's sample as text: ``obs[sample_key]``, or :data:`ALL_CELLS` when there is no such column."""
    if sample_key is None or sample_key not in obs.columns:
        return pd.Series(ALL_CELLS, index=obs.index, dtype=object)
    return obs[sample_key].astype(str)


def sample_order(obs: pd.DataFrame, sample_key: str | None) -> list[str]:
    """The samples in their natural order: the categories' order for a categorical column, else first seen."""
    labels = sample_labels(obs, sample_key)
    column = obs[sample_key] if sample_key is not None and sample_key in obs.columns else None
    if column is not None and isinstance(column.dtype, pd.CategoricalDtype):
        present = set(labels)
        return [str(c) for c in column.cat.categories if str(c) in present]
    return list(pd.unique(labels))


def mad(values: np.ndarray) -> float:
    """The median absolute deviation scaled to a normal standard deviation (×1.4826, R's ``mad``)."""
    from scipy.stats import median_abs_deviation

    return float(median_abs_deviation(values, scale="normal"))


@dataclass(frozen=True)
class Thresholds:
    """The bounds per sample: ``table`` has one row per sample (index: the sample as text) with the cell count,
    one column per bound of :data:`BOUNDS` (NaN: no bound) and a note saying why a bound is missing;
    ``remove_doublets`` says whether Scrublet's calls remove cells."""

    table: pd.DataFrame
    sample_key: str | None
    remove_doublets: bool = True
    rule: dict = field(default_factory=dict)  # how the bounds were suggested (for the record)

    def replace(self, sample: str | None = None, **bounds) -> Thresholds:
        """A copy with ``bounds`` changed (``max_pct_mt=10``; None: no bound) for ``sample`` or, without one,
        every sample; ``remove_doublets=`` switches the doublet rule. The live way to move a slider."""
        remove = bounds.pop("remove_doublets", self.remove_doublets)
        unknown = sorted(set(bounds) - set(BOUNDS))
        if unknown:
            raise ValueError(f"no threshold named {', '.join(unknown)} (known: {', '.join(BOUNDS)})")
        table = self.table.copy()
        rows = table.index if sample is None else [str(sample)]
        for name, value in bounds.items():
            table.loc[rows, name] = np.nan if value is None else float(value)
        return replace(self, table=table, remove_doublets=bool(remove))

    def for_sample(self, sample: str) -> dict:
        """One sample's bounds as ``{bound: value or None}``."""
        row = self.table.loc[str(sample)]
        return {name: None if pd.isna(row[name]) else float(row[name]) for name in BOUNDS}

    def as_dict(self) -> dict:
        """``{sample: {cells, bounds…, note}}`` for the record (None where there is no bound)."""
        return {
            sample: {"cells": int(row["cells"]), **self.for_sample(sample), "note": str(row["note"])}
            for sample, row in self.table.iterrows()
        }


def _log_bounds(values: np.ndarray, nmads: float) -> tuple[float, float] | None:
    """``expm1(median ± nmads × MAD)`` of ``log1p(values)``; None when the values do not spread."""
    logged = np.log1p(np.asarray(values, dtype=np.float64))
    spread = mad(logged)
    if not np.isfinite(spread) or spread == 0:
        return None
    centre = float(np.median(logged))
    return float(np.expm1(centre - nmads * spread)), float(np.expm1(centre + nmads * spread))


def _mito_cap(pct: np.ndarray) -> float:
    return max(float(np.median(pct)) + MITO_NMADS * mad(pct), MITO_FLOOR)


def suggest_thresholds(
    obs: pd.DataFrame,
    sample_key: str | None = "sample",
    *,
    nmads: float = default("qc_nmads"),
    max_pct_mt: float | None = default("max_pct_mt"),
    min_genes: int = default("min_genes"),
    remove_doublets: bool = default("remove_doublets"),
) -> Thresholds:
    """Suggest bounds per sample from scanpy's QC metrics in ``obs`` (``total_counts``, ``n_genes_by_counts``,
    ``pct_counts_mt``) by the rule of this module; ``sample_key`` names the sample column (absent: one sample).
    Samples too small for the rule, or a metric without spread, get no bound and a note saying so."""
    missing = [c for c in ("total_counts", "n_genes_by_counts") if c not in obs.columns]
    if missing:
        raise ValueError(f"obs lacks scanpy's QC metrics ({', '.join(missing)}); compute them first")
    labels = sample_labels(obs, sample_key)
    has_mito = "pct_counts_mt" in obs.columns and bool((obs["pct_counts_mt"].fillna(0) > 0).any())
    rows = {}
    for sample in sample_order(obs, sample_key):
        part = obs.loc[(labels == sample).to_numpy()]
        row = dict.fromkeys(BOUNDS, np.nan)
        notes = []
        enough = len(part) >= MIN_THRESHOLD_CELLS
        if not enough:
            notes.append(f"{len(part)} cells, fewer than {MIN_THRESHOLD_CELLS}: no suggested bounds")
        else:
            for metric, low, high in (
                ("total_counts", "min_counts", "max_counts"),
                ("n_genes_by_counts", "min_genes", "max_genes"),
            ):
                bounds = _log_bounds(part[metric].to_numpy(), nmads)
                if bounds is None:
                    notes.append(f"{metric} does not vary: no bound on it")
                else:
                    row[low], row[high] = bounds
        if min_genes:
            row["min_genes"] = max(float(min_genes), 0.0 if np.isnan(row["min_genes"]) else row["min_genes"])
        if max_pct_mt is not None:
            row["max_pct_mt"] = float(max_pct_mt)
        elif not has_mito:
            notes.append("no mitochondrial counts (no MT-/mt- genes): no bound on % mitochondrial")
        elif enough:
            row["max_pct_mt"] = _mito_cap(part["pct_counts_mt"].to_numpy(dtype=np.float64))
        rows[sample] = {"cells": len(part), **row, "note": "; ".join(notes)}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["cells", *BOUNDS, "note"])
    table.index = table.index.astype(str)
    rule = {
        "counts_and_genes": f"median ± {nmads:g} MAD (scaled) of log1p values, per sample",
        "min_genes": int(min_genes),
        "pct_mt": (
            f"fixed at {max_pct_mt:g}%"
            if max_pct_mt is not None
            else f"median + {MITO_NMADS:g} MAD (scaled), at least {MITO_FLOOR:g}%, per sample"
        ),
        "doublets": "Scrublet's calls removed" if remove_doublets else "Scrublet's calls kept",
        "min_cells_for_bounds": MIN_THRESHOLD_CELLS,
    }
    return Thresholds(table=table, sample_key=sample_key, remove_doublets=bool(remove_doublets), rule=rule)


@dataclass
class Filtering:
    """What :func:`apply_thresholds` decided: ``keep`` (one bool per cell, in obs order), the cells each rule
    removes over all samples (a cell failing two rules counts in both), and the same per sample."""

    keep: np.ndarray
    removed: dict[str, int]
    per_sample: pd.DataFrame  # sample, cells, kept, removed, removed_<rule> for each of RULES

    @property
    def n_kept(self) -> int:
        """The number of cells kept."""
        return int(self.keep.sum())


def rule_failures(obs: pd.DataFrame, thresholds: Thresholds) -> dict[str, np.ndarray]:
    """``{rule: bool per cell}``: the cells each rule of :data:`RULES` would remove."""
    labels = sample_labels(obs, thresholds.sample_key).to_numpy()
    table = thresholds.table
    known = np.isin(labels, table.index.to_numpy())
    rows = table.reindex(np.where(known, labels, table.index[0] if len(table) else "")).reset_index(drop=True)
    failures = {}
    for rule, (column, lower) in BOUND_COLUMNS.items():
        bound = rows[rule].to_numpy(dtype=np.float64) if rule in rows else np.full(len(obs), np.nan)
        if column not in obs.columns:
            failures[rule] = np.zeros(len(obs), dtype=bool)
            continue
        values = obs[column].to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            failed = values < bound if lower else values > bound
        failures[rule] = failed & known & ~np.isnan(bound)
    if thresholds.remove_doublets and "predicted_doublet" in obs.columns:
        failures["doublet"] = obs["predicted_doublet"].fillna(False).to_numpy(dtype=bool)
    else:
        failures["doublet"] = np.zeros(len(obs), dtype=bool)
    return failures


def removal_words(removed: dict[str, int]) -> str:
    """``{rule: cells removed}`` in words, the rules that removed none left out: "max counts 1, doublet 3"."""
    return ", ".join(f"{rule.replace('_', ' ')} {int(n)}" for rule, n in removed.items() if n)


def apply_thresholds(obs: pd.DataFrame, thresholds: Thresholds) -> Filtering:
    """Which cells pass ``thresholds`` and how many each rule removes, overall and per sample (vectorised over
    ``obs``: cheap enough to run on every move of a slider)."""
    failures = rule_failures(obs, thresholds)
    removed_any = np.logical_or.reduce(list(failures.values())) if len(obs) else np.zeros(0, dtype=bool)
    keep = ~removed_any
    labels = sample_labels(obs, thresholds.sample_key)
    frame = pd.DataFrame(
        {"sample": labels.to_numpy(), "kept": keep, **{f"removed_{r}": f for r, f in failures.items()}}
    )
    order = sample_order(obs, thresholds.sample_key)
    grouped = frame.groupby("sample", sort=False)
    per_sample = grouped.sum().reindex(order).astype(int)
    per_sample.insert(0, "cells", grouped.size().reindex(order).astype(int))
    per_sample.insert(2, "removed", per_sample["cells"] - per_sample["kept"])
    per_sample = per_sample.rename_axis("sample").reset_index()
    return Filtering(keep=keep, removed={r: int(f.sum()) for r, f in failures.items()}, per_sample=per_sample)


def all_removed_message(obs: pd.DataFrame, thresholds: Thresholds, failures: dict[str, np.ndarray]) -> str:
    """Why QC would remove every cell: each rule that removes cells, with its bounds and how many it removes,
    and the settings that loosen them."""
    parts = []
    for rule in sorted(failures, key=lambda r: -int(failures[r].sum())):
        n = int(failures[rule].sum())
        if not n:
            continue
        if rule == "doublet":
            parts.append(f"the {RULE_WORDS[rule]} removes {n}")
            continue
        values = thresholds.table[rule].dropna()
        shown = ", ".join(f"{s}: {v:.4g}" for s, v in values.items()) if len(values) <= 3 else f"{len(values)} samples"
        parts.append(f"the {RULE_WORDS[rule]} threshold ({rule}; {shown}) removes {n}")
    moved_by = dict.fromkeys(RULE_SETTINGS[r] for r in failures if failures[r].any())
    return (
        f"Quality control would remove all {len(obs)} cells: "
        + "; ".join(parts)
        + f". Loosen {' and '.join(moved_by)}, or set the qc setting to off."
    )
