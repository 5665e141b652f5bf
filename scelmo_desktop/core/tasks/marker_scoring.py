"""Annotation with no reference from curated knowledge: each candidate type's Cell Ontology term, its markers from
the installed tables, a signature score per cell, averaged over neighbours, and a call with a confidence.

Measured with each file's own label names as the candidates (benchmarks/no_reference_annotation.py, on PBMC 3k,
Kang control and pbmc68k_reduced), against the anchor of hand-chosen ontology terms with top-10 markers and no
smoothing: 25 markers and two passes over the expression graph beat that anchor on PBMC 3k and Kang control, and
smoothing accounts for most of the gain.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import CancelFlag, check_cancel
from scelmo_desktop.core.tasks.annotate import Annotation, softmax_calls
from scelmo_desktop.core.tasks.smoothing import smooth

# more markers average out single-gene dropout: 10 → 25 helped Kang and pbmc68k and cost PBMC 3k little
# (tuning grid of benchmarks/no_reference_annotation.py)
KNOWLEDGE_MARKERS = 25
EVIDENCE_GENES = 5


def knowledge_match(
    expression,
    genes,
    type_names: list[str],
    *,
    terms: dict[str, str] | None = None,
    n_markers: int = KNOWLEDGE_MARKERS,
    graph=None,
    threshold: float = 0.0,
    temperature: float = 0.1,
    seed: int = 0,
    cancel: CancelFlag | None = None,
) -> Annotation:
    """Score each cell against each candidate type's curated markers and call the best type.

    Each name is mapped to a Cell Ontology term (``terms`` fixes some or all, as a tissue preset does), those
    of its ``n_markers`` highest-weighted markers that the data has are scored as scanpy's ``score_genes`` does (mean
    log expression minus that of expression-matched control genes), the scores are averaged over ``graph``
    (:mod:`~scelmo_desktop.core.tasks.smoothing`; None: each cell alone), and the confidence is the softmax
    probability of the best score at ``temperature``; below ``threshold`` the call is ``Unknown``. The
    annotation carries the markers, the term mapping, and per type the markers seen in the cells it got."""
    import anndata as ad
    import scanpy as sc

    from scelmo_desktop.core.knowledge.markers import CellMarkers, marker_terms

    table = CellMarkers.load()
    if table is None:
        raise ScelmoError(
            "Knowledge-based annotation needs the cell-type marker tables of the knowledge extra "
            "(cellconsensus); install it, or choose another text scoring."
        )
    genes = [str(g) for g in genes]
    mapping = marker_terms(list(type_names), table, genes=genes, fixed=terms)
    markers = {
        name: table.present_markers(entry["term_id"], n_markers, genes) if entry["term_id"] else []
        for name, entry in mapping.items()
    }
    scored = [name for name in type_names if markers[name]]
    if not scored:
        raise ScelmoError(
            "None of the candidate cell types maps to a Cell Ontology term with markers in this data; "
            "name the types as the ontology does (e.g. 'CD14-positive monocyte')."
        )
    cells = ad.AnnData(
        sp.csr_matrix(expression, dtype=np.float32)
        if sp.issparse(expression)
        else np.asarray(expression, dtype=np.float32)
    )
    cells.var_names = genes
    columns = []
    for name in scored:
        check_cancel(cancel)
        columns.append(sc.tl.score_genes(cells, markers[name], copy=True, random_state=seed).obs["score"].to_numpy())
    scores_ = smooth(np.column_stack(columns).astype(np.float32), graph)
    labels, confidence, best = softmax_calls(scores_, scored, temperature=temperature, threshold=threshold)
    return Annotation(
        labels=labels,
        confidence=confidence,
        similarity=scores_[np.arange(len(best)), best],
        method="text",
        markers=markers,
        mapping=mapping,
        evidence=markers_seen(cells.X, genes, markers, labels),
    )


def markers_seen(expression, genes: list[str], markers: dict[str, list[str]], labels) -> dict[str, list[dict]]:
    """Per called type, its markers that stand out most in the cells called that type: mean log expression there
    and elsewhere, and the fraction of those cells where the gene is detected (the explanation users read)."""
    index = {g: i for i, g in enumerate(genes)}
    labels = np.asarray(labels).astype(str)
    evidence = {}
    for name, genes_ in markers.items():
        called = labels == name
        columns = [index[g] for g in genes_ if g in index]
        if not called.any() or not columns:
            evidence[name] = []
            continue
        block = expression[:, columns]
        block = np.asarray(block.toarray() if sp.issparse(block) else block, dtype=np.float32)
        inside = block[called].mean(axis=0)
        outside = block[~called].mean(axis=0) if (~called).any() else np.zeros_like(inside)
        detected = (block[called] > 0).mean(axis=0)
        order = np.argsort(-(inside - outside), kind="stable")[:EVIDENCE_GENES]
        evidence[name] = [
            {
                "gene": genes[columns[i]],
                "mean_in_type": round(float(inside[i]), 3),
                "mean_elsewhere": round(float(outside[i]), 3),
                "detected": round(float(detected[i]), 3),
            }
            for i in order
        ]
    return evidence
