"""Batch-effect correction (METHOD.md §3.2), scored with scIB-style metrics on the combined object.

Methods, in one run:
* ``scELMo, samples integrated`` (the default; no labels): :func:`integrate_embedding`, each gene scaled within
  its sample with the make-up of the clusters all samples share, the smoothed scELMo space, then Harmony
  (harmonypy). Chosen by measurement (``benchmarks/integration.py``, table in ``docs/benchmarks.md``) among
  per-sample gene scaling and centring, with and without Harmony, and shift corrections within shared clusters.
* ``scELMo, uncorrected``: the scELMo embedding of all cells (``core.embedding.cell_vectors``); no batch
  information used.
* ``scELMo adaptor (batch-adversarial, labelled)``, only when labels are given: the fine-tuned adaptor trained
  on the labels with a gradient-reversal batch classifier (beyond the paper). All epochs are trained (no
  label-accuracy early stopping, which would ignore mixing), with a batch size that gives small data enough
  optimiser steps. It uses the labels (like scANVI), and is scored on the cells it was trained on, so its
  bio-conservation scores are optimistic.
* ``PCA``: the standard scanpy route (2,000 most variable genes, scaled, 50 components; the unintegrated
  reference for the PCR score).
* ``Harmony``: harmonypy on the PCA.

Without labels, each method gets the scores that need none (iLISI, PCR); with labels, every scIB-style score.

AnnData keys written: ``obsm['X_scelmo']``, ``obsm['X_scelmo_integrated']`` (the default),
``obsm['X_scelmo_baseline_pca']``, ``obsm['X_pca_harmony']``, with labels ``obsm['X_scelmo_adaptor_integrated']``,
and ``uns['scelmo']['integration']`` (metrics and settings).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import CancelFlag, check_cancel
from scelmo_desktop.core.data.io import require_obs_column
from scelmo_desktop.core.embedding import baselines
from scelmo_desktop.core.embedding.cell_vectors import (
    CLUSTER_MIN_CELLS,
    Reduction,
    conditioned_embedding,
    genes_with_vectors,
    shared_cluster_ids,
    smoothed_expression,
    space_settings,
)
from scelmo_desktop.core.keys import ADVERSARIAL_KEY, HARMONY_KEY, INTEGRATED_KEY, PCA_KEY, SCELMO_KEY, add_record
from scelmo_desktop.core.settings import DEFAULT_CONDITIONING, default
from scelmo_desktop.core.tasks import batch_metrics, cluster, metrics

DEFAULT_METHOD = (
    "the smoothed scELMo space with each gene scaled within its sample as if every sample had the same make-up "
    "of the first pass's clusters, then Harmony (harmonypy)"
)
SHARED_RESOLUTION = 1.0  # Leiden resolution of the first pass (the app's default clustering)
SHARED_MIN_CELLS = CLUSTER_MIN_CELLS  # a cluster is shared when every sample has at least this many cells in it
# the run integrates its samples by itself only when each holds this many cells: a sample's gene means and spreads
# are estimated from its own cells, and from a few dozen they are noise that costs clusters even where the samples
# differ in nothing (a one-cell sample scales every gene to 0); measured in docs/benchmarks.md ("Samples too small")
MIN_SAMPLE_CELLS = 100
METHODS = {
    INTEGRATED_KEY: "scELMo, samples integrated (default, no labels)",
    SCELMO_KEY: "scELMo, uncorrected",
    PCA_KEY: "PCA (scanpy route)",
    HARMONY_KEY: "Harmony (on PCA)",
    ADVERSARIAL_KEY: "scELMo adaptor (batch-adversarial, labelled)",
}


def harmony(pca: np.ndarray, batches, *, seed: int = 0) -> np.ndarray:
    """Harmony-corrected ``pca`` (cells x components, float32) for ``batches``, run by harmonypy with ``seed``."""
    import harmonypy

    frame = pd.DataFrame({"batch": np.asarray(batches).astype(str)})
    result = harmonypy.run_harmony(np.asarray(pca, dtype=np.float64), frame, "batch", verbose=False, random_state=seed)
    corrected = np.asarray(result.Z_corr)
    return (corrected if corrected.shape[0] == len(frame) else corrected.T).astype(np.float32)


def method_settings(n_cells: int) -> dict:
    """The default method's settings on ``n_cells`` cells, for provenance."""
    import harmonypy

    return {
        "space": "smoothed, each gene scaled within its batch as if every batch had the make-up of the shared clusters",
        **space_settings("smoothed", n_cells),
        "text_neighbour_graph": "either gene among the other's nearest, cosine of the whitened table",
        "shared_cluster_resolution": SHARED_RESOLUTION,
        "shared_cluster_min_cells": SHARED_MIN_CELLS,
        "harmonypy": getattr(harmonypy, "__version__", "unknown"),
    }


