"""The zero-shot scELMo pipeline: QC → describe → gene table → cell embeddings → samples integrated (when there
are several) → clustering → markers → cell-type names, as ``scelmo run`` and the app's "Run the whole pipeline"
do it. A cluster the naming flags as mixing two lineages is sub-clustered and the clusters named again
(``split_mixed``; ``uns['scelmo']['split_clusters']``).

AnnData keys written (see :mod:`scelmo_desktop.core.keys`): ``obsm['X_scelmo']``, with several samples
``obsm['X_scelmo_integrated']`` (on which the clusters, UMAP, markers and names are then computed) and
``uns['scelmo']['integration']``, ``obsm['X_scelmo_wa']``,
``obsm['X_scelmo_aa']``, ``varm['scelmo_gene_embedding']``, ``obs['scelmo_leiden']``, ``obsm['X_umap']``,
with baselines ``obsm['X_scelmo_baseline_pca']`` and ``obsm['X_scelmo_baseline_random']``, the graph
``obsp``/``uns['X_scelmo_neighbors']``, the markers ``uns['rank_genes_groups']``, the names
``obs['scelmo_cell_type']`` (+ ``_ontology_id``, ``_confidence``), and ``uns['scelmo']`` (the run record with
provenance; the markers' and names' records under ``markers`` and ``naming``).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scelmo_desktop.core._infra.atomic import check_writable_folder
from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, no_progress
from scelmo_desktop.core._infra.provenance import h5ad_safe, now_iso, package_versions
from scelmo_desktop.core.data.gene_selection import GeneSet
from scelmo_desktop.core.data.io import label_values, select_expression
from scelmo_desktop.core.data.samples import SAMPLE_KEY
from scelmo_desktop.core.embedding.cell_vectors import space_settings
from scelmo_desktop.core.embedding.gene_table import GeneTable, embed_texts
from scelmo_desktop.core.embedding.symbols import species_note
from scelmo_desktop.core.keys import INTEGRATED_KEY, UNS_KEY
from scelmo_desktop.core.protocols import Embedder, LLMSource
from scelmo_desktop.core.qc.thresholds import removal_words
from scelmo_desktop.core.settings import PipelineSettings
from scelmo_desktop.core.text.describe import describe_gene_set
from scelmo_desktop.core.text.gene_texts import GeneDescriptions
from scelmo_desktop.core.text.generation import load_template
from scelmo_desktop.core.text.store import Store
from scelmo_desktop.core.workflows.cluster import evaluate_clustering, split_mixed_clusters
from scelmo_desktop.core.workflows.embed import add_cell_embeddings
from scelmo_desktop.core.workflows.integration import integrate_samples, samples_not_integrated
from scelmo_desktop.core.workflows.markers import markers_and_names

NO_EXPLANATIONS = "off"  # the naming_llm choice that asks for none (a choice, not a copy of its declared default)

# the principal components, the kNN graph and UMAP's spectral layout fail (in scanpy and umap-learn) on a handful
# of cells; this many is the fewest on which every step of the run was seen to work
MIN_CELLS = 10


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` made: the AnnData, run record, metrics, texts, gene table, alignment and files."""

    adata: object
    record: dict
    metrics: pd.DataFrame
    descriptions: dict[str, str]
    table: GeneTable
    described: GeneDescriptions | None = None  # how each text was made (mode, LLM or fact sheet, flags)
    alignment: object = None  # the table's rows in the data's gene order, within the gene set
    files: dict = field(default_factory=dict)  # with ``out``: what was written (h5ad, report, CSVs, figures)
    qc: object = None  # the QCOutcome when this run quality-controlled the cells
    markers: object = None  # the Markers of the clusters (core.tasks.markers), unless the markers setting is off
    naming: object = None  # the clusters' cell-type names with evidence (core.tasks.naming), unless naming is off


