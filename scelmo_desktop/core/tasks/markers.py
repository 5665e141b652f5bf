"""Marker genes per group with scanpy's ``rank_genes_groups`` (Wilcoxon or t-test, one group against the rest),
the table filtered as ``filter_rank_genes_groups`` filters it.

The test runs on the log-normalised matrix every step uses (:class:`~scelmo_desktop.core.data.io.Expression`),
over the genes expressed in at least :data:`MIN_CELLS` cells (as the scanpy route's ``filter_genes`` keeps them),
so the run's raw counts in ``X`` stay as they are. The result is scanpy's own ``uns['rank_genes_groups']``
layout, and a tidy table of every gene of every group (not only a top few).
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scelmo_desktop.core.settings import default

MIN_CELLS = 3  # a gene seen in fewer cells than this cannot mark a group (scanpy route: filter_genes(min_cells=3))
# filter_rank_genes_groups' defaults: in >= 25 % of the group, <= 50 % outside it, fold change >= 2
FILTER = {"min_in_group_fraction": 0.25, "max_out_group_fraction": 0.5, "min_fold_change": 2.0}
METHODS = ("wilcoxon", "t-test")
RANK_CHUNK_DIVISOR = 4  # see _smaller_rank_chunks
TABLE_COLUMNS = ["group", "gene", "score", "log2_fold_change", "pct_in_group", "pct_out_group", "p_value", "p_adjusted"]


@dataclass
class Markers:
    """One marker test: scanpy's ``rank_genes_groups`` dict and the table of every gene of every group."""

    uns: dict  # scanpy's uns['rank_genes_groups'] layout (names, scores, logfoldchanges, pvals, pvals_adj, pts…)
    table: pd.DataFrame  # TABLE_COLUMNS + 'passes_filter', sorted by group then score
    groupby: str
    method: str
    skipped_groups: list[str]  # groups with a single cell: nothing to test

    def top(self, n: int = 5, *, filtered: bool = True) -> dict[str, list[str]]:
        """The first ``n`` genes of each group (those passing the filter, by default)."""
        table = self.table[self.table["passes_filter"]] if filtered else self.table
        return {str(g): list(rows["gene"].head(n)) for g, rows in table.groupby("group", observed=False, sort=False)}


def rank_markers(matrix, var_names, groups: pd.Series, *, method: str = default("markers")) -> Markers:
    """Each group of ``groups`` (one label per row of ``matrix``, log-normalised cells x genes) against the rest.

    Raises ``ValueError`` when fewer than two groups have two or more cells (no comparison to make).
    """
    import scanpy as sc

    if method not in METHODS:
        raise ValueError(f"marker test {method!r}: choose one of {', '.join(METHODS)}")
    work, order, skipped = _tested_cells(matrix, var_names, groups)
    if len(order) < 2:
        sizes = work.obs["group"].value_counts()
        raise ValueError(f"marker genes need at least two groups of two or more cells (got {dict(sizes)})")
    with warnings.catch_warnings(), _smaller_rank_chunks():
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)  # pandas' notice from inside scanpy
        sc.tl.rank_genes_groups(work, "group", groups=order, reference="rest", method=method, pts=True, use_raw=False)
    return _filtered(work, order, method, skipped)


def saved_markers(saved: dict, matrix, var_names, groups: pd.Series, *, method: str) -> Markers:
    """A test :func:`rank_markers` ran earlier, read back from its ``uns['rank_genes_groups']`` (``saved``, as a
    result file holds it) on the cells and matrix it was run on: the table and the filter are rebuilt, the
    statistics are the saved ones. Raises ``ValueError`` when ``groups`` no longer holds the groups tested."""
    work, testable, skipped = _tested_cells(matrix, var_names, groups)
    order = [str(g) for g in np.asarray(saved["names"]).dtype.names or ()]
    if not order or sorted(order) != sorted(testable):
        raise ValueError(f"the saved test covers groups {order}, the data now has {testable}")
    missing = set(map(str, np.asarray(saved["names"][order[0]]))) - set(work.var_names)
    if missing:
        raise ValueError(f"{len(missing)} tested genes are not in the matrix (e.g. {sorted(missing)[0]})")
    changed = _groups_changed(work, order, saved.get("pts"))
    if changed:
        raise ValueError(f"the cells of group {changed} are not those tested (cluster labels are reused)")
    params = {**dict(saved.get("params", {})), "groupby": "group"}
    work.uns["rank_genes_groups"] = {**saved, "params": params}
    return _filtered(work, order, method, skipped)


