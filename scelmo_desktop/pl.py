"""``scelmo.pl``: the figures of scELMo's reports, for a notebook. Each returns a matplotlib ``Figure`` (drawn
without pyplot, so the notebook's backend is left alone); ``path=`` also writes it as PNG."""

from __future__ import annotations

from scelmo_desktop.core.keys import CLUSTER_KEY, LABEL_KEY
from scelmo_desktop.core.workflows.figures import confusion_figure, metric_bars_figure, save_png, treatment_figure

__all__ = ["confusion", "integration_scores", "treatment", "umap"]


def _maybe_save(fig, path):
    if path is not None:
        save_png(fig, path)
    return fig


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
    """Bio conservation, batch removal and overall score per method (the table ``scelmo.tl.integrate`` returns)."""
    return _maybe_save(
        metric_bars_figure(metrics, ["S_bio", "S_batch", "overall"], title="bio conservation, batch removal, overall"),
        path,
    )


def treatment(ranking, *, top: int = 10, path=None):
    """The top knock-outs of ``scelmo.tl.treat`` with their spread over seeds and p-values."""
    return _maybe_save(treatment_figure(ranking, top=top), path)
