"""Cell-type annotation without training (METHOD.md §3.3, without the original's bug of scoring the reference
against itself).

* ``knn``: each query cell takes the majority label of its 10 most cosine-similar reference cells. Ties go to the
  label with the larger summed similarity, then alphabetically (deterministic). Confidence is the vote fraction;
  below the user's threshold the cell is called ``Unknown``.
* ``text`` (beyond the paper): cells and cell-type descriptions live in the same text-embedding space, so each cell
  is scored against the description of every candidate type; no reference cells are needed. Two scorings:
  ``markers`` (default) takes, per type, the genes whose (centred) description vectors are closest to the type's
  description and scores each cell by the mean standardised expression of those genes (a signature score, as
  ``sc.tl.score_genes``); ``centroid`` compares the cell's ``wa`` vector with the type vector directly. The
  marker genes used are recorded so users can see which genes drove each call.

Written back the cellxgene-annotate way: ``obs['scelmo_label']``, ``obs['scelmo_label_confidence']`` and a run
record in ``uns['scelmo']['annotation']``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import CancelFlag, check_cancel
from scelmo_desktop.core.keys import LABEL_KEY, add_record
from scelmo_desktop.core.settings import DEFAULT_CONDITIONING, default

UNKNOWN = "Unknown"
KNN = "knn"  # the method name of a kNN-vote annotation (as the method setting spells it)
QUERY_CHUNK = 2048


@dataclass
class Annotation:
    """Predicted labels of the query cells, with confidence, similarity, method and (marker scoring) the markers."""

    labels: np.ndarray  # predicted label per query cell (``Unknown`` below the threshold)
    confidence: np.ndarray  # knn: vote fraction; text: softmax probability of the chosen type
    similarity: np.ndarray  # knn: mean cosine to the k neighbours; text: cosine (centroid) or signature z (markers)
    method: str
    markers: dict[str, list[str]] | None = None  # text mode, markers scoring: the genes behind each type
    mapping: dict | None = None  # text mode, knowledge scoring: the Cell Ontology term behind each type
    evidence: dict | None = None  # knowledge scoring: per type, its markers as seen in the cells called that type

    def write_to(self, adata, record: dict, key: str = LABEL_KEY) -> None:
        """``obs[key]``, ``obs['<key>_confidence']``, ``obs['<key>_similarity']`` and the run record in
        ``uns['scelmo']['annotation']``."""
        adata.obs[key] = pd.Categorical(self.labels)
        adata.obs[f"{key}_confidence"] = self.confidence.astype(np.float32)
        adata.obs[f"{key}_similarity"] = self.similarity.astype(np.float32)
        add_record(adata, "annotation", record)


def _unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def knn_vote(
    reference: np.ndarray,
    reference_labels,
    query: np.ndarray,
    *,
    k: int = default("k"),
    threshold: float = 0.0,
    cancel: CancelFlag | None = None,
) -> Annotation:
    """Exact cosine k-NN majority vote (exact search: identical answers on every machine)."""
    reference_labels = np.asarray(reference_labels).astype(str)
    classes, codes = np.unique(reference_labels, return_inverse=True)
    R, Q = _unit(reference), _unit(query)
    k = min(k, len(R))
    labels = np.empty(len(Q), dtype=object)
    confidence = np.empty(len(Q), dtype=np.float32)
    similarity = np.empty(len(Q), dtype=np.float32)
    for start in range(0, len(Q), QUERY_CHUNK):
        check_cancel(cancel)
        sims = Q[start : start + QUERY_CHUNK] @ R.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top_sims = np.take_along_axis(sims, top, axis=1)
        votes = np.zeros((len(top), len(classes)), dtype=np.float32)
        weight = np.zeros_like(votes)
        rows = np.repeat(np.arange(len(top)), k)
        np.add.at(votes, (rows, codes[top].ravel()), 1.0)
        np.add.at(weight, (rows, codes[top].ravel()), top_sims.ravel())
        # majority first, then summed similarity; np.lexsort-free: scale keeps the vote count dominant
        score = votes * (k + 1) * 2 + weight
        best = np.argmax(score, axis=1)  # argmax takes the first (alphabetical) class among exact ties
        labels[start : start + len(top)] = classes[best]
        confidence[start : start + len(top)] = votes[np.arange(len(top)), best] / k
        similarity[start : start + len(top)] = top_sims.mean(axis=1)
    labels = np.where(confidence < threshold, UNKNOWN, labels).astype(str)
    return Annotation(labels=labels, confidence=confidence, similarity=similarity, method=KNN)


def text_match(
    cells: np.ndarray,
    type_vectors: np.ndarray,
    type_names: list[str],
    *,
    center: np.ndarray | None = None,
    temperature: float = 0.05,
    threshold: float = 0.0,
) -> Annotation:
    """Score each cell against each cell-type description vector (cosine); optionally both centred by
    ``center`` (the gene table's mean: the text space is anisotropic, METHOD.md §1.4)."""
    cells = np.asarray(cells, dtype=np.float32)
    types = np.asarray(type_vectors, dtype=np.float32)
    if center is not None:
        cells, types = cells - center, types - center
    sims = _unit(cells) @ _unit(types).T
    logits = (sims - sims.max(axis=1, keepdims=True)) / temperature
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    best = np.argmax(sims, axis=1)
    confidence = probabilities[np.arange(len(best)), best]
    labels = np.where(confidence < threshold, UNKNOWN, np.asarray(type_names)[best]).astype(str)
    return Annotation(labels=labels, confidence=confidence, similarity=sims[np.arange(len(best)), best], method="text")


def text_markers(
    table: np.ndarray, genes, type_vectors: np.ndarray, type_names: list[str], *, n_markers: int = 10
) -> dict[str, list[str]]:
    """Per cell type, the ``n_markers`` genes whose centred description vectors have the highest cosine with the
    type's (identically centred) description vector; genes without a vector are never chosen."""
    matched = np.any(table != 0, axis=1)
    if not matched.any():
        return {name: [] for name in type_names}
    centred, mean = centred_table(table)
    affinity = _unit(centred) @ _unit(np.asarray(type_vectors, dtype=np.float32) - mean).T  # genes x types
    affinity[~matched] = -np.inf
    genes = np.asarray(genes, dtype=object)
    n = min(n_markers, int(matched.sum()))
    # stable sort with the gene name as the second key: identical vectors give the same markers on every run
    order = np.lexsort((genes.astype(str)[:, None].repeat(len(type_names), 1).T, -affinity.T))
    return {name: [str(g) for g in genes[order[j, :n]]] for j, name in enumerate(type_names)}


def softmax_calls(scores_: np.ndarray, names: list[str], *, temperature: float, threshold: float):
    """Per cell (row), the best-scoring type (the first in ``names`` among exact ties), its softmax probability
    at ``temperature`` as the confidence, and ``Unknown`` below ``threshold``; returns labels, confidence, best."""
    best = np.argmax(scores_, axis=1)
    logits = (scores_ - scores_[np.arange(len(best)), best][:, None]) / temperature
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    confidence = probabilities[np.arange(len(best)), best].astype(np.float32)
    labels = np.where(confidence < threshold, UNKNOWN, np.asarray(names)[best]).astype(str)
    return labels, confidence, best


def signature_match(
    expression,
    genes,
    markers: dict[str, list[str]],
    *,
    temperature: float = 0.25,
    threshold: float = 0.0,
    cancel: CancelFlag | None = None,
) -> Annotation:
    """Score each cell by the mean standardised (per gene, over these cells) expression of each type's markers;
    the label is the best-scoring type, its confidence the softmax probability of that score."""
    import scipy.sparse as sp

    index = {str(g): i for i, g in enumerate(genes)}
    names = list(markers)
    columns = sorted({index[g] for ms in markers.values() for g in ms if g in index})
    if not columns:
        raise ScelmoError("None of the cell types has a marker gene in this data; text annotation cannot score.")
    check_cancel(cancel)
    block = expression[:, columns]
    block = np.asarray(block.toarray() if sp.issparse(block) else block, dtype=np.float32)
    z = (block - block.mean(axis=0)) / np.maximum(block.std(axis=0), 1e-6)
    position = {c: i for i, c in enumerate(columns)}
    scores_ = np.full((len(z), len(names)), -np.inf, dtype=np.float32)
    for j, name in enumerate(names):
        cols = [position[index[g]] for g in markers[name] if g in index]
        if cols:
            scores_[:, j] = z[:, cols].mean(axis=1)
    labels, confidence, best = softmax_calls(scores_, names, temperature=temperature, threshold=threshold)
    return Annotation(
        labels=labels, confidence=confidence, similarity=scores_[np.arange(len(best)), best], method="text"
    )


def scores(truth, predicted) -> dict:
    """Accuracy, macro-F1 and per-class F1 over the true labels' classes (``Unknown`` calls count as wrong),
    and the fraction of cells called ``Unknown``."""
    from sklearn.metrics import accuracy_score, f1_score

    truth, predicted = np.asarray(truth).astype(str), np.asarray(predicted).astype(str)
    classes = sorted(set(truth))
    per_class = f1_score(truth, predicted, labels=classes, average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, labels=classes, average="macro", zero_division=0)),
        "per_class_f1": {c: float(f) for c, f in zip(classes, per_class)},
        "unknown_fraction": float(np.mean(predicted == UNKNOWN)),
    }


