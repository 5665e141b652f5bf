"""The annotation workflow: gene table for both files → embeddings per file → knn or text → write-back.

Writes into the query: ``obs['scelmo_label']``, ``obs['scelmo_label_confidence']``,
``obs['scelmo_label_similarity']`` and ``uns['scelmo']['annotation']`` (method, settings, models, metrics when
the query carries true labels).
"""

from __future__ import annotations

import numpy as np

from scelmo_desktop.core.annotate import Annotation, annotate_query, scores
from scelmo_desktop.core.errors import ScelmoError
from scelmo_desktop.core.gene_table import Alignment, GeneTable, align
from scelmo_desktop.core.io import select_expression
from scelmo_desktop.core.pipeline import (LLMSource, PipelineSettings, data_symbols, describe_cell_types,
                                          gene_table_for, h5ad_safe, label_values)
from scelmo_desktop.core.provenance import now_iso, package_versions
from scelmo_desktop.core.store import Store

ANNOTATION_MODES = ("knn", "text", "adaptor")


def split_by_column(adata, column: str, reference_value: str):
    """One file holding both: cells whose ``obs[column] == reference_value`` are the reference."""
    if column not in adata.obs.columns:
        raise ScelmoError(f"Split column '{column}' is not in obs; available: {', '.join(map(str, adata.obs.columns))}.")
    is_reference = adata.obs[column].astype(str).to_numpy() == reference_value
    if is_reference.all() or not is_reference.any():
        raise ScelmoError(f"Splitting by {column} == '{reference_value}' leaves an empty reference or query.")
    return adata[is_reference].copy(), adata[~is_reference].copy()


def run_annotation(
    query, *, mode: str, settings: PipelineSettings, llm: LLMSource, embedder, store: Store, reference=None,
    label_key: str | None = None, candidates: list[str] | None = None, table: GeneTable | None = None,
    k: int = 10, threshold: float = 0.0, text_scoring: str = "markers", n_markers: int = 10, progress=None,
    cancel=None, device: str = "cpu", save_adaptor=None, epochs: int = 30,
) -> tuple[Annotation, dict]:
    if mode not in ANNOTATION_MODES:
        raise ScelmoError(f"Unknown annotation mode '{mode}'; use one of {', '.join(ANNOTATION_MODES)}.")
    if mode in ("knn", "adaptor") and (reference is None or label_key is None):
        raise ScelmoError(f"{mode} annotation needs --reference (or --split-key) and --label-key.")
    ref_labels = label_values(reference, label_key) if reference is not None and label_key else None
    type_names = candidates or (sorted(set(ref_labels)) if ref_labels is not None else None)
    if mode == "text" and not type_names:
        raise ScelmoError("Label-text annotation needs candidate cell types: --candidates A,B,... or a reference.")
    kwargs = {"progress": progress} if progress is not None else {}
    query_expr = select_expression(query, settings.layer, input_kind=settings.input_kind)
    ref_expr = (select_expression(reference, settings.layer, input_kind=settings.input_kind)
                if reference is not None else None)
    if ref_expr is not None and mode != "text" and not (
            set(data_symbols(query_expr, settings.symbol_column)) & set(data_symbols(ref_expr, settings.symbol_column))):
        # checked before any description work: no table could make these two files comparable
        raise ScelmoError("The reference and the query share no described gene; they cannot be compared.")
    if table is None:  # describe the union of both files' genes once, with the same table for both
        table, _ = gene_table_for([e for e in (ref_expr, query_expr) if e is not None], settings=settings, llm=llm,
                                  store=store, embedder=embedder, cancel=cancel, **kwargs)
    query_align = align(table, query_expr.var_names, query_expr.var, settings.symbol_column,
                        symbols=data_symbols(query_expr, settings.symbol_column))
    if not query_align.matched.any():
        raise ScelmoError("None of the query's genes match the gene table; check var_names or --symbol-column.")
    arguments = dict(expression=query_expr, alignment=query_align, mode=mode, k=k, threshold=threshold, cancel=cancel,
                     conditioning=settings.conditioning)
    extra = {}
    if mode in ("knn", "adaptor"):
        ref_align = align(table, ref_expr.var_names, ref_expr.var, settings.symbol_column,
                          symbols=data_symbols(ref_expr, settings.symbol_column))
        if not ref_align.matched.any():
            raise ScelmoError("None of the reference's genes match the gene table.")
        shared = set(np.array(query_align.matched_symbol, dtype=object)[query_align.matched]) & set(
            np.array(ref_align.matched_symbol, dtype=object)[ref_align.matched])
        if not shared:
            raise ScelmoError("The reference and the query share no described gene; they cannot be compared.")
        # both files are embedded over the same genes, or their vectors would sum over different sets
        query_align, ref_align = only_symbols(query_align, shared), only_symbols(ref_align, shared)
        arguments["alignment"] = query_align
    if mode == "knn":
        annotation = annotate_query(query, reference=reference, reference_expression=ref_expr,
                                    reference_alignment=ref_align, label_key=label_key, **arguments)
    elif mode == "adaptor":
        annotation, extra = adaptor_annotation(query, query_expr, query_align, ref_expr, ref_align, ref_labels,
                                                k=k, threshold=threshold, device=device, seed=settings.seed,
                                                save_to=save_adaptor, epochs=epochs, progress=progress, cancel=cancel)
    else:
        type_texts = _cell_type_texts(type_names, settings=settings, llm=llm, store=store)
        annotation = annotate_query(query, type_vectors=embedder.embed([type_texts[t] for t in type_names]),
                                    type_names=type_names, text_scoring=text_scoring, n_markers=n_markers,
                                    **arguments)
        extra = {"text_scoring": text_scoring, "cell_type_texts": type_texts}
        if annotation.markers is not None:
            extra["markers"] = annotation.markers
    record = {"method": mode, "created_at": now_iso(), "k": k, "threshold": threshold, "candidates": type_names,
              "description_mode": settings.mode, "conditioning": settings.conditioning,
              "input": {"query": query_expr.input_kind.as_dict(),
                        "reference": ref_expr.input_kind.as_dict() if ref_expr is not None else "none"},
              "llm": llm.describe(), "embedder": embedder.info() if embedder else "none",
              "table_genes": len(table.symbols), "versions": package_versions(), **extra}
    if label_key and label_key in query.obs.columns:
        record["metrics"] = scores(query.obs[label_key].astype(str), annotation.labels)
    annotation.write_to(query, h5ad_safe(record))
    return annotation, record


