"""The annotation workflow: gene table for both files → embeddings per file → knn, text or adaptor →
write-back, and with ``out`` the annotated h5ad, a confusion matrix and a report.

Adaptor mode trains on the reference, or reuses a saved adaptor (``adaptor_file``): then no reference is
needed (the adaptor's head labels the cells), and with a reference the 10-NN vote runs in the saved adaptor's
space without training.

Writes into the query: ``obs['scelmo_label']``, ``obs['scelmo_label_confidence']``,
``obs['scelmo_label_similarity']`` and ``uns['scelmo']['annotation']`` (method, settings, models, metrics when
the query carries true labels); adaptor mode also ``obs['scelmo_label_head']``,
``obs['scelmo_label_head_probability']`` and ``obsm['X_scelmo_adaptor']``.
"""

from __future__ import annotations

import numpy as np

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.provenance import h5ad_safe, now_iso, package_versions
from scelmo_desktop.core.data.io import label_values, select_expression
from scelmo_desktop.core.embedding.alignment import align_expression
from scelmo_desktop.core.embedding.gene_table import Alignment, GeneTable
from scelmo_desktop.core.embedding.symbols import data_symbols
from scelmo_desktop.core.keys import LABEL_KEY
from scelmo_desktop.core.knowledge.presets import TISSUE_PRESETS, preset_terms
from scelmo_desktop.core.protocols import LLMSource
from scelmo_desktop.core.settings import PipelineSettings
from scelmo_desktop.core.tasks.annotate import Annotation, annotate_query, scores
from scelmo_desktop.core.tasks.marker_scoring import KNOWLEDGE_MARKERS, knowledge_match
from scelmo_desktop.core.tasks.smoothing import check_smoothing, smoothing_graph
from scelmo_desktop.core.text.describe import describe_cell_types
from scelmo_desktop.core.text.store import Store
from scelmo_desktop.core.workflows.adaptor_annotation import adaptor_annotation, saved_adaptor_annotation
from scelmo_desktop.core.workflows.annotation_inputs import resolved_text_scoring
from scelmo_desktop.core.workflows.gene_table import gene_table_for

ANNOTATION_MODES = ("knn", "text", "adaptor")
WEAK_MAPPING = 0.35  # a token match under this is reported as a poor mapping ("CD8 T" scores above it: a fit)


