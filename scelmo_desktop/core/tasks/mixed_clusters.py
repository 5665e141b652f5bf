"""Clusters whose cells split into two lineages (an NK + CD8 T cluster), found so the analyst sub-clusters them
before trusting the one name the cluster gets.

Each named cluster's cells are split in two (k-means on the first principal components of its most variable
genes). Each part is named as a cluster would be (:func:`~scelmo_desktop.core.tasks.naming.best_type`, on how much
more often the part expresses each gene than the cells outside the cluster). The cluster *may mix* when the two
parts' types are of different lineages (neither is the other's ancestor, and no type the naming could give is
an ancestor of both), each part holds at least
:data:`MIN_SHARE` of the cells, and each type leads in its own part over the other's by the naming's
``SEPARATES_BY`` (its markers tell them apart, as the naming's granularity rule asks). A homogeneous cluster
splits into two parts of one lineage and is not flagged. Measured in ``benchmarks/cluster_naming.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scelmo_desktop.core.tasks.naming import SEPARATES_BY, Knowledge, best_type

MIN_CELLS = 40  # fewer cells cannot make two parts worth naming
MIN_SHARE = 0.2
N_GENES = 300  # the cluster's most variable genes, for the split
N_COMPONENTS = 10


def split_in_two(block, *, seed: int = 0) -> np.ndarray:
    """0/1 per row of ``block`` (one cluster's cells x genes, log-normalised, sparse or dense): k-means with two
    centres on the first :data:`N_COMPONENTS` principal components of its :data:`N_GENES` most variable genes."""
    import scipy.sparse as sp
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    mean = np.asarray(block.mean(axis=0)).ravel()
    squares = np.asarray((block.multiply(block) if sp.issparse(block) else np.square(block)).mean(axis=0)).ravel()
    genes = np.argsort(-(squares - mean**2), kind="stable")[:N_GENES]
    dense = block[:, genes].toarray() if sp.issparse(block) else np.asarray(block)[:, genes]
    components = min(N_COMPONENTS, dense.shape[1], dense.shape[0] - 1)
    coordinates = PCA(n_components=components, random_state=seed).fit_transform(dense - dense.mean(axis=0))
    return KMeans(n_clusters=2, n_init=4, random_state=seed).fit_predict(coordinates)


def detection(matrix, rows: np.ndarray) -> np.ndarray:
    """The share of ``rows`` (cell indices) in which each gene is detected (non-zero)."""
    return np.asarray((matrix[rows] > 0).mean(axis=0), dtype=np.float64).ravel()


def _one_lineage(first: str, second: str, knowledge: Knowledge) -> bool:
    """Whether two terms are one lineage: one is the other's ancestor, or they share an ancestor that is itself a
    type the naming could give (two dendritic-cell subtypes share "dendritic cell"; NK and CD8 T cells share only
    "lymphocyte", a hub the naming never gives)."""
    graph = knowledge.graph
    shared = set(graph.ancestors.get(first, {})) & set(graph.ancestors.get(second, {}))
    return graph.related(first, second) or any(term in knowledge.candidates for term in shared)


def mixed_groups(matrix, genes, groups, calls: dict, knowledge: Knowledge, *, seed: int = 0) -> dict[str, list]:
    """For each named group of ``groups`` (one label per row of ``matrix``, cells x ``genes`` as symbols) whose
    cells split into two lineages: the two parts, each ``{term_id, name, cells}``."""
    import scipy.sparse as sp

    matrix = sp.csr_matrix(matrix) if sp.issparse(matrix) else np.asarray(matrix)
    genes = pd.Index([str(g) for g in genes])
    measured = set(genes)
    groups = np.asarray(groups).astype(str)
    everywhere = detection(matrix, np.arange(matrix.shape[0])) * matrix.shape[0]
    found = {}
    for group, call in calls.items():
        cells = np.flatnonzero(groups == group)
        if not call.term_id or len(cells) < MIN_CELLS:
            continue
        halves = split_in_two(matrix[cells], seed=seed)
        parts = [cells[halves == h] for h in (0, 1)]
        if min(len(p) for p in parts) < MIN_SHARE * len(cells):
            continue
        outside = (everywhere - detection(matrix, cells) * len(cells)) / max(matrix.shape[0] - len(cells), 1)
        named = []
        for part in parts:
            difference = pd.Series(detection(matrix, part) - outside, index=genes)
            difference = difference[~difference.index.duplicated()]
            named.append(best_type(difference, measured, knowledge))
        (first, first_scores), (second, second_scores) = named
        if not first or not second or _one_lineage(first, second, knowledge):
            continue
        apart = first_scores[first] - first_scores.get(second, -np.inf) >= SEPARATES_BY and (
            second_scores[second] - second_scores.get(first, -np.inf) >= SEPARATES_BY
        )
        if apart:
            found[group] = [
                {"term_id": term, "name": knowledge.names[term], "cells": int(len(part))}
                for term, part in ((first, parts[0]), (second, parts[1]))
            ]
    return found