def only_symbols(alignment: Alignment, symbols: set[str]) -> Alignment:
    """The alignment with rows kept only for genes matched to one of ``symbols``."""
    return alignment.keep(np.array([m is not None and m in symbols for m in alignment.matched_symbol]))


def _cell_type_texts(names: list[str], *, settings, llm, store) -> dict[str, str]:
    import anndata as ad
    import pandas as pd

    holder = ad.AnnData(obs=pd.DataFrame({"type": names}, index=[str(i) for i in range(len(names))]))
    return describe_cell_types(holder, "type", settings=settings, llm=llm, store=store).texts


def adaptor_annotation(query, query_expr, query_align, ref_expr, ref_align, ref_labels, *, k, threshold, device,
                        seed, save_to, progress, cancel, epochs: int = 30):
    """Train the adaptor on the reference, then 10-NN in its z-space (the paper's read-out); the head's label and
    probability are written too (``obs['scelmo_label_head']``, ``obs['scelmo_label_head_probability']``)."""
    import functools

    from scelmo_desktop.backends.hardware import torch_device
    from scelmo_desktop.core.adaptor import auto_batch_size, train_adaptor
    from scelmo_desktop.core.annotate import knn_vote
    from scelmo_desktop.core.cell_vectors import genes_with_vectors

    device = torch_device(device)
    X_ref, E_ref, ref_genes = genes_with_vectors(ref_expr.matrix, ref_align.matrix)
    X_query, E_query, _ = genes_with_vectors(query_expr.matrix, query_align.matrix)
    # small references get batches that still give an epoch ~16 optimiser steps (batch 512 would give 5 on PBMC 3k)
    adaptor = train_adaptor(X_ref, E_ref, ref_labels, genes=[ref_expr.var_names[g] for g in ref_genes], seed=seed,
                            device=device, cancel=cancel, batch_size=auto_batch_size(X_ref.shape[0]), epochs=epochs,
                            progress=functools.partial(progress, "train adaptor") if progress else None)
    if save_to:
        adaptor.save(save_to)
    z_reference = adaptor.embed(X_ref, E_ref)
    head_labels, probabilities, z_query = adaptor.predict(X_query, E_query)
    annotation = knn_vote(z_reference, ref_labels, z_query, k=k, threshold=threshold, cancel=cancel)
    annotation.method = "adaptor"
    query.obs["scelmo_label_head"] = head_labels
    query.obs["scelmo_label_head_probability"] = probabilities.max(axis=1).astype(np.float32)
    query.obsm["X_scelmo_adaptor"] = z_query
    return annotation, {"adaptor": {"device": device, "training_seconds": round(adaptor.seconds, 2),
                                    "best_epoch": adaptor.best_epoch, "history": adaptor.history,
                                    **adaptor.provenance}}
