"""Adaptor annotation: train the scELMo adaptor on a labelled reference (or reuse a saved one) and read the
query's labels out of it; also the training step the app's Fine-tuning panel runs."""

from __future__ import annotations

import numpy as np

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.embedding.gene_table import Alignment
from scelmo_desktop.core.keys import ADAPTOR_KEY, LABEL_KEY
from scelmo_desktop.core.tasks.annotate import Annotation
from scelmo_desktop.core.workflows.common import device_for


def fit_adaptor(
    expression, alignment: Alignment, labels, *, seed: int, device: str, epochs: int, progress=None, cancel=None
):
    """Train the adaptor on labelled cells over the genes that have a vector (the app's Fine-tuning panel and
    adaptor annotation); small data get batches that still give an epoch ~16 optimiser steps (batch 512 would
    give 5 on PBMC 3k). Returns the adaptor and the cells × genes matrix and table rows it was trained on."""
    import functools

    from scelmo_desktop.core.embedding.cell_vectors import genes_with_vectors
    from scelmo_desktop.core.tasks.adaptor import auto_batch_size, train_adaptor

    X, E, genes = genes_with_vectors(expression.matrix, alignment.matrix)
    adaptor = train_adaptor(
        X,
        E,
        labels,
        genes=[expression.var_names[g] for g in genes],
        seed=seed,
        device=device_for(device),
        cancel=cancel,
        batch_size=auto_batch_size(X.shape[0]),
        epochs=epochs,
        progress=functools.partial(progress, "train adaptor") if progress else None,
    )
    return adaptor, X, E


def adaptor_annotation(
    query,
    query_expr,
    query_align,
    ref_expr,
    ref_align,
    ref_labels,
    *,
    k,
    threshold,
    device,
    seed,
    save_to,
    progress,
    cancel,
    epochs: int,
):
    """Train the adaptor on the reference, then 10-NN in its z-space (the paper's read-out); the head's label and
    probability are written too (``obs['scelmo_label_head']``, ``obs['scelmo_label_head_probability']``)."""
    from scelmo_desktop.core.embedding.cell_vectors import genes_with_vectors
    from scelmo_desktop.core.tasks.annotate import knn_vote

    adaptor, X_ref, E_ref = fit_adaptor(
        ref_expr, ref_align, ref_labels, seed=seed, device=device, epochs=epochs, progress=progress, cancel=cancel
    )
    if save_to:
        adaptor.save(save_to)
    X_query, E_query, _ = genes_with_vectors(query_expr.matrix, query_align.matrix)
    z_reference = adaptor.embed(X_ref, E_ref)
    head_labels, probabilities, z_query = adaptor.predict(X_query, E_query)
    annotation = knn_vote(z_reference, ref_labels, z_query, k=k, threshold=threshold, cancel=cancel)
    annotation.method = "adaptor"
    query.obs[f"{LABEL_KEY}_head"] = head_labels
    query.obs[f"{LABEL_KEY}_head_probability"] = probabilities.max(axis=1).astype(np.float32)
    query.obsm[ADAPTOR_KEY] = z_query
    return annotation, {
        "adaptor": {
            "device": adaptor.device,
            "training_seconds": round(adaptor.seconds, 2),
            "best_epoch": adaptor.best_epoch,
            "history": adaptor.history,
            **adaptor.provenance,
        }
    }


def saved_adaptor_annotation(
    query,
    query_expr,
    query_align,
    path,
    *,
    table_dim: int,
    k: int,
    threshold: float,
    device: str,
    cancel,
    reference=None,
):
    """Annotate with an adaptor saved by an earlier run: its head's labels (probability as confidence), or with
    a ``reference`` (expression, alignment, labels) the 10-NN vote in the adaptor's space. Cells are embedded
    over the genes the adaptor was trained on that the query has."""
    from scelmo_desktop.core.embedding.cell_vectors import genes_with_vectors
    from scelmo_desktop.core.tasks.adaptor import load_adaptor
    from scelmo_desktop.core.tasks.annotate import UNKNOWN, knn_vote

    device = device_for(device)
    adaptor, overlap = load_adaptor(path, table_dim=table_dim, device=device)
    trained_on = set(adaptor.genes)

    def restricted(expression, alignment):
        names = np.asarray(expression.var_names, dtype=object)
        keep = alignment.matched & np.array(
            [n in trained_on or s in trained_on for n, s in zip(names, alignment.matched_symbol)]
        )
        return alignment.keep(keep)

    query_align = restricted(query_expr, query_align)
    shared = int(query_align.matched.sum())
    if shared == 0:
        raise ScelmoError(
            f"None of the query's genes are among the {len(trained_on)} genes the adaptor in {path} "
            "was trained on; it cannot annotate this file."
        )
    X_query, E_query, _ = genes_with_vectors(query_expr.matrix, query_align.matrix)
    head_labels, probabilities, z_query = adaptor.predict(X_query, E_query)
    head_probability = probabilities.max(axis=1).astype(np.float32)
    if reference is not None:
        ref_expr, ref_align, ref_labels = reference
        X_ref, E_ref, _ = genes_with_vectors(ref_expr.matrix, restricted(ref_expr, ref_align).matrix)
        annotation = knn_vote(adaptor.embed(X_ref, E_ref), ref_labels, z_query, k=k, threshold=threshold, cancel=cancel)
    else:
        labels = np.where(head_probability >= threshold, head_labels, UNKNOWN).astype(object)
        annotation = Annotation(
            labels=labels,
            confidence=head_probability,
            similarity=np.full(len(labels), np.nan, dtype=np.float32),
            method="adaptor",
        )
    annotation.method = "adaptor"
    query.obs[f"{LABEL_KEY}_head"] = head_labels
    query.obs[f"{LABEL_KEY}_head_probability"] = head_probability
    query.obsm[ADAPTOR_KEY] = z_query
    return annotation, {
        "adaptor": {
            "file": str(path),
            "device": device,
            "reused": True,
            "readout": "10-NN on the reference" if reference is not None else "head",
            "training_genes": len(trained_on),
            "shared_genes": shared,
            "classes": adaptor.classes,
            **adaptor.provenance,
        }
    }
