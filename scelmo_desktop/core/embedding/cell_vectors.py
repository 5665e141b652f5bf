"""Cell vectors as every task uses them: the scELMo average (``cell_embedding``) plus its conditioning.

Conditionings, chosen by measurement on raw PBMC 3k, Kang 2018 (whole and each of its two runs), pbmc68k_reduced and five
more real labelled sets
(``benchmarks/space_candidates.py`` and ``benchmarks/real_data.py``; figures in ``docs/benchmarks.md``):

* ``smoothed`` (default): the text table as a prior over the scaled expression. The log-normalised gene set is
  scaled as the scanpy route scales it (each gene centred, unit variance, clipped at 10), then each gene is mixed
  with the mean of its text neighbours (:func:`text_neighbour_graph`: genes either of which is among the other's
  :data:`SMOOTHING_NEIGHBOURS` nearest by cosine of the whitened text vectors), with a mean weight of
  :data:`SMOOTHING_WEIGHT` (falling as 1 / cells above :data:`SMOOTHING_FULL_CELLS` cells,
  :func:`smoothing_weight`) shared among the genes by their noise share (:mod:`gene_noise`: a gene that carries
  the file's structure borrows little, a noisy one more), and the cells are reduced to :data:`N_COMPONENTS`
  principal components. At weight 0 it is the scanpy route. Of the candidates measured (the ``standard`` sum
  below, the same sum on scaled genes, text and expression dimensions side by side, one-way, mutual and
  cosine-weighted kernels on raw or whitened text vectors, several weights and neighbour counts, data-confirmed
  text neighbours, every gene at one weight, learned weights, weights discounted by co-expression with the text
  neighbours), it is the one above the scanpy route in mean NMI on all ten real files measured (ARI within its
  noise on two; behind on one file's QC'd form, ``docs/benchmarks.md``); the ``standard`` sum trails it on Kang
  and on a TPM tumour set, and leads on small pancreas subsamples. A random table in the same kernel scores close
  to it on some sets and far lower on the T-cell and pancreas sets: the gain over the scanpy route comes from the text and from the
  noise-weighted smoothing itself, set by set, said plainly in the benchmark table.
* ``standard``: on the log-normalised gene set, each cell is the expression-weighted sum of its genes'
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
from scelmo_desktop.core.embedding import gene_noise
from scelmo_desktop.core.embedding.cell_embedding import average_gene_vectors
from scelmo_desktop.core.settings import CONDITIONINGS, DEFAULT_CONDITIONING

N_COMPONENTS = 50
SMOOTHING_NEIGHBOURS, SMOOTHING_WEIGHT = 10, 0.35
# the text prior keeps its full weight up to this many cells and falls as 1 / cells above (smoothing_weight)
SMOOTHING_FULL_CELLS = 3000
SCALE_CLIP = 10.0  # scanpy's route: sc.pp.scale(max_value=10)
CLUSTER_MIN_CELLS = 10  # a sample's own moments of a cluster need this many of its cells in it
_CHUNK_CELLS = 4096  # cells densified at a time while scaling
# how smoothed_expression shares the prior's weight among genes (the first is the default)
GENE_WEIGHTINGS = ("noise", "coherence", "alike", "learned")


@dataclass(frozen=True)
class Whitening:
    """An affine map of gene vectors, ``(e - mean) @ matrix``, fitted on a table's rows so that the mapped
    rows have zero mean and identity covariance. The same map applies to every file embedded with that table."""

    mean: np.ndarray
    matrix: np.ndarray

    @classmethod
    def fit(cls, vectors: np.ndarray, max_directions: int | None = None) -> Whitening:
        """``max_directions`` keeps only the table's leading directions (all non-null ones when ``None``)."""
        vectors = np.asarray(vectors, dtype=np.float64)
        mean = vectors.mean(axis=0)
        _, spread, basis = np.linalg.svd(vectors - mean, full_matrices=False)
        keep = spread > spread.max() * 1e-6 if spread.size else spread.astype(bool)  # drop null directions
        if max_directions is not None:
            keep[max(int(max_directions), 1) :] = False
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


