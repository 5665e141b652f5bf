"""The QC figures, on bare matplotlib ``Figure`` objects (no pyplot, any thread): violins of counts, genes and
% mitochondrial per sample with the thresholds drawn in, genes against counts coloured by % mitochondrial, and
the doublet scores with Scrublet's threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scelmo_desktop.core.qc.thresholds import Thresholds, sample_labels

MAX_POINTS = 50_000  # a scatter of more points shows nothing more and draws slowly
PANELS = (
    ("total_counts", "total counts", True, ("min_counts", "max_counts")),
    ("n_genes_by_counts", "genes", True, ("min_genes", "max_genes")),
    ("pct_counts_mt", "% mitochondrial", False, ("max_pct_mt",)),
)


SIDE_BY_SIDE = 6  # up to this many samples the three violin panels sit in a row; more, one under another
MAX_LEGEND = 12


def _figure(width: float, height: float, panels: int = 1, *, stacked: bool = False):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(panels if stacked else 1, 1 if stacked else panels, squeeze=False)
    return fig, axes.ravel()


def violins_figure(obs: pd.DataFrame, thresholds: Thresholds):
    """One panel per metric (total counts, genes, % mitochondrial), one violin per sample, each sample's
    thresholds as red lines across its violin."""
    labels = sample_labels(obs, thresholds.sample_key)
    samples = list(thresholds.table.index)
    stacked = len(samples) > SIDE_BY_SIDE
    if stacked:
        fig, axes = _figure(min(3.0 + 0.35 * len(samples), 24.0), 3.2 * len(PANELS), len(PANELS), stacked=True)
    else:
        fig, axes = _figure(max(9.0, 1.6 * len(samples) * len(PANELS)), 3.6, len(PANELS))
    for ax, (column, title, logged, bounds) in zip(axes, PANELS):
        if column not in obs.columns:
            ax.set_axis_off()
            continue
        data = [obs.loc[(labels == s).to_numpy(), column].to_numpy(np.float64) for s in samples]
        if logged:
            data = [np.log10(1 + d) for d in data]
        positions = [i for i, d in enumerate(data) if len(d) > 1 and np.ptp(d) > 0]
        if positions:
            ax.violinplot([data[i] for i in positions], positions=positions, showmedians=True, widths=0.8)
        for i, d in enumerate(data):
            if i not in positions:
                ax.scatter(np.full(len(d), i), d, s=8, color="#1f77b4")
            for bound in bounds:
                value = thresholds.table.loc[samples[i], bound]
                if pd.notna(value):
                    shown = np.log10(1 + value) if logged else value
                    ax.hlines(shown, i - 0.45, i + 0.45, color="#d62728", linewidth=1.5)
        tilt = len(samples) > 3
        ax.set_xticks(
            range(len(samples)), samples, rotation=45 if tilt else 0, ha="right" if tilt else "center", fontsize=8
        )
        ax.set_title(title + (" (log10 1+x)" if logged else ""), fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("QC metrics per sample (red: thresholds)", fontsize=11)
    return fig


def scatter_figure(obs: pd.DataFrame, keep: np.ndarray):
    """Genes against total counts (log axes), coloured by % mitochondrial; removed cells marked with a cross."""
    fig, axes = _figure(6.5, 5.0)
    ax = axes[0]
    rows = np.arange(len(obs))
    if len(rows) > MAX_POINTS:  # evenly spread and deterministic
        rows = rows[:: int(np.ceil(len(rows) / MAX_POINTS))]
    counts = obs["total_counts"].to_numpy(np.float64)[rows]
    genes = obs["n_genes_by_counts"].to_numpy(np.float64)[rows]
    mito = obs["pct_counts_mt"].to_numpy(np.float64)[rows] if "pct_counts_mt" in obs else np.zeros(len(rows))
    top = float(np.percentile(mito, 99)) if len(mito) else 0.0  # a few dying cells would flatten the colours
    points = ax.scatter(counts + 1, genes + 1, c=mito, s=4, cmap="viridis", linewidths=0, vmin=0, vmax=top or None)
    fig.colorbar(points, ax=ax, label="% mitochondrial", extend="max" if top else "neither")
    removed = ~np.asarray(keep, dtype=bool)[rows]
    if removed.any():
        ax.scatter(counts[removed] + 1, genes[removed] + 1, marker="x", s=10, color="#d62728", linewidths=0.6)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("total counts + 1")
    ax.set_ylabel("genes + 1")
    ax.set_title(f"Genes vs counts ({int(removed.sum())} of {len(rows)} shown removed: red crosses)", fontsize=10)
    return fig


def doublet_figure(obs: pd.DataFrame, thresholds: Thresholds, doublet_thresholds: dict[str, float | None]):
    """Histogram of the doublet scores per sample, with each sample's Scrublet threshold as a dashed line."""
    fig, axes = _figure(6.5, 4.0)
    ax = axes[0]
    labels = sample_labels(obs, thresholds.sample_key)
    scores = obs["doublet_score"] if "doublet_score" in obs else pd.Series(np.nan, index=obs.index)
    drawn = False
    for i, sample in enumerate(thresholds.table.index):
        values = scores[(labels == sample).to_numpy()].dropna().to_numpy(np.float64)
        if not len(values):
            continue
        color = f"C{i % 10}"
        ax.hist(values, bins=50, range=(0, 1), histtype="step", color=color, label=sample if i < MAX_LEGEND else None)
        if doublet_thresholds.get(sample) is not None:
            ax.axvline(doublet_thresholds[sample], color=color, linestyle="--", linewidth=1)
        drawn = True
    if drawn:
        ax.set_yscale("log")
        ax.legend(fontsize=8, frameon=False)
    else:
        ax.text(0.5, 0.5, "no sample was scored for doublets", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("Scrublet doublet score")
    ax.set_ylabel("cells")
    ax.set_title("Doublet scores (dashed: each sample's threshold)", fontsize=10)
    return fig
