"""Batch-effect correction (METHOD.md §3.2), scored with scIB-style metrics on the combined object.

Methods, in one run:
* ``scELMo (zero-shot)``: the scELMo embedding of all cells (``core.embedding.cell_vectors``); no training, no batch
  information used.
* ``scELMo adaptor (batch-adversarial)``: the fine-tuned adaptor trained on the labels with a
  gradient-reversal batch classifier (beyond the paper): labels kept apart, batches made indistinguishable.
  All epochs are trained (no label-accuracy early stopping, which would ignore mixing), with a batch size
  that gives small data enough optimiser steps. It uses the labels (like scANVI), and is scored on the cells
  it was trained on, so its bio-conservation scores are optimistic.
* ``PCA``: the standard scanpy route (2,000 most variable genes, scaled, 50 components; the unintegrated
  reference for the PCR score).
* ``Harmony``: harmonypy on the PCA.

AnnData keys written: ``obsm['X_scelmo']``, ``obsm['X_scelmo_integrated']``, ``obsm['X_scelmo_baseline_pca']``,
``obsm['X_pca_harmony']`` and ``uns['scelmo']['integration']`` (metrics and settings).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import CancelFlag, check_cancel
from scelmo_desktop.core.data.io import require_obs_column
from scelmo_desktop.core.embedding import baselines
from scelmo_desktop.core.embedding.cell_vectors import conditioned_embedding, genes_with_vectors
from scelmo_desktop.core.keys import HARMONY_KEY, INTEGRATED_KEY, PCA_KEY, SCELMO_KEY, add_record
from scelmo_desktop.core.settings import DEFAULT_CONDITIONING, default
from scelmo_desktop.core.tasks import batch_metrics, cluster, metrics

METHODS = {
    SCELMO_KEY: "scELMo (zero-shot)",
    INTEGRATED_KEY: "scELMo adaptor (batch-adversarial)",
    PCA_KEY: "PCA (scanpy route)",
    HARMONY_KEY: "Harmony (on PCA)",
}


def harmony(pca: np.ndarray, batches, *, seed: int = 0) -> np.ndarray:
    """Harmony-corrected ``pca`` (cells x components, float32) for ``batches``, run by harmonypy with ``seed``."""
    import harmonypy

    frame = pd.DataFrame({"batch": np.asarray(batches).astype(str)})
    result = harmonypy.run_harmony(np.asarray(pca, dtype=np.float64), frame, "batch", verbose=False, random_state=seed)
    corrected = np.asarray(result.Z_corr)
    return (corrected if corrected.shape[0] == len(frame) else corrected.T).astype(np.float32)


def check_columns(adata, batch_key: str, label_key: str):
    """Refuse missing or incomplete batch/label columns, or a single batch; returns (batches, labels) as strings."""
    for key, what in ((batch_key, "batch"), (label_key, "label")):
        require_obs_column(adata, key, what)
        if adata.obs[key].isna().any():
            raise ScelmoError(f"The {what} column '{key}' has missing values; fill or drop those cells.")
    batches = adata.obs[batch_key].astype(str).to_numpy()
    if len(np.unique(batches)) < 2:
        raise ScelmoError(f"obs['{batch_key}'] holds a single batch; integration needs at least two.")
    return batches, adata.obs[label_key].astype(str).to_numpy()


def score_embedding(
    adata, key: str, batches, labels, *, unintegrated: np.ndarray, seed: int = 0, cancel: CancelFlag | None = None
) -> dict:
    """scIB-style scores of ``obsm[key]``: NMI/ARI (best-NMI Leiden), label ASW, cLISI, the five batch-removal
    scores and S_bio/S_batch/overall. The kNN graph built for it is dropped, so no key is left behind."""
    X = adata.obsm[key]
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
    label_key: str,
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
    """Embed, correct and score every method; returns one row per method (metrics + S_bio/S_batch/overall).
    The adaptor's corrected embedding goes to ``obsm[integrated_key]``."""
    from scelmo_desktop.core.tasks.adaptor import auto_batch_size, train_adaptor

    batches, labels = check_columns(adata, batch_key, label_key)
    report = progress or (lambda *a: None)
    report("integrate", 0, 4, "embeddings")
    adata.obsm[SCELMO_KEY] = conditioned_embedding(
        expression.matrix, alignment.matrix, conditioning=conditioning, seed=seed, cancel=cancel
    )
    adata.obsm[PCA_KEY] = baselines.pca_embedding(expression.matrix, seed=seed)
    adata.obsm[HARMONY_KEY] = harmony(adata.obsm[PCA_KEY], batches, seed=seed)
    check_cancel(cancel)
    report("integrate", 1, 4, "adaptor (batch-adversarial)")
    X, E, genes = genes_with_vectors(expression.matrix, alignment.matrix)
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
        batch_size=batch_size or auto_batch_size(adata.n_obs),
        early_stopping=False,
        cancel=cancel,
        progress=functools.partial(report, "train adaptor") if progress else None,
    )
    z = adaptor.embed(X, E)
    # z is a sum over genes, so its length follows the cell's total expression; the adaptor is trained on its
    # direction (L2-normalised in the triplet loss and the batch classifier), so that is what is kept
    adata.obsm[integrated_key] = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    rows = []
    methods = {integrated_key if key == INTEGRATED_KEY else key: name for key, name in METHODS.items()}
    for key, name in methods.items():
        report("integrate", 2, 4, f"scoring {name}")
        check_cancel(cancel)
        rows.append(
            {
                "method": name,
                "embedding": key,
                **score_embedding(
                    adata, key, batches, labels, unintegrated=adata.obsm[PCA_KEY], seed=seed, cancel=cancel
                ),
            }
        )
    report("integrate", 4, 4, "done")
    table = pd.DataFrame(rows)
    add_record(
        adata,
        "integration",
        {
            "batch_key": batch_key,
            "label_key": label_key,
            "seed": seed,
            "epochs": epochs,
            "batch_size": batch_size or auto_batch_size(adata.n_obs),
            "adaptor_seconds": round(adaptor.seconds, 2),
            "adaptor_best_epoch": adaptor.best_epoch,
            "adversarial_weight": adversarial_weight,
            "conditioning": conditioning,
            "adaptor_genes": int(len(genes)),
            "integrated_key": integrated_key,
        },
    )
    return table