def text_neighbour_graph(E: np.ndarray, k: int = SMOOTHING_NEIGHBOURS):
    """Sparse (genes x genes) matrix whose row ``i`` averages gene ``i``'s text neighbours (``i`` itself left
    out): ``X @ graph.T`` replaces each gene by its text neighbours' mean.

    Two genes are neighbours when either is among the other's ``k`` nearest by cosine of the **whitened** table
    rows (:class:`Whitening`, fitted on ``E``'s rows over at most half as many directions as there are genes, so
    that whitening never makes every pair of genes equally far apart). Why whitened: fact-sheet embeddings share a
    large common component (the sheets' common wording), which decides raw cosines; after whitening the nearest
    descriptions are those that share what is specific to each gene. Why either way (a symmetric relation): a gene
    whose description is generic is everyone's nearest but few genes are its own, and a one-way graph let such
    hub genes pull on many genes without ever being pulled back. Both choices were measured on eight real sets
    (``docs/benchmarks.md``)."""
    import scipy.sparse as sp

    E = np.asarray(E, dtype=np.float32)
    n = len(E)
    k = int(min(k, n - 1))
    if k < 1:
        return sp.csr_matrix((n, n), dtype=np.float32)
    white = Whitening.fit(E, max_directions=n // 2).apply(E)
    unit = white / np.maximum(np.linalg.norm(white, axis=1, keepdims=True), 1e-12)
    neighbours = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, 2048):  # a block of similarities at a time: genes x genes may not fit at once
        similarity = unit[start : start + 2048] @ unit.T
        rows = np.arange(len(similarity))
        similarity[rows, rows + start] = -np.inf
        neighbours[start : start + len(similarity)] = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    rows = np.repeat(np.arange(n), k)
    nearest = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, neighbours.ravel())), shape=(n, n))
    either_way = nearest.maximum(nearest.T).tocsr()  # no diagonal: a gene's own similarity was set to -inf
    counts = np.asarray(either_way.sum(axis=1), dtype=np.float32).ravel()
    return (sp.diags(1.0 / np.maximum(counts, 1.0)) @ either_way).astype(np.float32).tocsr()


def smoothing_weight(n_cells: int) -> float:
    """The weight of the text prior for a file of ``n_cells`` cells: :data:`SMOOTHING_WEIGHT` up to
    :data:`SMOOTHING_FULL_CELLS` cells, then :data:`SMOOTHING_WEIGHT` x :data:`SMOOTHING_FULL_CELLS` / ``n_cells``.

    Why it falls: a prior should count for less as the data grow. The smoothing trades a bias (types that differ
    by a few genes, such as NK and cytotoxic T cells, are blurred when their genes borrow from each other) for less
    noise, and many cells leave the route's principal components less noisy. Measured: on Kang 2018's two 10x
    runs, each alone (6–7 thousand cells; the one large labelled family offline), the full weight is behind the
    scanpy route and this one level with it, while every set of up to 2,700 cells gains at the full weight; all of
    Kang (13,576 cells) is above the route at either weight, so size alone does not explain it
    (``docs/benchmarks.md``, "The prior's weight and the number of cells")."""
    return SMOOTHING_WEIGHT * min(1.0, SMOOTHING_FULL_CELLS / max(int(n_cells), 1))


def space_settings(conditioning: str, n_cells: int) -> dict:
    """What made a file's cell space, for provenance: the conditioning and, when ``smoothed``, the prior's mean
    weight for ``n_cells`` cells (:func:`smoothing_weight`), how it is shared among genes, the text neighbours and
    the components kept."""
    if conditioning != "smoothed":
        return {"conditioning": conditioning}
    return {
        "conditioning": conditioning,
        "smoothing_weight": round(smoothing_weight(n_cells), 4),
        "gene_weights": "by noise share (gene_noise.noise_share), their mean the smoothing weight",
        "smoothing_full_weight": SMOOTHING_WEIGHT,
        "smoothing_full_cells": SMOOTHING_FULL_CELLS,
        "text_neighbours": SMOOTHING_NEIGHBOURS,
        "components": N_COMPONENTS,
    }


def _mean_variance(rows) -> tuple[np.ndarray, np.ndarray]:
    """(mean, variance) of each column of ``rows``, float64."""
    import scipy.sparse as sp

    mean = np.asarray(rows.mean(axis=0), dtype=np.float64).ravel()
    squares = (
        rows.multiply(rows).mean(axis=0) if sp.issparse(rows) else np.mean(np.square(rows, dtype=np.float64), axis=0)
    )
    return mean, np.maximum(np.asarray(squares, dtype=np.float64).ravel() - mean**2, 0.0)


def shared_cluster_ids(clusters: np.ndarray, groups: np.ndarray, min_cells: int = CLUSTER_MIN_CELLS) -> list[int]:
    """The cluster ids (0 or above) of which every group of ``groups`` holds at least ``min_cells`` cells."""
    names = np.unique(groups)
    return [
        int(c)
        for c in np.unique(clusters[clusters >= 0])
        if all(((clusters == c) & (groups == g)).sum() >= min_cells for g in names)
    ]