def centred_table(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The aligned gene table with its mean (over genes that have a vector) removed from those rows.

    A ``wa`` embedding on the centred table points the same way as the expression-weighted mean of centred
    gene vectors (wa is that mean scaled by the matched expression fraction), so it can be compared by cosine
    with cell-type description vectors centred by the same mean.
    """
    matched = np.any(matrix != 0, axis=1)
    mean = matrix[matched].mean(axis=0) if matched.any() else np.zeros(matrix.shape[1], np.float32)
    centred = matrix.copy()
    centred[matched] -= mean
    return centred, mean


def reference_and_query_vectors(
    X_ref,
    E_ref,
    X_query,
    E_query,
    *,
    conditioning: str = DEFAULT_CONDITIONING,
    own_centre: bool = True,
    seed: int = 0,
    cancel: CancelFlag | None = None,
):
    """Cell vectors of a reference and a query in one space: the table whitened on the reference's gene set,
    principal components fitted on the reference and applied to the query. ``own_centre`` centres the query on
    its own mean, which removes a global shift between the two studies before the kNN vote. The ``smoothed``
    conditioning lives in each file's own gene space, which two files do not share, so the transfer uses the
    table's coordinates (``standard``) for it."""
    from scelmo_desktop.core.embedding.cell_vectors import Reduction, Whitening, cell_vectors, rows_with_vectors

    if conditioning == "paper":
        return (
            cell_vectors(X_ref, E_ref, conditioning="paper", cancel=cancel),
            cell_vectors(X_query, E_query, conditioning="paper", cancel=cancel),
        )
    whitening = Whitening.fit(np.asarray(E_ref, dtype=np.float32)[rows_with_vectors(E_ref)])
    Z_ref = cell_vectors(X_ref, E_ref, conditioning="standard", whitening=whitening, cancel=cancel)
    Z_query = cell_vectors(X_query, E_query, conditioning="standard", whitening=whitening, cancel=cancel)
    reduction = Reduction.fit(Z_ref, seed=seed)
    return reduction.apply(Z_ref), reduction.apply(Z_query, own_centre=own_centre)


def annotate_query(
    query,
    *,
    expression,
    alignment,
    mode: str,
    reference=None,
    reference_expression=None,
    reference_alignment=None,
    label_key: str | None = None,
    type_vectors=None,
    type_names=None,
    k: int = default("k"),
    threshold: float = 0.0,
    center: bool = True,
    text_scoring: str = "markers",
    n_markers: int = 10,
    conditioning: str = DEFAULT_CONDITIONING,
    cancel: CancelFlag | None = None,
) -> Annotation:
    """Annotate ``query`` in ``mode`` knn (needs the reference, each embedded with the table aligned to its
    own genes) or text (needs the cell-type description vectors)."""
    from scelmo_desktop.core.embedding.cell_embedding import average_gene_vectors

    if mode == "knn":
        ref_cells, query_cells = reference_and_query_vectors(
            reference_expression.matrix,
            reference_alignment.matrix,
            expression.matrix,
            alignment.matrix,
            conditioning=conditioning,
            cancel=cancel,
        )
        return knn_vote(
            ref_cells,
            reference.obs[label_key].astype(str).to_numpy(),
            query_cells,
            k=k,
            threshold=threshold,
            cancel=cancel,
        )
    if mode == "text" and text_scoring == "markers":
        markers = text_markers(
            alignment.matrix, expression.var_names, type_vectors, list(type_names), n_markers=n_markers
        )
        annotation = signature_match(
            expression.matrix, expression.var_names, markers, threshold=threshold, cancel=cancel
        )
        annotation.markers = markers
        return annotation
    if mode == "text":
        table, mean = centred_table(alignment.matrix) if center else (alignment.matrix, None)
        cells = average_gene_vectors(expression.matrix, table, mode="wa", cancel=cancel)  # already centred
        types = np.asarray(type_vectors, dtype=np.float32) - (mean if mean is not None else 0)
        return text_match(cells, types, list(type_names), threshold=threshold)
    raise ValueError(f"unknown annotation mode {mode!r}")