def run_annotation(
    query,
    *,
    settings: PipelineSettings,
    llm: LLMSource,
    embedder,
    store: Store,
    reference=None,
    label_key: str | None = None,
    candidates: list[str] | None = None,
    table: GeneTable | None = None,
    adaptor_file=None,
    save_adaptor=None,
    device: str = "auto",
    key_added: str = LABEL_KEY,
    progress=None,
    cancel=None,
) -> tuple[Annotation, dict]:
    """Label the cells of ``query`` by ``settings.method`` (knn, text or adaptor); returns the annotation and its
    record (also in ``uns['scelmo']``). The labels go to ``obs[key_added]`` (and ``_confidence``,
    ``_similarity``; adaptor mode ``_head``, ``_head_probability`` and ``obsm['X_scelmo_adaptor']``).

    Text mode takes its candidates from ``candidates``, else a tissue ``settings.preset`` (``blood``), else the
    reference's labels; the knowledge scoring averages each cell's marker scores over its neighbours
    (``settings.smoothing``). The vote's ``k``, the confidence ``threshold``, ``text_scoring``, ``n_markers``
    and the adaptor's ``epochs`` are settings too (``core.settings``)."""
    mode, k, threshold = settings.method, settings.k, settings.threshold
    text_scoring, n_markers, preset, smoothing = (
        settings.text_scoring,
        settings.n_markers,
        settings.preset,
        settings.smoothing,
    )
    if mode == "markers":
        raise ScelmoError(
            "The markers method names groups of cells (clusters) from their marker genes, not single cells: name "
            "the groups of an obs column instead (the Markers panel, or scelmo.tl.name_cell_types)."
        )
    if mode not in ANNOTATION_MODES:
        raise ScelmoError(f"Unknown annotation mode '{mode}'; use one of {', '.join(ANNOTATION_MODES)}.")
    if preset is not None and mode != "text":
        raise ScelmoError("A tissue preset gives the candidates of text annotation; choose the text method.")
    preset_map = preset_terms(preset) if preset else None
    check_smoothing(smoothing)
    if adaptor_file is not None and mode != "adaptor":
        raise ScelmoError("A saved adaptor is used in adaptor mode only; choose the adaptor method.")
    needs_reference = mode == "knn" or (mode == "adaptor" and adaptor_file is None)
    if needs_reference and (reference is None or label_key is None):
        raise ScelmoError(
            f"{mode} annotation needs a labelled reference (a reference file, or a split of this "
            "file) and the label column" + (", or a saved adaptor" if mode == "adaptor" else "") + "."
        )
    ref_labels = label_values(reference, label_key) if reference is not None and label_key else None
    type_names = (
        candidates
        or (list(preset_map) if preset_map else None)
        or (sorted(set(ref_labels)) if ref_labels is not None else None)
    )
    if mode == "text" and not type_names:
        raise ScelmoError(
            "Label-text annotation needs candidate cell types (a comma-separated list), a tissue "
            f"preset ({', '.join(sorted(TISSUE_PRESETS))}) or a labelled reference."
        )
    kwargs = {"progress": progress} if progress is not None else {}
    query_expr = select_expression(query, settings.layer, input_kind=settings.input_kind)
    ref_expr = (
        select_expression(reference, settings.layer, input_kind=settings.input_kind) if reference is not None else None
    )
    if (
        ref_expr is not None
        and mode != "text"
        and not (
            set(data_symbols(query_expr, settings.symbol_column)) & set(data_symbols(ref_expr, settings.symbol_column))
        )
    ):
        # checked before any description work: no table could make these two files comparable
        raise ScelmoError("The reference and the query share no described gene; they cannot be compared.")
    text_scoring = resolved_text_scoring(text_scoring)
    knowledge_only = mode == "text" and text_scoring == "knowledge"  # curated markers: no gene table needed
    if table is None and not knowledge_only:  # the union of both files' genes, described once, one table for both
        from scelmo_desktop.core.tasks.adaptor import saved_adaptor_genes

        needed = saved_adaptor_genes(adaptor_file) if adaptor_file is not None else ()
        table, _ = gene_table_for(
            [e for e in (ref_expr, query_expr) if e is not None],
            settings=settings,
            llm=llm,
            store=store,
            embedder=embedder,
            extra_genes=needed,
            cancel=cancel,
            **kwargs,
        )
    query_align = align_expression(table, query_expr, settings.symbol_column) if not knowledge_only else None
    if query_align is not None and not query_align.matched.any():
        raise ScelmoError(
            "None of the query's genes match the gene table; check var_names or the symbol column setting."
        )
    arguments = dict(
        expression=query_expr,
        alignment=query_align,
        mode=mode,
        k=k,
        threshold=threshold,
        cancel=cancel,
        conditioning=settings.conditioning,
    )
    extra = {}
    if ref_expr is not None and mode != "text":
        ref_align = align_expression(table, ref_expr, settings.symbol_column)
        if not ref_align.matched.any():
            raise ScelmoError("None of the reference's genes match the gene table.")
        shared = set(np.array(query_align.matched_symbol, dtype=object)[query_align.matched]) & set(
            np.array(ref_align.matched_symbol, dtype=object)[ref_align.matched]
        )
        if not shared:
            raise ScelmoError("The reference and the query share no described gene; they cannot be compared.")
        # both files are embedded over the same genes, or their vectors would sum over different sets
        query_align, ref_align = only_symbols(query_align, shared), only_symbols(ref_align, shared)
        arguments["alignment"] = query_align
    if mode == "knn":
        annotation = annotate_query(
            query,
            reference=reference,
            reference_expression=ref_expr,
            reference_alignment=ref_align,
            label_key=label_key,
            **arguments,
        )
    elif mode == "adaptor" and adaptor_file is not None:
        annotation, extra = saved_adaptor_annotation(
            query,
            query_expr,
            query_align,
            adaptor_file,
            table_dim=table.dim,
            k=k,
            threshold=threshold,
            device=device,
            cancel=cancel,
            reference=(ref_expr, ref_align, ref_labels) if ref_expr is not None else None,
        )
    elif mode == "adaptor":
        annotation, extra = adaptor_annotation(
            query,
            query_expr,
            query_align,
            ref_expr,
            ref_align,
            ref_labels,
            k=k,
            threshold=threshold,
            device=device,
            seed=settings.seed,
            save_to=save_adaptor,
            epochs=settings.epochs,
            progress=progress,
            cancel=cancel,
        )
    elif text_scoring == "knowledge":  # curated markers of each type's ontology term: no text, no embedder
        annotation, extra = knowledge_annotation(
            query,
            query_expr,
            type_names,
            terms=preset_map,
            n_markers=n_markers,
            smoothing=smoothing,
            threshold=threshold,
            settings=settings,
            cancel=cancel,
        )
        extra["preset"] = preset
    else:
        type_texts = _cell_type_texts(type_names, settings=settings, llm=llm, store=store)
        annotation = annotate_query(
            query,
            type_vectors=embedder.embed([type_texts[t] for t in type_names]),
            type_names=type_names,
            text_scoring=text_scoring,
            n_markers=n_markers or 10,
            **arguments,
        )
        extra = {"text_scoring": text_scoring, "cell_type_texts": type_texts}
        if annotation.markers is not None:
            extra["markers"] = annotation.markers
    record = {
        "method": mode,
        "created_at": now_iso(),
        "k": k,
        "threshold": threshold,
        "candidates": type_names,
        "description_mode": settings.mode,
        "conditioning": settings.conditioning,
        "input": {
            "query": query_expr.input_kind.as_dict(),
            "reference": ref_expr.input_kind.as_dict() if ref_expr is not None else "none",
        },
        "llm": llm.describe(),
        "embedder": embedder.info() if embedder else "none",
        "table_genes": len(table.symbols) if table is not None else 0,
        "versions": package_versions(),
        **extra,
    }
    if label_key and label_key in query.obs.columns:
        truth = query.obs[label_key].astype(str)
        if preset_map and not candidates and not set(type_names) & set(truth):
            # the preset's names are not the file's: say which type each file label was called, not an accuracy
            record["calls_per_label"] = calls_per_label(truth, annotation.labels)
        else:
            record["metrics"] = scores(truth, annotation.labels)
    for column in (f"{LABEL_KEY}_head", f"{LABEL_KEY}_head_probability"):
        if column in query.obs and key_added != LABEL_KEY:  # the adaptor's head, under the asked-for name
            query.obs[column.replace(LABEL_KEY, key_added)] = query.obs.pop(column)
    annotation.write_to(query, h5ad_safe(record), key=key_added)
    return annotation, record