def quality_control(adata, *, settings: PipelineSettings, progress=no_progress, cancel=None):
    """The run's first step: scanpy's QC metrics, Scrublet and the per-sample thresholds, then ``adata`` is
    filtered in place (see :func:`~scelmo_desktop.core.workflows.qc.run_qc`; its files are written with the run's
    outputs, into ``out/qc``). Returns the outcome, or None and why QC did not run. Too few cells for the run: an
    error before anything is written."""
    from scelmo_desktop.core.workflows.qc import apply_qc, measure_qc, qc_applies

    reason = qc_applies(adata, settings)
    _require_cells(adata.n_obs, "")
    if reason is not None:
        return None, reason
    measures = measure_qc(adata, settings=settings, progress=progress, cancel=cancel)
    outcome = apply_qc(adata, measures, settings=settings, copy=False, progress=progress)
    _require_cells(
        outcome.n_kept,
        f" of {adata.n_obs} after quality control ({removal_words(outcome.record['removed_by_rule'])})",
        way_out="loosen the thresholds that removed them (the QC settings), or turn QC off (the qc setting)",
    )
    if not outcome.keep.all():
        adata._inplace_subset_obs(outcome.keep)  # scanpy's own in-place filter (sc.pp.filter_cells)
    return outcome, ""


def _require_cells(n_cells: int, when: str, way_out: str = "open a file with more cells") -> None:
    if n_cells < MIN_CELLS:
        raise ScelmoError(
            f"{n_cells} cell(s){when}: the cell embedding, its neighbour graph, clustering and UMAP need at least "
            f"{MIN_CELLS} cells. 'scelmo qc' still reports each cell's metrics; {way_out}."
        )


def _integration_note(adata, settings: PipelineSettings) -> str:
    if not settings.integrate_samples:
        return "the integrate_samples setting is off"
    return samples_not_integrated(adata, SAMPLE_KEY) or f"obs['{SAMPLE_KEY}'] holds one sample"