@dataclass
class IntegratedSpace:
    """The label-free integrated embedding and the clusters its per-sample scaling was matched on."""

    embedding: np.ndarray
    clusters: int  # clusters of the first pass
    shared: int  # of them, those every sample has SHARED_MIN_CELLS cells in
    shared_cells: float  # share of the cells in the shared clusters

    def record(self) -> dict:
        return {
            "first_pass_clusters": self.clusters,
            "shared_clusters": self.shared,
            "cells_in_shared_clusters": round(self.shared_cells, 4),
        }


def shared_clusters(embedding: np.ndarray, batches: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(Leiden cluster per cell of ``embedding`` at :data:`SHARED_RESOLUTION`; the same, -1 where the cluster is not
    one that every batch has :data:`SHARED_MIN_CELLS` cells in)."""
    import anndata as ad

    holder = ad.AnnData(np.zeros((len(embedding), 1), dtype=np.float32))
    holder.obsm["first_pass"] = np.asarray(embedding, dtype=np.float32)
    key = cluster.neighbors(holder, "first_pass", seed=seed)
    ids = cluster.leiden(holder, key, SHARED_RESOLUTION, seed=seed).astype(np.int64)
    return ids, np.where(np.isin(ids, shared_cluster_ids(ids, batches, SHARED_MIN_CELLS)), ids, -1)


def integrate_embedding(
    X, E: np.ndarray, batches, *, seed: int = 0, cancel: CancelFlag | None = None
) -> IntegratedSpace:
    """The label-free integrated scELMo space (:data:`DEFAULT_METHOD`) of log-normalised ``X`` (cells x genes,
    table ``E`` aligned to its genes) across ``batches``.

    Scaling each gene within its sample removes shifts that a sample puts on every cell type (Kang's interferon
    response), but a sample's gene means and spreads also follow its cell-type make-up, which differs between
    patients and studies, so plain per-sample scaling shifts the types of a monocyte-rich sample against those of
    a T-cell-rich one. A first pass (the smoothed space, Harmony, Leiden) finds clusters, and each sample is
    scaled as if it held their pooled make-up: a cluster is measured on the sample's own cells where it holds
    :data:`SHARED_MIN_CELLS` of them, and otherwise on the other samples' cells moved by this sample's shift on the
    shared clusters (so a type some samples lack neither carries others' shifts nor drops out of their spread;
    :class:`~scelmo_desktop.core.embedding.cell_vectors.MakeUp`). The record counts the clusters every sample
    shares."""
    X_set, E_set, _ = genes_with_vectors(X, E)
    batches = np.asarray(batches).astype(str)

    def corrected(vectors):
        embedding = Reduction.fit(vectors, seed=seed).apply(vectors)
        check_cancel(cancel)
        return harmony(embedding, batches, seed=seed)

    first = corrected(smoothed_expression(X_set, E_set, cancel=cancel))
    ids, shared = shared_clusters(first, batches, seed=seed)
    del first
    check_cancel(cancel)
    space = corrected(smoothed_expression(X_set, E_set, batches=batches, clusters=ids, cancel=cancel))
    n_shared = len(np.unique(shared[shared >= 0]))
    return IntegratedSpace(space, int(len(np.unique(ids))), n_shared, float(np.mean(shared >= 0)))


def _complete_column(adata, key: str, what: str) -> np.ndarray:
    """``obs[key]`` as strings; refuses a missing column or one with missing values."""
    require_obs_column(adata, key, what)
    if adata.obs[key].isna().any():
        raise ScelmoError(f"The {what} column '{key}' has missing values; fill or drop those cells.")
    return adata.obs[key].astype(str).to_numpy()


def small_samples(batches) -> dict[str, int]:
    """Sample -> cell count, for the samples of ``batches`` with fewer than :data:`MIN_SAMPLE_CELLS` cells."""
    names, counts = np.unique(np.asarray(batches).astype(str), return_counts=True)
    return {str(name): int(n) for name, n in zip(names, counts) if n < MIN_SAMPLE_CELLS}


def check_batches(adata, batch_key: str) -> np.ndarray:
    """The batches of ``obs[batch_key]`` as strings; refuses a missing or incomplete column, or a single batch."""
    batches = _complete_column(adata, batch_key, "batch")
    if len(np.unique(batches)) < 2:
        raise ScelmoError(f"obs['{batch_key}'] holds a single batch; integration needs at least two.")
    return batches


def check_columns(adata, batch_key: str, label_key: str | None):
    """(batches, labels or None) as strings, refusing a missing or incomplete column or a single batch."""
    batches = check_batches(adata, batch_key)
    if label_key is None:
        return batches, None
    return batches, _complete_column(adata, label_key, "label")


def score_embedding(
    adata, key: str, batches, labels, *, unintegrated: np.ndarray, seed: int = 0, cancel: CancelFlag | None = None
) -> dict:
    """scIB-style scores of ``obsm[key]``: with ``labels``, NMI/ARI (best-NMI Leiden), label ASW, cLISI, the five
    batch-removal scores and S_bio/S_batch/overall; without, the label-free batch scores (iLISI, PCR) and their
    S_batch. The kNN graph built for it is dropped, so no key is left behind."""
    X = adata.obsm[key]
    if labels is None:
        row = batch_metrics.label_free_removal(X, batches, X_unintegrated=unintegrated)
        row["S_batch"] = batch_metrics.aggregate(row)["S_batch"]  # no bio score, so no overall either
        return row
    clustered = cluster.leiden_on_embedding(adata, key, labels=labels, seed=seed, cancel=cancel)
    cluster.drop_graph(adata, f"{key}_neighbors")  # the scoring graph is not a result
    row = {
        "nmi": clustered.scores["nmi"],
        "ari": clustered.scores["ari"],
        "asw_label": metrics.silhouette_label(X, labels),
        "clisi": batch_metrics.clisi(X, labels),
    }
    row.update(batch_metrics.batch_removal(X, batches, labels, X_unintegrated=unintegrated))
    row.update(batch_metrics.aggregate(row))
    return row


def run_integration(
    adata,
    expression,
    alignment,
    *,
    batch_key: str,
    label_key: str | None = None,
    seed: int = 0,
    device: str = "cpu",
    epochs: int = default("epochs"),
    adversarial_weight: float = default("adversarial_weight"),
    batch_size: int | None = None,
    conditioning: str = DEFAULT_CONDITIONING,
    integrated_key: str = INTEGRATED_KEY,
    progress=None,
    cancel: CancelFlag | None = None,
) -> pd.DataFrame:
    """Embed, correct and score every method; returns one row per method (the scores of
    :func:`score_embedding`). The default, label-free, integrated embedding goes to ``obsm[integrated_key]``;
    with ``label_key``, the labelled adaptor's to ``obsm['X_scelmo_adaptor_integrated']``."""
    batches, labels = check_columns(adata, batch_key, label_key)
    report = progress or (lambda *a: None)
    steps = 4 if labels is None else 5
    report("integrate", 0, steps, "embeddings")
    adata.obsm[SCELMO_KEY] = conditioned_embedding(
        expression.matrix, alignment.matrix, conditioning=conditioning, seed=seed, cancel=cancel
    )
    check_cancel(cancel)
    report("integrate", 1, steps, "shared clusters, genes scaled per sample, then Harmony")
    space = integrate_embedding(expression.matrix, alignment.matrix, batches, seed=seed, cancel=cancel)
    adata.obsm[integrated_key] = space.embedding
    check_cancel(cancel)
    report("integrate", 2, steps, "baselines: PCA and Harmony on PCA")
    adata.obsm[PCA_KEY] = baselines.pca_embedding(expression.matrix, seed=seed)
    adata.obsm[HARMONY_KEY] = harmony(adata.obsm[PCA_KEY], batches, seed=seed)
    check_cancel(cancel)
    keys = {integrated_key: METHODS[INTEGRATED_KEY], **{k: v for k, v in METHODS.items() if k != INTEGRATED_KEY}}
    adaptor_record = {}
    if labels is None:
        del keys[ADVERSARIAL_KEY]
    else:
        report("integrate", 3, steps, "adaptor (batch-adversarial, labelled)")
        adaptor_record = adversarial_adaptor(
            adata,
            expression,
            alignment,
            batches,
            labels,
            seed=seed,
            device=device,
            epochs=epochs,
            adversarial_weight=adversarial_weight,
            batch_size=batch_size,
            progress=progress,
            cancel=cancel,
        )
    rows = []
    for key, name in keys.items():
        report("integrate", steps - 1, steps, f"scoring {name}")
        check_cancel(cancel)
        scores = score_embedding(
            adata, key, batches, labels, unintegrated=adata.obsm[PCA_KEY], seed=seed, cancel=cancel
        )
        rows.append({"method": name, "embedding": key, **scores})
    report("integrate", steps, steps, "done")
    table = pd.DataFrame(rows)
    add_record(
        adata,
        "integration",
        {
            "method": DEFAULT_METHOD,
            **method_settings(adata.n_obs),
            **space.record(),
            "batch_key": batch_key,
            "batches": sorted(set(batches)),
            "label_key": label_key or "none",
            "seed": seed,
            "conditioning": conditioning,
            "integrated_key": integrated_key,
            **adaptor_record,
        },
    )
    return table


def adversarial_adaptor(
    adata,
    expression,
    alignment,
    batches,
    labels,
    *,
    seed,
    device,
    epochs,
    adversarial_weight,
    batch_size,
    progress,
    cancel,
) -> dict:
    """Train the labelled batch-adversarial adaptor into ``obsm['X_scelmo_adaptor_integrated']``; its settings."""
    from scelmo_desktop.core.tasks.adaptor import auto_batch_size, train_adaptor

    X, E, genes = genes_with_vectors(expression.matrix, alignment.matrix)
    batch_size = batch_size or auto_batch_size(adata.n_obs)
    adaptor = train_adaptor(
        X,
        E,
        labels,
        genes=[expression.var_names[g] for g in genes],
        epochs=epochs,
        seed=seed,
        device=device,
        batches=batches,
        adversarial_weight=adversarial_weight,
        batch_size=batch_size,
        early_stopping=False,
        cancel=cancel,
        progress=functools.partial(progress, "train adaptor") if progress else None,
    )
    z = adaptor.embed(X, E)
    # z is a sum over genes, so its length follows the cell's total expression; the adaptor is trained on its
    # direction (L2-normalised in the triplet loss and the batch classifier), so that is what is kept
    adata.obsm[ADVERSARIAL_KEY] = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    return {
        "adaptor_key": ADVERSARIAL_KEY,
        "epochs": epochs,
        "batch_size": batch_size,
        "adaptor_seconds": round(adaptor.seconds, 2),
        "adaptor_best_epoch": adaptor.best_epoch,
        "adversarial_weight": adversarial_weight,
        "adaptor_genes": int(len(genes)),
    }