@dataclass(frozen=True)
class MakeUp:
    """The pooled cell-type make-up every sample is scaled as if it held, and each sample's (mean, variance) per
    gene under it (:meth:`moments`).

    ``shares``: each first-pass cluster's share of all cells. ``own``: (sample, cluster) -> (mean, variance) where
    the sample holds ``min_cells`` cells of the cluster. ``shifts``: each sample's gene shift, measured on the
    clusters every sample holds ``min_cells`` of (zero when there is none). ``stand_in``: each cluster's pooled
    (mean, variance) with every sample's shift taken out."""

    shares: dict
    own: dict
    shifts: dict
    stand_in: dict

    @classmethod
    def of(cls, X, clusters: np.ndarray, groups: np.ndarray, min_cells: int = CLUSTER_MIN_CELLS) -> MakeUp | None:
        """From ``clusters`` (an id per row of ``X``, below 0 for none) and ``groups`` (the sample of each row);
        None when no cell has a cluster."""
        ids, counts = np.unique(clusters[clusters >= 0], return_counts=True)
        if not len(ids):
            return None
        shares = {int(c): float(n) / counts.sum() for c, n in zip(ids, counts)}
        samples = np.unique(groups)
        holders = {c: {} for c in shares}  # cluster -> sample -> its cell count there
        moments = {}  # (sample, cluster) -> (mean, variance)
        for g in samples:
            for c in shares:
                members = (groups == g) & (clusters == c)
                if members.any():
                    holders[c][g], moments[g, c] = int(members.sum()), _mean_variance(X[members])
        shared = shared_cluster_ids(clusters, groups, min_cells)
        pooled_mean = {
            c: sum(n * moments[g, c][0] for g, n in held.items()) / counts[i]
            for i, (c, held) in enumerate(holders.items())
        }
        weight = sum(shares[c] for c in shared)
        shifts = {
            g: sum(shares[c] * (moments[g, c][0] - pooled_mean[c]) for c in shared) / weight if shared else 0.0
            for g in samples
        }
        stand_in = {}
        for i, (c, held) in enumerate(holders.items()):
            mean = sum(n * (moments[g, c][0] - shifts[g]) for g, n in held.items()) / counts[i]
            variance = sum(n * (moments[g, c][1] + (moments[g, c][0] - shifts[g] - mean) ** 2) for g, n in held.items())
            stand_in[c] = (mean, variance / counts[i])
        own = {(g, c): moments[g, c] for c, held in holders.items() for g, n in held.items() if n >= min_cells}
        return cls(shares=shares, own=own, shifts=shifts, stand_in=stand_in)

    def moments(self, sample) -> tuple[np.ndarray, np.ndarray]:
        """(mean, variance) per gene of ``sample`` as if it held this make-up. A cluster it holds enough cells of
        is measured on them; any other enters with its stand-in moved by the sample's shift: leaving it out would
        measure the sample's spread on the other types only (a gene of the missing type would then be scaled by a
        spread it hardly has), and taking it as pooled would mix other samples' shifts into this one's."""
        parts = {
            c: self.own.get((sample, c), (self.stand_in[c][0] + self.shifts[sample], self.stand_in[c][1]))
            for c in self.shares
        }
        mean = sum(self.shares[c] * m for c, (m, _) in parts.items())
        variance = sum(self.shares[c] * (v + (m - mean) ** 2) for c, (m, v) in parts.items())
        return mean, variance


def _inverse_std(variance: np.ndarray) -> np.ndarray:
    """1 / standard deviation; constant genes get 0 (they scale to 0)."""
    std = np.sqrt(np.maximum(variance, 0.0))
    return np.where(std > 1e-12, 1.0 / np.maximum(std, 1e-12), 0.0).astype(np.float32)


def _noise_share(X, scaled: np.ndarray) -> np.ndarray:
    """Each gene's noise share (:func:`~scelmo_desktop.core.embedding.gene_noise.noise_share`), measured on
    ``scaled`` and on the log-normalised ``X``."""
    return gene_noise.noise_share(scaled, *_mean_variance(X))


def noise_weights(X, scaled: np.ndarray, weight: float) -> np.ndarray:
    """Each gene's smoothing weight by its noise share (:func:`_noise_share`; :func:`~scelmo_desktop.core.embedding.
    gene_noise.gene_weights`, their mean ``weight``)."""
    return gene_noise.gene_weights(_noise_share(X, scaled), weight)