def _groups_changed(work, order: list[str], saved_pts) -> str:
    """The first group whose cells no longer detect the genes as the saved test found (its ``pts``: the share of
    each group's cells detecting each gene), "" when all match. Why: cluster labels 0, 1, 2… are reused by any new
    clustering, so the same labels can hold other cells."""
    if not isinstance(saved_pts, pd.DataFrame) or saved_pts.empty:
        return order[0]  # no record of the cells tested: nothing vouches for them
    genes = [g for g in map(str, saved_pts.index) if g in work.var_names]
    X = work[:, genes].X
    for group in order:
        if group not in saved_pts.columns:
            return group
        cells = (work.obs["group"] == group).to_numpy()
        detected = np.asarray((X[cells] != 0).mean(axis=0)).ravel()
        if not np.allclose(detected, saved_pts.loc[genes, group].to_numpy(np.float64), atol=1e-6):
            return group
    return ""


def _tested_cells(matrix, var_names, groups: pd.Series):
    """The matrix as the test sees it (genes seen in at least :data:`MIN_CELLS` cells), the groups it tests (two
    or more cells, in natural order) and those it skips (one cell)."""
    import anndata as ad
    import scipy.sparse as sp

    labels = pd.Series(np.asarray(groups).astype(str), dtype="category")
    sizes = labels.value_counts()
    skipped = sorted(str(g) for g in sizes.index if sizes[g] < 2)
    matrix = sp.csr_matrix(matrix) if not sp.issparse(matrix) else matrix.tocsr()
    expressed = np.asarray((matrix > 0).sum(axis=0)).ravel() >= MIN_CELLS
    work = ad.AnnData(X=matrix[:, np.flatnonzero(expressed)].astype(np.float32))
    work.var_names = pd.Index(np.asarray(var_names)[expressed]).astype(str)
    work.var_names_make_unique()
    work.obs_names = [str(i) for i in range(work.n_obs)]
    work.obs["group"] = pd.Categorical(labels.to_numpy(), categories=sorted(labels.cat.categories, key=_natural))
    order = [g for g in work.obs["group"].cat.categories if sizes[g] >= 2]
    return work, order, skipped


def _filtered(work, order: list[str], method: str, skipped: list[str]) -> Markers:
    """The test in ``work.uns['rank_genes_groups']`` filtered as ``filter_rank_genes_groups`` filters it, and
    tabled."""
    import scanpy as sc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
        sc.tl.filter_rank_genes_groups(work, groupby="group", use_raw=False, key_added="filtered", **FILTER)
    table = _table(work, order)
    uns = dict(work.uns["rank_genes_groups"])
    uns["params"] = {**uns["params"], "groupby": "group", "min_cells": MIN_CELLS, "filter": dict(FILTER)}
    return Markers(uns=uns, table=table, groupby="group", method=method, skipped_groups=skipped)


@contextlib.contextmanager
def _smaller_rank_chunks():
    """Scanpy's Wilcoxon ranks genes in dense chunks of ``_CONST_MAX_SIZE`` values (float64, copied again by the
    ranking); in a run that already holds the data, its embeddings and models, that chunk is the run's peak
    memory. A quarter of it gives the same statistics (the chunks only split the genes) with a lower peak
    (benchmarks/first_result.py). Where scanpy no longer has the constant, its own default applies."""
    from scanpy.tools import _rank_genes_groups as module

    saved = getattr(module, "_CONST_MAX_SIZE", None)
    if isinstance(saved, int):
        module._CONST_MAX_SIZE = max(saved // RANK_CHUNK_DIVISOR, 1)
    try:
        yield
    finally:
        if isinstance(saved, int):
            module._CONST_MAX_SIZE = saved


def _table(work, order: list[str]) -> pd.DataFrame:
    import scanpy as sc

    frames = []
    filtered = work.uns["filtered"]["names"]
    for group in order:
        frame = sc.get.rank_genes_groups_df(work, group=group)
        passing = {str(n) for n in filtered[group] if isinstance(n, str)}
        frames.append(
            pd.DataFrame(
                {
                    "group": group,
                    "gene": frame["names"].astype(str).to_numpy(),
                    "score": frame["scores"].to_numpy(np.float64),
                    "log2_fold_change": frame["logfoldchanges"].to_numpy(np.float64),
                    "pct_in_group": frame["pct_nz_group"].to_numpy(np.float64),
                    "pct_out_group": frame["pct_nz_reference"].to_numpy(np.float64),
                    "p_value": frame["pvals"].to_numpy(np.float64),
                    "p_adjusted": frame["pvals_adj"].to_numpy(np.float64),
                    "passes_filter": frame["names"].astype(str).isin(passing).to_numpy(),
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    table["group"] = pd.Categorical(table["group"], categories=order)
    return table


def _natural(label: str) -> tuple:
    """Cluster ids in numeric order (0, 1, 2, …, 10), other labels by name."""
    return (0, int(label), "") if label.isdigit() else (1, 0, label)
