"""The figures of the reports and of ``scelmo.pl``, drawn on a bare matplotlib ``Figure`` (no pyplot): building
one never switches a notebook's backend, and a file can be written from any thread."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from scelmo_desktop.core._infra.atomic import write_bytes_atomic


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def save_png(fig, path: Path) -> Path:
    """Write ``fig`` to ``path`` as a PNG (110 dpi, tight bounding box), atomically; returns the path."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return write_bytes_atomic(path, buffer.getvalue())


def save_figure(fig, path: Path) -> Path:
    """Write ``fig`` to ``path`` in the format its suffix names (.png, .svg or .pdf), atomically."""
    path = Path(path)
    kind = path.suffix.lower().lstrip(".") or "png"
    if kind not in ("png", "svg", "pdf"):
        raise ValueError(f"figures are written as PNG, SVG or PDF, not '{path.suffix}'")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=kind, dpi=150, bbox_inches="tight")
    return write_bytes_atomic(path, buffer.getvalue())


def confusion_figure(truth, predicted, *, title: str = ""):
    """Row-normalised confusion matrix: true labels as rows, predicted labels as columns (the true labels first,
    in the same order, when the two share names), counts written in."""
    truth, predicted = np.asarray(truth).astype(str), np.asarray(predicted).astype(str)
    rows = sorted(set(truth))
    # calls named otherwise than the truth (a tissue preset's terms): the calls alone, not a square of empty columns
    columns = rows + sorted(set(predicted) - set(rows)) if set(predicted) & set(rows) else sorted(set(predicted))
    counts = (
        pd.crosstab(pd.Series(truth), pd.Series(predicted))
        .reindex(index=rows, columns=columns, fill_value=0)
        .to_numpy()
    )
    fractions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = _figure(1.0 + 0.55 * len(columns), 1.0 + 0.5 * len(rows))
    ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(columns)), columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    for (i, j), value in np.ndenumerate(counts):
        if value:
            ax.text(
                j,
                i,
                str(value),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if fractions[i, j] > 0.5 else "black",
            )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    return fig


def metric_bars_figure(frame: pd.DataFrame, columns: list[str], *, label: str = "method", title: str = ""):
    """Grouped horizontal bars: one group per row of ``frame`` (a method), one bar per metric column."""
    shown = frame.iloc[::-1]
    height = 0.8 / len(columns)
    fig, ax = _figure(7.5, 0.9 + 0.32 * len(shown) * len(columns))
    positions = np.arange(len(shown))
    for i, column in enumerate(columns):
        ax.barh(positions + i * height, shown[column].astype(float), height=height, label=column)
    ax.set_yticks(positions + height * (len(columns) - 1) / 2, shown[label])
    handles, names = ax.get_legend_handles_labels()  # outside the axes: never over a bar
    ax.legend(handles[::-1], names[::-1], fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return fig


def treatment_figure(table: pd.DataFrame, *, top: int = 10):
    """Bar chart of the top genes' mean Δ with s.d. error bars and p-values."""
    shown = table.head(top).iloc[::-1]
    fig, ax = _figure(6.5, 0.45 * len(shown) + 1.2)
    spread = np.nan_to_num(shown["delta_sd"].to_numpy(float))
    ax.barh(
        shown["gene"],
        shown["delta_cosine"],
        xerr=spread,
        error_kw={"elinewidth": 1, "ecolor": "#555"},
        color=["#2b8cbe" if p < 0.05 else "#bdbdbd" for p in shown["p_value"]],
        capsize=3,
    )
    for i, (value, sd, p) in enumerate(zip(shown["delta_cosine"], spread, shown["p_value"])):
        ax.text(max(value, 0) + sd, i, f"  p={p:.3f}", va="center", fontsize=8)  # right of the error bar
    ax.set_xlabel("Δ cosine(control, disease) after knock-out (mean over seeds)")
    ax.set_title("In-silico treatment: top candidates (blue: p < 0.05)", fontsize=10)
    ax.margins(x=0.25)
    return fig


VOLCANO_P = 0.05  # adjusted p below which a gene is coloured (with at least VOLCANO_FOLD in log2 fold change)
VOLCANO_FOLD = 1.0


def volcano_points(table: pd.DataFrame) -> pd.DataFrame:
    """A comparison table's volcano coordinates: log2 fold change, -log10 adjusted p (0 p capped at the smallest
    float), and whether the gene is up, down or neither at :data:`VOLCANO_P` and :data:`VOLCANO_FOLD`."""
    p = table["p_adjusted"].to_numpy(float)
    y = -np.log10(np.clip(p, np.finfo(float).tiny, 1.0))
    x = table["log2_fold_change"].to_numpy(float)
    side = np.where(
        (p < VOLCANO_P) & (x >= VOLCANO_FOLD), "up", np.where((p < VOLCANO_P) & (x <= -VOLCANO_FOLD), "down", "")
    )
    # scanpy gives a gene detected in one group only a fold change near ±30 (its epsilon): kept, flagged
    one_sided = (table["pct_in_group"].to_numpy(float) == 0) | (table["pct_out_group"].to_numpy(float) == 0)
    return pd.DataFrame(
        {
            "gene": table["gene"].to_numpy(),
            "log2_fold_change": x,
            "neg_log10_p": y,
            "side": side,
            "one_sided": one_sided,
        }
    )


def volcano_x_range(points: pd.DataFrame) -> tuple[float, float]:
    """The fold-change axis of a volcano: the genes detected in both groups, and at least ±2 fold."""
    both = points.loc[~points["one_sided"], "log2_fold_change"]
    low, high = (both.min(), both.max()) if len(both) else (-1.0, 1.0)
    return min(low, -VOLCANO_FOLD) - 0.5, max(high, VOLCANO_FOLD) + 0.5


def volcano_figure(table: pd.DataFrame, *, title: str = "", label: int = 10):
    """Volcano plot of a comparison: up in the first group red, down blue, the ``label`` strongest genes named."""
    points = volcano_points(table)
    fig, ax = _figure(6.5, 5.0)
    colours = points["side"].map({"up": "#d7301f", "down": "#2b8cbe"}).fillna("#bdbdbd")
    ax.scatter(points["log2_fold_change"], points["neg_log10_p"], s=6, c=colours.to_numpy(), linewidths=0)
    strongest = points[points["side"] != ""].sort_values("neg_log10_p", ascending=False).head(label)
    for row in strongest.itertuples():
        ax.annotate(
            row.gene, (row.log2_fold_change, row.neg_log10_p), fontsize=7, xytext=(3, 2), textcoords="offset points"
        )
    ax.axhline(-np.log10(VOLCANO_P), color="#888", lw=0.6, ls="--")
    for x in (-VOLCANO_FOLD, VOLCANO_FOLD):
        ax.axvline(x, color="#888", lw=0.6, ls="--")
    ax.set_xlim(*volcano_x_range(points))
    ax.set_xlabel("log2 fold change (beyond the axis: genes detected in one group only)")
    ax.set_ylabel("-log10 adjusted p")
    ax.set_title(title, fontsize=10)
    return fig