def neighbour_correlation(scaled: np.ndarray, graph) -> np.ndarray:
    """Per gene, the correlation over the cells of ``scaled`` between the gene and its text neighbours' mean
    (``graph``: :func:`text_neighbour_graph`); 0 for a constant gene or one with no neighbours."""
    n_genes = scaled.shape[1]
    sums = {name: np.zeros(n_genes, dtype=np.float64) for name in ("x", "m", "xx", "mm", "xm")}
    for start in range(0, len(scaled), _CHUNK_CELLS):
        x = scaled[start : start + _CHUNK_CELLS].astype(np.float64)
        m = np.asarray((graph @ x.T).T)
        for name, values in (("x", x), ("m", m), ("xx", x * x), ("mm", m * m), ("xm", x * m)):
            sums[name] += values.sum(axis=0)
    n = max(len(scaled), 1)
    covariance = sums["xm"] / n - sums["x"] * sums["m"] / n**2
    spread = np.sqrt(
        np.maximum(sums["xx"] / n - (sums["x"] / n) ** 2, 0) * np.maximum(sums["mm"] / n - (sums["m"] / n) ** 2, 0)
    )
    return np.divide(covariance, spread, out=np.zeros(n_genes), where=spread > 1e-12)


def coherence_weights(X, scaled: np.ndarray, weight: float, graph) -> np.ndarray:
    """Each gene's smoothing weight by its noise share (:func:`_noise_share`) discounted by how much it already
    moves with its text neighbours (:func:`~scelmo_desktop.core.embedding.gene_noise.coherence_discount` of
    :func:`neighbour_correlation`), their mean ``weight``."""
    discount = gene_noise.coherence_discount(neighbour_correlation(scaled, graph))
    return gene_noise.gene_weights(_noise_share(X, scaled) * discount, weight)


def shrinkage_weights(X, scaled: np.ndarray, graph) -> np.ndarray:
    """Each gene's smoothing weight learned from the file: the share of its text neighbours' mean that best
    estimates its signal (:func:`~scelmo_desktop.core.embedding.gene_noise.shrinkage`: its noise variance over the
    mean squared gap between the gene and that mean, over the cells of ``scaled``); the noise share as
    :func:`noise_weights` takes it (:func:`_noise_share`). ``graph``: :func:`text_neighbour_graph`."""
    gap = np.zeros(scaled.shape[1], dtype=np.float64)
    for start in range(0, len(scaled), _CHUNK_CELLS):
        block = scaled[start : start + _CHUNK_CELLS]
        gap += np.square(block - np.asarray((graph @ block.T).T)).sum(axis=0, dtype=np.float64)
    variance = scaled.var(axis=0, dtype=np.float64)
    noise = _noise_share(X, scaled) * variance
    return gene_noise.shrinkage(noise, gap / max(len(scaled), 1))


def text_mixing(E: np.ndarray, per_gene: np.ndarray, graph=None):
    """Sparse (genes x genes) ``mixing``: ``scaled @ mixing`` keeps ``1 - per_gene[g]`` of gene ``g`` and takes
    ``per_gene[g]`` of its text neighbours' mean (``graph``: :func:`text_neighbour_graph` of ``E``)."""
    import scipy.sparse as sp

    graph = text_neighbour_graph(E) if graph is None else graph
    return (sp.diags(1.0 - per_gene) + graph.T @ sp.diags(per_gene)).astype(np.float32).tocsr()


