"""Clusters that are a state of a larger type, named against the cells outside their parent cluster.

A cluster is named on how much more often it expresses each gene than every other cell
(:mod:`~scelmo_desktop.core.tasks.naming`). A state of a large type (ER-stressed beta cells beside 700 other beta
cells) then shows only its state's genes: the type's own markers are as frequent outside it, in the next cluster,
and the call is a guess of low confidence (pulmonary neuroendocrine cell, 0.16). Its *parent* (the cluster and
the one it is most connected to on the neighbour graph) is what the type's markers set apart from the rest.

So a cluster whose own call is less likely than not (confidence below :data:`LESS_LIKELY_THAN_NOT`) and whose
parent holds other clusters too is named again on how much more often it expresses each gene than the cells
outside its parent; the second call is taken when it is more confident than the first. Only such low-confidence
calls change: naming every cluster against its parent loses the distinctions between sibling types (an NK part
against its CD8 T sibling). Measured in ``docs/benchmarks.md`` ("The flag on the other real labelled files").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scelmo_desktop.core.tasks.mixed_clusters import detection
from scelmo_desktop.core.tasks.naming import GroupName, Knowledge, name_one

LESS_LIKELY_THAN_NOT = 0.5


def parent_cells(groups: np.ndarray, connectivities) -> dict[str, np.ndarray]:
    """For each group of ``groups`` (one id per cell), the cells of its parent: the group and the one group its
    cells are most connected to on the neighbour graph (``connectivities``, cells x cells), relative to both
    groups' sizes (PAGA's measure, without its null model). A wider parent (a coarse clustering) joins unrelated
    lineages: on Kang it put every lymphocyte in one, and names moved within the T cells."""
    import scipy.sparse as sp

    groups = np.asarray(groups).astype(str)
    ids, index = np.unique(groups, return_inverse=True)
    if len(ids) < 2:
        return {}
    member = sp.csr_matrix((np.ones(len(groups)), (np.arange(len(groups)), index)), shape=(len(groups), len(ids)))
    between = np.asarray((member.T @ sp.csr_matrix(connectivities) @ member).todense(), dtype=np.float64)
    sizes = np.bincount(index, minlength=len(ids)).astype(np.float64)
    relative = between / np.outer(sizes, sizes)
    np.fill_diagonal(relative, -np.inf)
    nearest = relative.argmax(axis=1)
    return {str(ids[g]): np.flatnonzero((index == g) | (index == nearest[g])) for g in range(len(ids))}


def evidence_outside(matrix, genes: pd.Index, cells: np.ndarray, outside: np.ndarray) -> pd.DataFrame:
    """One row per gene (index: ``genes``, first of each repeated name): ``pct_in_group`` over ``cells``,
    ``pct_out_group`` over ``outside``, and ``log2_fold_change`` of their mean expression (``matrix``
    log-normalised: ``expm1`` undoes the log, as scanpy's marker test does)."""

    def mean_counts(rows):
        block = matrix[rows]
        return np.asarray(block.expm1().mean(axis=0) if hasattr(block, "expm1") else np.expm1(block).mean(axis=0))

    table = pd.DataFrame(
        {
            "pct_in_group": detection(matrix, cells),
            "pct_out_group": detection(matrix, outside),
            "log2_fold_change": np.log2((mean_counts(cells).ravel() + 1e-9) / (mean_counts(outside).ravel() + 1e-9)),
        },
        index=genes,
    )
    return table[~table.index.duplicated()]


def named_within_parents(
    matrix, genes, groups, parents: dict[str, np.ndarray], calls: dict[str, GroupName], knowledge: Knowledge
) -> dict[str, GroupName]:
    """The new calls of the groups (``calls``, named against every other cell) whose call is less likely than not
    and whose parent (``parents``: :func:`parent_cells`) holds other groups too, named against the cells outside
    the parent, where that call is more confident. Each new call's ``within`` lists the parent's other groups."""
    import scipy.sparse as sp

    matrix = sp.csr_matrix(matrix) if sp.issparse(matrix) else np.asarray(matrix)
    genes = pd.Index([str(g) for g in genes])
    measured = set(genes)
    groups = np.asarray(groups).astype(str)
    renamed = {}
    for group, call in calls.items():
        parent = parents.get(group)
        if call.edited or call.confidence >= LESS_LIKELY_THAN_NOT or parent is None:
            continue
        cells = np.flatnonzero(groups == group)
        siblings = sorted({str(g) for g in groups[parent]} - {group}, key=lambda g: (len(g), g))
        outside = np.setdiff1d(np.arange(matrix.shape[0]), parent)
        if not siblings or not len(outside) or not len(cells):
            continue
        rows = evidence_outside(matrix, genes, cells, outside)
        difference = rows["pct_in_group"] - rows["pct_out_group"]
        again = name_one(group, rows, difference, measured, knowledge)
        if again.term_id and again.term_id != call.term_id and again.confidence > call.confidence:
            again.within = siblings
            again.mixed = call.mixed
            renamed[group] = again
    return renamed