def run_pipeline(
    adata,
    *,
    settings: PipelineSettings,
    llm: LLMSource,
    embedder: Embedder,
    store: Store,
    data_name: str = "",
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
    table: GeneTable | None = None,
    out: str | Path | None = None,
) -> PipelineResult:
    """Run the whole zero-shot pipeline on ``adata`` in place and return what it computed.

    With a precomputed ``table`` (imported GenePT/scELMo table) the describe and embed-text steps are skipped.

    Writes the keys listed in this module's docstring, including ``uns['scelmo']`` with the run record; with
    ``out``, the folder of :func:`~scelmo_desktop.core.workflows.outputs.write_outputs` (h5ad, metrics,
    descriptions, provenance, figures, HTML report).
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    label_values(adata, settings.label_key)  # fail on a bad label column before hours of LLM work
    # the input is read and checked (all zeros, scaled values, NaN) before QC, so a bad file is refused at once
    expression = select_expression(adata, settings.layer, input_kind=settings.input_kind)
    if out is not None:  # and an output folder it could not write at the end (made only for a good input)
        check_writable_folder(out)
    qc, qc_note = quality_control(adata, settings=settings, progress=progress, cancel=cancel)
    if qc is not None and not qc.keep.all():
        # log-normalisation is per cell (a fixed target sum), so keeping rows equals preparing the kept cells
        expression = dataclasses.replace(expression, matrix=expression.matrix[np.flatnonzero(qc.keep)])
    timings["qc"] = time.perf_counter() - started

    imported = table is not None
    t0 = time.perf_counter()
    # chosen once: the genes described, the table rows the embedding keeps and the PCA baseline's genes
    gene_set = GeneSet.choose(expression.matrix, settings.max_genes)
    if not imported:
        entities, described = describe_gene_set(
            expression, gene_set, settings=settings, llm=llm, store=store, progress=progress, cancel=cancel
        )
    else:
        entities, described = [], GeneDescriptions(texts={}, mode="imported table")
    timings["describe"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if not imported:
        table, embed_stats = embed_texts(
            described.texts,
            embedder=embedder,
            store=store,
            progress=functools.partial(progress, "embed texts"),
            cancel=cancel,
        )
    else:
        embed_stats = {"imported_table": table.provenance, "genes": len(table.symbols), "dim": table.dim}
    alignment, coverage = add_cell_embeddings(
        adata,
        expression,
        table,
        symbol_column=settings.symbol_column,
        gene_set=gene_set,
        conditioning=settings.conditioning,
        seed=settings.seed,
        progress=progress,
        cancel=cancel,
    )
    timings["embed"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    integration = None
    adata.obsm.pop(INTEGRATED_KEY, None)  # an earlier integration described other cell vectors
    if settings.integrate_samples:
        progress("integrate samples", 0, 1, f"obs['{SAMPLE_KEY}']")
        integration = integrate_samples(
            adata, expression, alignment, batch_key=SAMPLE_KEY, seed=settings.seed, cancel=cancel
        )
    timings["integrate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    metrics = evaluate_clustering(
        adata, expression, alignment, settings=settings, gene_set=gene_set, progress=progress, cancel=cancel
    )
    timings["cluster"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    # with the split on, the LLM explains the final clusters only (once): not the ones about to be split
    first = settings.replace(naming_llm=NO_EXPLANATIONS) if settings.split_mixed else settings
    found = markers_and_names(adata, expression, settings=first, llm=llm, progress=progress, cancel=cancel)
    split = {}
    if settings.split_mixed and found.naming is not None:
        mixed = {group: call.mixed_parts() for group, call in found.naming.groups.items() if call.mixed}
        new_ids = split_mixed_clusters(adata, list(mixed), seed=settings.seed)
        split = {group: {"into": ids, "mixed": mixed[group]} for group, ids in new_ids.items()}
        if split:
            progress("markers", 0, 1, f"clusters that mix two lineages split: {', '.join(split)}")
    if first is not settings and (split or settings.naming_llm != "off"):  # the new clusters' markers and names
        found = markers_and_names(adata, expression, settings=settings, llm=llm, progress=progress, cancel=cancel)
    timings["markers"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started

    template = load_template("gene", mode=settings.mode)
    record = {
        "data": data_name,
        "created_at": now_iso(),
        "layer": expression.layer,
        "input": expression.input_kind.as_dict(),
        "conditioning": settings.conditioning,
        "cell_space": space_settings(settings.conditioning, expression.matrix.shape[0]),
        "descriptions": described.budget_report(),
        "llm": llm.describe(),
        "embedder": embedder.info() if embedder is not None else "none (imported table)",
        "description_mode": "imported table" if imported else settings.mode,
        "on_flag": settings.on_flag,
        "knowledge": described.knowledge,
        "quality_flags": described.flag_counts(),
        "fell_back_to_facts": len(described.fell_back),
        "hand_edits": described.edited,
        "prompt_template": "(no prompt used)" if imported or settings.mode == "facts" else template.text,
        "prompt_template_sha256": template.sha256,
        "decoding": settings.params.as_dict(),
        "seed": settings.seed,
        "settings": settings.as_dict(),
        "llm_calls": described.n_llm_calls,
        "llm_cached": described.n_cached,
        "n_described": len(entities),
        "generated_tokens": described.generated_tokens,
        "embedding": embed_stats,
        "coverage": coverage,
        "species_note": species_note(expression.var_names) or "none",
        "metrics": metrics.to_dict(orient="records"),
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "versions": package_versions(),
    }
    record["qc"] = qc.record if qc is not None else {"status": "not run", "reason": qc_note}
    n_samples = adata.obs[SAMPLE_KEY].astype(str).nunique() if SAMPLE_KEY in adata.obs else 1
    record["integration"] = integration or {
        "status": "not run",
        "reason": _integration_note(adata, settings),
        "n_samples": int(n_samples),
    }
    record["split_clusters"] = split
    for step, note in found.notes.items():
        record[step] = {"status": "not run", "reason": note}
    earlier = {
        k: v
        for k, v in (adata.uns.get(UNS_KEY) or {}).items()
        if k in ("intake", "qc", "clustering", "markers", "naming")
    }
    adata.uns[UNS_KEY] = {**h5ad_safe(record), **earlier}  # the intake and QC records stay beside the run's
    result = PipelineResult(
        qc=qc,
        adata=adata,
        record=record,
        metrics=metrics,
        descriptions=described.texts,
        table=table,
        described=described,
        alignment=alignment,
        markers=found.markers,
        naming=found.naming,
    )
    if out is not None:
        from scelmo_desktop.core.workflows.outputs import write_outputs

        result.files = write_outputs(result, out, label_key=settings.label_key)
    return result
