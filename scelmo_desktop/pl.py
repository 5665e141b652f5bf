"""``scelmo.pl``: the figures of scELMo's reports, for a notebook. Each returns a matplotlib ``Figure`` (drawn
without pyplot where scanpy allows, so the notebook's backend is left alone); ``path=`` also writes it (PNG, SVG
or PDF, by its suffix)."""

from __future__ import annotations

from scelmo_desktop.core.keys import CLUSTER_KEY, LABEL_KEY, MARKERS_KEY
from scelmo_desktop.core.workflows.figures import (
    confusion_figure,
    metric_bars_figure,
    save_figure,
    treatment_figure,
    volcano_figure,
)

__all__ = ["confusion", "integration_scores", "markers", "treatment", "umap", "volcano"]


def _maybe_save(fig, path):
    if path is not None:
        save_figure(fig, path)
    return fig


def markers(
    adata, *, kind: str = "dotplot", n_genes: int = 3, gene: str | None = None, key: str = MARKERS_KEY, path=None
):
    """scanpy's plot of the markers of ``scelmo.tl.markers`` or ``scelmo run`` (``kind``: dotplot, heatmap,
    stacked_violin, or violin of one ``gene``), drawn on the log-normalised matrix the markers were found on (as
    ``uns['scelmo']['markers']`` records it) rather than the raw counts the run keeps in ``X``; ``path`` (.png,
    .svg, .pdf) also writes it."""
    from scelmo_desktop.core.workflows.markers import marker_figure, tested_expression

    expression = tested_expression(adata, key)
    return _maybe_save(marker_figure(adata, expression, kind, key=key, n_genes=n_genes, gene=gene), path)


def volcano(table, *, title: str = "", path=None):
    """Volcano plot of a ``scelmo.tl.compare`` table: up red, down blue (adjusted p < 0.05, 2-fold)."""
    return _maybe_save(volcano_figure(table, title=title), path)


def umap(adata, *, color: str = CLUSTER_KEY, title: str | None = None, path=None, **kwargs):
    """``obsm['X_umap']`` coloured by an obs column (scanpy's ``sc.pl.umap``); run ``scelmo.tl.cluster`` first."""
    import scanpy as sc

    fig = sc.pl.umap(
        adata,
        color=color,
        title=title or f"UMAP (scELMo) — {color}",
        show=False,
        return_fig=True,
        frameon=False,
        **kwargs,
    )
    return _maybe_save(fig, path)


def confusion(adata, *, truth_key: str, key: str = LABEL_KEY, path=None):
    """Row-normalised confusion matrix of ``obs[truth_key]`` against the annotation in ``obs[key]``."""
    return _maybe_save(confusion_figure(adata.obs[truth_key], adata.obs[key], title=f"{key} vs {truth_key}"), path)


def integration_scores(metrics, *, path=None):
    """Bio conservation, batch removal and overall score per method (the table ``scelmo.tl.integrate`` returns;
    without labels, its label-free batch scores)."""
    from scelmo_desktop.core.workflows.integration import score_columns

    columns, title = score_columns(metrics)
    return _maybe_save(metric_bars_figure(metrics, columns, title=title), path)


def treatment(ranking, *, top: int = 10, path=None):
    """The top knock-outs of ``scelmo.tl.treat`` with their spread over seeds and p-values."""
    return _maybe_save(treatment_figure(ranking, top=top), path)
