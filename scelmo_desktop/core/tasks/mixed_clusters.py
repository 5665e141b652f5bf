"""Clusters whose cells split into two lineages (an NK + CD8 T cluster), found so the analyst sub-clusters them
before trusting the one name the cluster gets.

Each named cluster's cells are split in two (k-means on the first principal components of its most variable
genes). Each part is named as a cluster would be (:func:`~scelmo_desktop.core.tasks.naming.best_type`, on how much
more often the part expresses each gene than the cells outside the cluster). The cluster *may mix* when the two
parts' types are of different lineages (neither is the other's ancestor, and no type the naming could give is
an ancestor of both), each part holds at least
:data:`MIN_SHARE` of the cells, and each part's type is clearly its own, by the naming's ``SEPARATES_BY`` (a gap
of two softmax temperatures, as its granularity rule asks):

* it leads in its own part over the other part's type (its markers tell the two apart);
* it scores lower in the other part than in its own (the other part lacks its markers: a cell state, such as
  stressed beta cells whose ER-stress genes read as a plasma-cell programme, keeps its lineage's markers in both
  parts);
* where the type has pegasus' signed immune markers, its part shows them (:func:`~scelmo_desktop.core.tasks.naming.
  lineage_gate` above zero): a plasma-cell call with no plasma-cell gene behind it is not a lineage.

A homogeneous cluster splits into two parts of one lineage and is not flagged. Measured in
``benchmarks/cluster_naming.py`` and, on the real labelled files, ``benchmarks/mixed_flags.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scelmo_desktop.core.tasks.naming import SEPARATES_BY, Knowledge, best_type, lineage_gate

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


@dataclass
class TwoParts:
    """One named cluster's cells split in two, each part named as a cluster would be."""

    group: str
    parts: tuple[np.ndarray, np.ndarray]  # cell indices
    terms: tuple[str, str]  # each part's type ("" when none scores)
    scores: tuple[dict, dict]  # every type's score in each part
    gates: tuple[float | None, float | None]  # each part's lineage gate for its own type

    def tests(self, knowledge: Knowledge) -> dict[str, bool]:
        """The module's tests, by name (all must hold for the cluster to be flagged)."""
        (first, second), (one, two) = self.terms, self.scores
        named = bool(first and second)
        return {
            "two lineages": named and not _one_lineage(first, second, knowledge),
            "each leads in its part": named
            and one[first] - one.get(second, -np.inf) >= SEPARATES_BY
            and two[second] - two.get(first, -np.inf) >= SEPARATES_BY,
            "each lower in the other part": named
            and one[first] - two.get(first, -np.inf) >= SEPARATES_BY
            and two[second] - one.get(second, -np.inf) >= SEPARATES_BY,
            "each shows its lineage's markers": all(gate is None or gate > 0 for gate in self.gates),
        }

    def mixed(self, knowledge: Knowledge) -> bool:
        return all(self.tests(knowledge).values())


def two_parts(matrix, genes, groups, calls: dict, knowledge: Knowledge, *, seed: int = 0) -> list[TwoParts]:
    """Each named group of ``groups`` (one label per row of ``matrix``, cells x ``genes`` as symbols) with at least
    :data:`MIN_CELLS` cells, split in two (:func:`split_in_two`) when each part holds :data:`MIN_SHARE` of them,
    and each part named on how much more often it expresses each gene than the cells outside the group."""
    import scipy.sparse as sp

    matrix = sp.csr_matrix(matrix) if sp.issparse(matrix) else np.asarray(matrix)
    genes = pd.Index([str(g) for g in genes])
    measured = set(genes)
    groups = np.asarray(groups).astype(str)
    everywhere = detection(matrix, np.arange(matrix.shape[0])) * matrix.shape[0]
    found = []
    for group, call in calls.items():
        cells = np.flatnonzero(groups == group)
        if not call.term_id or len(cells) < MIN_CELLS:
            continue
        halves = split_in_two(matrix[cells], seed=seed)
        parts = (cells[halves == 0], cells[halves == 1])
        if min(len(p) for p in parts) < MIN_SHARE * len(cells):
            continue
        outside = (everywhere - detection(matrix, cells) * len(cells)) / max(matrix.shape[0] - len(cells), 1)
        evidence, detected = [], []
        for part in parts:
            shares = pd.Series(detection(matrix, part), index=genes)
            difference = shares - outside
            evidence.append(difference[~difference.index.duplicated()])
            detected.append(shares[~shares.index.duplicated()])
        named = [best_type(e, measured, knowledge, d) for e, d in zip(evidence, detected)]
        terms = (named[0][0], named[1][0])
        gates = tuple(
            lineage_gate(t, e, measured, knowledge, d) if t else None for t, e, d in zip(terms, evidence, detected)
        )
        found.append(TwoParts(str(group), parts, terms, (named[0][1], named[1][1]), gates))
    return found


def mixed_groups(matrix, genes, groups, calls: dict, knowledge: Knowledge, *, seed: int = 0) -> dict[str, list]:
    """For each named group of ``groups`` (one label per row of ``matrix``, cells x ``genes`` as symbols) whose
    cells split into two lineages (:meth:`TwoParts.tests`): the two parts, each ``{term_id, name, cells}``."""
    return {
        split.group: [
            {"term_id": term, "name": knowledge.names[term], "cells": int(len(part))}
            for term, part in zip(split.terms, split.parts)
        ]
        for split in two_parts(matrix, genes, groups, calls, knowledge, seed=seed)
        if split.mixed(knowledge)
    }
