"""``scelmo.pp``: preprocessing the scanpy way: AnnData first, keyword-only options.

    >>> import scelmo_desktop as scelmo
    >>> adata = scelmo.io.read("filtered_feature_bc_matrix.h5")
    >>> scelmo.pp.qc(adata, sample_key="sample")                 # filters adata in place
    >>> adata.uns["scelmo"]["qc"]["removed_by_rule"]

Each function is the workflow the CLI and the app run (``scelmo_desktop.core.workflows``); its keyword
settings are the declared settings of ``core.settings`` with the same defaults as the CLI and the app.
"""

from __future__ import annotations

from scelmo_desktop.core.settings import PipelineSettings
from scelmo_desktop.core.workflows.environment import no_progress
from scelmo_desktop.core.workflows.qc import SAMPLE_KEY, run_qc
from scelmo_desktop.tl import _takes_settings

__all__ = ["qc"]


@_takes_settings("qc", exclude=("genome", "cell_calling", "umi_threshold", "expected_cells"))  # opening files
def qc(adata, *, sample_key: str | None = SAMPLE_KEY, inplace: bool = True, out=None, progress=None, **options):
    """Quality control, first of all: scanpy's ``calculate_qc_metrics`` on the raw counts (X, a counts layer or
    ``.raw``; log-normalised data without counts is refused), Scrublet doublets per sample of
    ``obs[sample_key]`` (the default ``'sample'`` absent: all cells are one sample), thresholds suggested per sample, and the filter.

    ``inplace=True`` (default): ``adata`` is filtered in place and None is returned; ``inplace=False``: ``adata``
    is left untouched and the filtered copy is returned. ``out``: also write ``qc_table.csv``, the figures,
    ``qc_report.html``, ``qc_provenance.json`` and ``qc_filtered.h5ad`` there.

    Keys written: ``obs``: ``total_counts``, ``log1p_total_counts``, ``n_genes_by_counts``,
    ``log1p_n_genes_by_counts``, ``total_counts_{mt,ribo,hb}``, ``log1p_total_counts_{mt,ribo,hb}``,
    ``pct_counts_{mt,ribo,hb}`` (scanpy's names), ``doublet_score`` (NaN where a sample was too small to
    score), ``predicted_doublet``; ``var``: ``mt``, ``ribo``, ``hb`` and, when the counts are X or a layer,
    scanpy's ``n_cells_by_counts``, ``mean_counts``, ``log1p_mean_counts``, ``pct_dropout_by_counts``,
    ``total_counts``, ``log1p_total_counts``; ``uns['scelmo']['qc']``: the thresholds per sample, the cells
    each rule removed, the doublets, what was skipped and why, the settings and package versions."""
    target = adata if inplace else adata.copy()
    outcome = run_qc(
        target, settings=PipelineSettings(**options), sample_key=sample_key, out=out, progress=progress or no_progress
    )
    if not inplace:
        return outcome.adata
    if not outcome.keep.all():
        adata._inplace_subset_obs(outcome.keep)
    return None
