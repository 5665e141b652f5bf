"""Cell vectors as every task uses them: the scELMo average (``cell_embedding``) plus its conditioning.

Conditionings, chosen by measurement on raw PBMC 3k and Kang 2018 (``benchmarks/real_data.py``; figures in
``benchmarks/README.md``):

* ``standard`` (default): on the log-normalised gene set, each cell is the expression-weighted sum of its genes'
  vectors, with the gene table **whitened** over the gene set (centred, then rotated and rescaled so that every
  direction of the table carries equal variance across genes), and the cell vectors reduced to
  :data:`N_COMPONENTS` principal components. Sentence embeddings are anisotropic (a few directions hold most of
  the variance, every gene shares a large common component): without whitening those few directions decide the
  distances between cells. Each step (log gene set, centring + PCA, whitening + PCA) raised Leiden NMI/ARI on
  PBMC 3k over the paper's ``wa`` on counts, to about the standard scanpy PCA route on the same genes
  (``benchmarks/real_data.py``). The per-cell division of the paper's ``wa`` is dropped: library size is already
  equalised by the normalisation, and dividing again cost NMI.
* ``paper``: exactly the original code's ``wa`` (METHOD.md §2.1): raw table, denominators over every gene of
  the file, no reduction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, no_progress
from scelmo_desktop.core.embedding.cell_embedding import average_gene_vectors
from scelmo_desktop.core.settings import CONDITIONINGS, DEFAULT_CONDITIONING

N_COMPONENTS = 50


@dataclass(frozen=True)
class Whitening:
    """An affine map of gene vectors, ``(e - mean) @ matrix``, fitted on a table's rows so that the mapped
    rows have zero mean and identity covariance. The same map applies to every file embedded with that table."""

    mean: np.ndarray
    matrix: np.ndarray

    @classmethod
    def fit(cls, vectors: np.ndarray) -> Whitening:
        vectors = np.asarray(vectors, dtype=np.float64)
        mean = vectors.mean(axis=0)
        _, spread, basis = np.linalg.svd(vectors - mean, full_matrices=False)
        keep = spread > spread.max() * 1e-6 if spread.size else spread.astype(bool)  # drop null directions
        if not keep.any():  # a single vector (or identical ones): nothing to whiten, keep the space as it is
            return cls(mean=np.zeros(vectors.shape[1], np.float32), matrix=np.eye(vectors.shape[1], dtype=np.float32))
        matrix = basis[keep].T / spread[keep] * np.sqrt(len(vectors))
        return cls(mean=mean.astype(np.float32), matrix=matrix.astype(np.float32))

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        return ((np.asarray(vectors, dtype=np.float32) - self.mean) @ self.matrix).astype(np.float32)


def rows_with_vectors(E: np.ndarray) -> np.ndarray:
    """Indices of the genes whose table row is non-zero: the gene set."""
    return np.flatnonzero(np.any(np.asarray(E) != 0, axis=1))


def genes_with_vectors(X, E: np.ndarray) -> tuple[object, np.ndarray, np.ndarray]:
    """``(X[:, genes], E[genes], genes)`` for the gene set (:func:`rows_with_vectors`). The adaptor and the tasks
    built on it learn from these only (a zero row would still feed its expression through the MLP's biases, a
    library-size signal over every unselected gene)."""
    genes = rows_with_vectors(E)
    return X[:, genes], np.asarray(E, dtype=np.float32)[genes], genes


def cell_vectors(
    X,
    E: np.ndarray,
    *,
    conditioning: str = DEFAULT_CONDITIONING,
    whitening: Whitening | None = None,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> np.ndarray:
    """Vectors of log-normalised ``X`` (cells x genes) with table ``E`` aligned to its genes, before reduction.

    ``standard``: the expression-weighted sum over the gene set with the whitened table (``whitening`` fitted on
    the table's rows, or on ``E``'s non-zero rows when not given). ``paper``: the original ``wa``.
    """
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"conditioning must be one of {CONDITIONINGS}, not {conditioning!r}")
    if conditioning == "paper":
        return average_gene_vectors(X, E, mode="wa", progress=progress, cancel=cancel)
    X_set, E_set, _ = genes_with_vectors(X, E)
    whitening = whitening or Whitening.fit(E_set)
    # the sum is aa without its constant 1/G; after whitening no row is zero, so every gene-set gene counts
    summed = average_gene_vectors(X_set, whitening.apply(E_set), mode="aa", progress=progress, cancel=cancel)
    return summed * X_set.shape[1]


@dataclass(frozen=True)
class Reduction:
    """Principal components fitted on one set of cell vectors, applicable to another (a query)."""

    mean: np.ndarray
    components: np.ndarray  # (k, d)

    @classmethod
    def fit(cls, Z: np.ndarray, n_components: int = N_COMPONENTS, *, seed: int = 0) -> Reduction:
        from sklearn.decomposition import PCA

        Z = np.asarray(Z, dtype=np.float32)
        k = int(min(n_components, Z.shape[0] - 1, Z.shape[1]))
        if k < 1:
            return cls(mean=Z.mean(axis=0), components=np.eye(Z.shape[1], dtype=np.float32))
        pca = PCA(n_components=k, random_state=seed, svd_solver="full" if min(Z.shape) <= 500 else "auto").fit(Z)
        return cls(mean=pca.mean_.astype(np.float32), components=pca.components_.astype(np.float32))

    def apply(self, Z: np.ndarray, *, own_centre: bool = False) -> np.ndarray:
        """Project ``Z``; ``own_centre`` centres it on its own mean (removes a global shift between studies)."""
        Z = np.asarray(Z, dtype=np.float32)
        centre = Z.mean(axis=0) if own_centre else self.mean
        return ((Z - centre) @ self.components.T).astype(np.float32)


def conditioned_embedding(
    X,
    E: np.ndarray,
    *,
    conditioning: str = DEFAULT_CONDITIONING,
    seed: int = 0,
    whitening: Whitening | None = None,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> np.ndarray:
    """The scELMo embedding of one data set: :func:`cell_vectors`, reduced to :data:`N_COMPONENTS` principal
    components in the ``standard`` conditioning (``paper``: unreduced, as the original)."""
    vectors = cell_vectors(X, E, conditioning=conditioning, whitening=whitening, progress=progress, cancel=cancel)
    if conditioning == "paper":
        return vectors
    reduction = Reduction.fit(vectors, seed=seed)
    return reduction.apply(vectors)