def smoothed_expression(
    X,
    E: np.ndarray,
    *,
    weight: float | None = None,
    gene_weights: str = "noise",
    batches=None,
    clusters: np.ndarray | None = None,
    cancel: CancelFlag | None = None,
) -> np.ndarray:
    """Dense (cells x genes) float32: ``X`` (log-normalised, the gene set) scaled per gene (within each batch of
    ``batches`` when given: a gene's shift between samples is then removed with its spread), clipped at
    :data:`SCALE_CLIP`, and mixed with its text neighbours' mean (:func:`text_neighbour_graph` of ``E``).

    ``weight`` (None: :func:`smoothing_weight` of the number of cells) is the mean weight of the neighbours' mean.
    ``gene_weights`` shares it among the genes: ``noise`` (the default) in proportion to each gene's noise share
    (:func:`~scelmo_desktop.core.embedding.gene_noise.noise_share`, measured on this file: genes that carry the
    file's structure borrow little, noisy ones more); ``coherence``: the same shares times ``1 - r^2`` of each
    gene's correlation with its text neighbours' mean (:func:`coherence_weights`; measured as a candidate, not the
    default: ``docs/benchmarks.md``, "Genes that move with their text neighbours"); ``alike``: every gene gets
    ``weight``; ``learned``: each gene's weight learned from the file (:func:`shrinkage_weights`), times
    ``weight`` / :data:`SMOOTHING_WEIGHT` (measured as a candidate, not the default: ``docs/benchmarks.md``, "A learned per-gene weight").

    ``clusters`` (with ``batches``: a first-pass cluster id per cell, below 0 for none) measures each batch's mean
    and spread as if it held the pooled make-up of those clusters (:class:`MakeUp`), so that samples that differ in
    cell-type make-up are not scaled by it; a cluster a batch holds fewer than :data:`CLUSTER_MIN_CELLS` cells of
    enters that batch's moments with its pooled ones, moved by the batch's shift on the clusters every batch
    shares."""
    import scipy.sparse as sp

    from scelmo_desktop.core._infra.jobs import check_cancel

    if gene_weights not in GENE_WEIGHTINGS:
        raise ValueError(f"gene_weights must be one of {GENE_WEIGHTINGS}, not {gene_weights!r}")
    sparse = sp.issparse(X)
    X = sp.csr_matrix(X, dtype=np.float32) if sparse else np.asarray(X, dtype=np.float32)
    groups = np.zeros(X.shape[0], dtype=np.int64) if batches is None else np.unique(batches, return_inverse=True)[1]
    weight = smoothing_weight(X.shape[0]) if weight is None else weight
    out = np.empty(X.shape, dtype=np.float32)
    ids = None if clusters is None else np.asarray(clusters)
    make_up = None if ids is None else MakeUp.of(X, ids, groups)
    for group in np.unique(groups):
        cells = np.flatnonzero(groups == group)
        mean, variance = _mean_variance(X[cells]) if make_up is None else make_up.moments(group)
        mean, inverse = np.asarray(mean, dtype=np.float32), _inverse_std(variance)
        for start in range(0, len(cells), _CHUNK_CELLS):
            check_cancel(cancel)
            rows = cells[start : start + _CHUNK_CELLS]
            block = X[rows].toarray() if sparse else np.array(X[rows], dtype=np.float32)
            out[rows] = np.clip((block - mean) * inverse, -SCALE_CLIP, SCALE_CLIP)
    if weight <= 0:
        return out
    graph = text_neighbour_graph(E)
    if gene_weights == "learned":  # the prior counts for less as the data grow, as the mean weight does
        per_gene = np.minimum(shrinkage_weights(X, out, graph) * np.float32(weight / SMOOTHING_WEIGHT), 1.0)
    elif gene_weights == "coherence":
        per_gene = coherence_weights(X, out, weight, graph)
    elif gene_weights == "noise":
        per_gene = noise_weights(X, out, weight)
    else:
        per_gene = np.full(X.shape[1], weight, dtype=np.float32)
    mixing = text_mixing(E, per_gene, graph)
    for start in range(0, X.shape[0], _CHUNK_CELLS):
        check_cancel(cancel)
        block = out[start : start + _CHUNK_CELLS]
        out[start : start + _CHUNK_CELLS] = np.asarray((mixing.T @ block.T).T, dtype=np.float32)
    return out


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

    ``smoothed``: :func:`smoothed_expression` of the gene set (one column per gene; ``whitening`` is not used).
    ``standard``: the expression-weighted sum over the gene set with the whitened table (``whitening`` fitted on
    the table's rows, or on ``E``'s non-zero rows when not given). ``paper``: the original ``wa``.
    """
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"conditioning must be one of {CONDITIONINGS}, not {conditioning!r}")
    if conditioning == "paper":
        return average_gene_vectors(X, E, mode="wa", progress=progress, cancel=cancel)
    X_set, E_set, _ = genes_with_vectors(X, E)
    if conditioning == "smoothed":
        return smoothed_expression(X_set, E_set, cancel=cancel)
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
    components in the ``smoothed`` and ``standard`` conditionings (``paper``: unreduced, as the original)."""
    vectors = cell_vectors(X, E, conditioning=conditioning, whitening=whitening, progress=progress, cancel=cancel)
    if conditioning == "paper":
        return vectors
    reduction = Reduction.fit(vectors, seed=seed)
    return reduction.apply(vectors)