def calls_per_label(truth, labels) -> dict[str, dict]:
    """Per file label, the type most of its cells were called and that fraction."""
    import pandas as pd

    table = pd.crosstab(pd.Series(np.asarray(truth), name="truth"), pd.Series(np.asarray(labels), name="call"))
    return {
        str(t): {"call": str(row.idxmax()), "fraction": round(float(row.max() / row.sum()), 3)}
        for t, row in table.iterrows()
    }


def knowledge_annotation(
    query, expression, type_names, *, terms, n_markers, smoothing, threshold, settings, cancel=None
) -> tuple[Annotation, dict]:
    """Curated-marker annotation of ``query`` (no text, no reference), with what the record says of it: the
    markers and ontology term behind each type, the markers seen, and labels whose mapping is weak."""
    graph = smoothing_graph(smoothing, log_expression=expression.matrix, adata=query, seed=settings.seed)
    annotation = knowledge_match(
        expression.matrix,
        data_symbols(expression, settings.symbol_column),
        type_names,
        terms=terms,
        n_markers=n_markers or KNOWLEDGE_MARKERS,
        graph=graph,
        threshold=threshold,
        seed=settings.seed,
        cancel=cancel,
    )
    weak = sorted(
        label
        for label, entry in annotation.mapping.items()
        if entry["term_id"] is None or (entry["how"] == "fuzzy" and entry["score"] < WEAK_MAPPING)
    )
    from scelmo_desktop.core.knowledge.markers import CellMarkers

    return annotation, {
        "text_scoring": "knowledge",
        "smoothing": smoothing if graph is not None else "none",
        "knowledge_sources": CellMarkers.load().sources,  # package, version, sha256 per file
        "n_markers": n_markers or KNOWLEDGE_MARKERS,
        "markers": annotation.markers,
        "cell_ontology": annotation.mapping,
        "markers_seen": annotation.evidence,
        "poorly_mapped": weak,
    }


def only_symbols(alignment: Alignment, symbols: set[str]) -> Alignment:
    """The alignment with rows kept only for genes matched to one of ``symbols``."""
    return alignment.keep(np.array([m is not None and m in symbols for m in alignment.matched_symbol]))


def _cell_type_texts(names: list[str], *, settings, llm, store) -> dict[str, str]:
    import anndata as ad
    import pandas as pd

    holder = ad.AnnData(obs=pd.DataFrame({"type": names}, index=[str(i) for i in range(len(names))]))
    return describe_cell_types(holder, "type", settings=settings, llm=llm, store=store).texts
