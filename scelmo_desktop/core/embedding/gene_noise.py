"""How much of each gene's variation is noise, estimated without labels: it sets how strongly each gene borrows
from its text neighbours in the ``smoothed`` cell space (:func:`~scelmo_desktop.core.embedding.cell_vectors.
smoothed_expression`).

A prior should weigh most where a measurement is least reliable. Two estimates of a gene's noise share, each
blind to one kind of signal, and the smaller is kept (a gene is protected when either sees signal in it):

* **outside the main axes** (:func:`share_outside_components`): the share of the scaled gene's variance that its
  first :data:`COMPONENTS` principal components do not reproduce. Genes that move with the file's main axes of
  variation (the markers of its common cell types) are reliable; it is blind to a rare type's markers, which no
  leading component may carry.
* **at the noise floor of its mean** (:func:`share_at_mean_floor`): the variance a gene of its mean expression has
  at least (a low quantile of the variances of genes of similar mean: Poisson-like sampling noise grows with the
  mean), as a share of its own. A rare type's marker varies far above that floor; it is blind to a gene whose
  excess variance is noise of its own (dropouts in full-length data, one odd cell).

Measured on ten real labelled files (``benchmarks/space_candidates.py``, ``docs/benchmarks.md``); each estimate
alone lost on one kind of file (outside the main axes: a pancreas file's rare types; at the floor: a TPM tumour
file)."""

from __future__ import annotations

import numpy as np

COMPONENTS = 50  # as many as the cell space keeps
FLOOR_BINS, FLOOR_QUANTILE = 20, 0.1  # genes ranked by mean in this many equal-count bins; the floor's quantile
FIT_CELLS = 20_000  # the principal components of larger files are fitted on a random subsample of this many cells


def share_outside_components(scaled: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Per column of ``scaled`` (cells x genes, each gene centred and scaled): the share of its variance outside
    its first :data:`COMPONENTS` principal components, in [0, 1] (1 for a constant gene, or when there are too few
    cells for a component; 0 when there are no more genes than components)."""
    from sklearn.decomposition import PCA

    scaled = np.asarray(scaled, dtype=np.float32)
    if len(scaled) > FIT_CELLS:
        scaled = scaled[np.sort(np.random.default_rng(seed).choice(len(scaled), FIT_CELLS, replace=False))]
    k = int(min(COMPONENTS, scaled.shape[0] - 1, scaled.shape[1]))
    total = scaled.var(axis=0, ddof=1) if len(scaled) > 1 else np.zeros(scaled.shape[1])
    if k < 1:
        return np.ones(scaled.shape[1], dtype=np.float64)
    if k >= scaled.shape[1]:  # as many components as genes reproduce every gene
        return np.zeros(scaled.shape[1], dtype=np.float64)
    solver = "full" if min(scaled.shape) <= 500 else "auto"  # as the cell space's own reduction
    pca = PCA(n_components=k, random_state=seed, svd_solver=solver).fit(scaled)
    reproduced = (pca.explained_variance_[:, None] * pca.components_.astype(np.float64) ** 2).sum(axis=0)
    inside = np.divide(reproduced, total, out=np.zeros_like(reproduced), where=total > 1e-12)
    outside = 1.0 - np.clip(inside, 0.0, 1.0)
    return np.where(outside < 1e-6, 0.0, outside)  # float residue of a fully reproduced gene is none


def share_at_mean_floor(mean: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """Per gene (its ``mean`` and ``variance`` of log-normalised expression): the noise floor of genes of its mean
    (the :data:`FLOOR_QUANTILE` quantile of the variances in its bin of :data:`FLOOR_BINS` equal-count bins by
    mean) as a share of its own variance, in [0, 1] (1 for a constant gene)."""
    mean, variance = np.asarray(mean, dtype=np.float64), np.asarray(variance, dtype=np.float64)
    floor = np.empty_like(variance)
    for members in np.array_split(np.argsort(mean, kind="stable"), min(FLOOR_BINS, len(mean))):
        floor[members] = np.quantile(variance[members], FLOOR_QUANTILE)
    share = np.divide(floor, variance, out=np.ones_like(variance), where=variance > 1e-12)
    return np.clip(share, 0.0, 1.0)


def noise_share(scaled: np.ndarray, mean: np.ndarray, variance: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Per gene, the smaller of :func:`share_outside_components` (of ``scaled``) and :func:`share_at_mean_floor`
    (of the log-normalised ``mean`` and ``variance``)."""
    return np.minimum(share_outside_components(scaled, seed=seed), share_at_mean_floor(mean, variance))


def gene_weights(share: np.ndarray, weight: float) -> np.ndarray:
    """Each gene's smoothing weight: proportional to its noise ``share``, their mean ``weight`` (each at most 1);
    every gene gets ``weight`` when no share is above 0."""
    share = np.asarray(share, dtype=np.float64)
    if weight <= 0 or share.mean() <= 0:
        return np.full(len(share), max(weight, 0.0), dtype=np.float32)
    return np.clip(weight * share / share.mean(), 0.0, 1.0).astype(np.float32)


def coherence_discount(correlation: np.ndarray) -> np.ndarray:
    """Per gene, ``1 - r^2`` (``r`` its correlation over the cells with its text neighbours' mean, below 0 taken as
    0): the share of its noise share it keeps as a weight. A gene that already moves with the genes described like
    it belongs to a module the cells express together (an interferon or stress programme, a type's marker set);
    borrowing their mean adds little to what it measures, and pulls the module into one noise-free axis that the
    principal components then split cells along. Its noise is averaged out by the module's own size."""
    r = np.clip(np.nan_to_num(np.asarray(correlation, dtype=np.float64)), 0.0, 1.0)
    return (1.0 - r * r).astype(np.float32)


def shrinkage(noise: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """The weight ``w`` per gene that makes ``(1 - w) x + w m`` the best estimate (least mean squared error) of a
    gene's signal ``s``, where ``x = s + n`` is the gene (its ``noise`` variance ``E[n^2]``) and ``m`` its text
    neighbours' mean (``gap``: ``E[(x - m)^2]``): ``E[n^2] / E[(x - m)^2]``, in [0, 1], when ``n`` is independent
    of ``s`` and ``m``. A gene whose neighbours track it borrows much; one whose neighbours go their own way (a
    sister marker of another cell type, described alike) borrows little; 0 when the gap is 0."""
    noise, gap = np.asarray(noise, dtype=np.float64), np.asarray(gap, dtype=np.float64)
    weight = np.divide(noise, gap, out=np.zeros_like(gap), where=gap > 1e-12)
    return np.clip(weight, 0.0, 1.0).astype(np.float32)
