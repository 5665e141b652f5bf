"""Cell embeddings as every door makes them: describe the gene set (or take a stored table), embed the texts,
write the conditioned scELMo embedding, the paper's wa/aa and the gene vectors into AnnData; also the Dask
route for files larger than memory."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scelmo_desktop.core._infra.atomic import write_text_atomic
from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, no_progress
from scelmo_desktop.core._infra.provenance import h5ad_safe, now_iso, package_versions
from scelmo_desktop.core.data.gene_selection import GeneSet
from scelmo_desktop.core.data.io import Expression, select_expression, write_h5ad
from scelmo_desktop.core.embedding.alignment import gene_alignment, gene_set_coverage, restrict_to_gene_set
from scelmo_desktop.core.embedding.cell_embedding import average_gene_vectors
from scelmo_desktop.core.embedding.cell_vectors import conditioned_embedding, space_settings
from scelmo_desktop.core.embedding.gene_table import Alignment, GeneTable, embed_texts, save_gene_table
from scelmo_desktop.core.keys import SCELMO_KEY, add_record, gene_embedding_key, paper_keys
from scelmo_desktop.core.settings import DEFAULT_CONDITIONING, PipelineSettings, default
from scelmo_desktop.core.text.describe import describe_gene_set
from scelmo_desktop.core.text.gene_texts import GeneDescriptions
from scelmo_desktop.core.workflows.common import task_record


def add_cell_embeddings(
    adata,
    expression: Expression,
    table: GeneTable,
    *,
    symbol_column: str | None = None,
    gene_set: GeneSet | None = None,
    conditioning: str = DEFAULT_CONDITIONING,
    seed: int = 0,
    key_added: str = SCELMO_KEY,
    paper: bool = True,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> tuple[Alignment, dict]:
    """Write ``obsm[key_added]`` (default ``'X_scelmo'``, the embedding every task uses: the ``conditioning`` of
    :mod:`~scelmo_desktop.core.embedding.cell_vectors`) and ``varm['<key_added without X_>_gene_embedding']``
    (the table rows in ``adata``'s gene order); with ``paper``, also the paper's formulas for comparison,
    ``obsm['<key_added>_wa']`` and ``obsm['<key_added>_aa']``.

    The embedding uses the table's genes within ``gene_set`` (the run's, chosen once; None: all). Returns
    the alignment of the table to the expression genes and the coverage report. Raises when no gene of the data
    matches the table.
    """
    totals = np.asarray(expression.matrix.sum(axis=0)).ravel()
    alignment, coverage = gene_alignment(expression, table, symbol_column=symbol_column, totals=totals)
    alignment = restrict_to_gene_set(alignment, gene_set)
    coverage.update(gene_set_coverage(alignment, gene_set, totals))
    adata.obsm[key_added] = conditioned_embedding(
        expression.matrix,
        alignment.matrix,
        conditioning=conditioning,
        seed=seed,
        progress=functools.partial(progress, "embed cells"),
        cancel=cancel,
    )
    if paper:
        for key, mode in zip(paper_keys(key_added), ("wa", "aa")):
            adata.obsm[key] = average_gene_vectors(
                expression.matrix,
                alignment.matrix,
                mode=mode,
                progress=functools.partial(progress, f"embed {mode}"),
                cancel=cancel,
            )
    adata.varm[gene_embedding_key(key_added)] = rows_for(list(adata.var_names), expression.var_names, alignment.matrix)
    return alignment, coverage


def rows_for(names: list[str], expression_names: list[str], matrix: np.ndarray) -> np.ndarray:
    """``matrix`` rows (in ``expression_names`` order) re-ordered to ``names``; zero rows for genes the expression
    matrix lacks (``adata.var`` and ``.raw`` may differ)."""
    if list(names) == list(expression_names):
        return matrix
    index = {name: i for i, name in enumerate(expression_names)}
    out = np.zeros((len(names), matrix.shape[1]), dtype=matrix.dtype)
    for row, name in enumerate(names):
        if name in index:
            out[row] = matrix[index[name]]
    return out


@dataclass
class EmbedOutcome:
    """What :func:`embed` made: gene table, alignment, coverage report, descriptions, run record and files."""

    table: GeneTable
    alignment: Alignment  # the table's rows in the data's gene order, within the gene set
    coverage: dict
    described: GeneDescriptions | None  # None with an imported table
    record: dict
    files: dict[str, Path] = field(default_factory=dict)


def embed(
    adata,
    *,
    settings: PipelineSettings,
    llm,
    embedder,
    store,
    table: GeneTable | None = None,
    described: GeneDescriptions | None = None,
    key_added: str = SCELMO_KEY,
    paper: bool = True,
    data_name: str = "",
    out: str | Path | None = None,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> EmbedOutcome:
    """Describe the gene set (unless ``described`` texts or a ``table`` are given), embed the texts and the
    cells. Writes the keys of :func:`add_cell_embeddings` and ``uns['scelmo']['embedding']``; with ``out``, the
    embedded h5ad, the gene table (.npz) and ``provenance.json``."""
    expression = select_expression(adata, settings.layer, input_kind=settings.input_kind)
    gene_set = GeneSet.choose(expression.matrix, settings.max_genes)  # once: described and embedded alike
    if table is None:
        if described is None:
            described = describe_gene_set(
                expression, gene_set, settings=settings, llm=llm, store=store, progress=progress, cancel=cancel
            )[1]
        table, _ = embed_texts(
            described.texts,
            embedder=embedder,
            store=store,
            cancel=cancel,
            progress=functools.partial(progress, "embed texts"),
        )
    alignment, coverage = add_cell_embeddings(
        adata,
        expression,
        table,
        symbol_column=settings.symbol_column,
        gene_set=gene_set,
        conditioning=settings.conditioning,
        seed=settings.seed,
        key_added=key_added,
        paper=paper,
        progress=progress,
        cancel=cancel,
    )
    record = task_record(
        settings=settings,
        llm=llm,
        embedder=embedder,
        described=[described] if described else [],
        data=data_name,
        input=expression.input_kind.as_dict(),
        key_added=key_added,
        gene_table=table.provenance if described is None else "described in this run",
        coverage={k: v for k, v in coverage.items() if k != "by_match_kind"},
        cell_space=space_settings(settings.conditioning, adata.n_obs),
    )
    add_record(adata, "embedding", h5ad_safe(record))
    outcome = EmbedOutcome(table=table, alignment=alignment, coverage=coverage, described=described, record=record)
    if out is not None:
        outcome.files = write_embedding(out, adata, table, record)
    return outcome


def write_embedding(out: str | Path, adata, table: GeneTable, record: dict) -> dict[str, Path]:
    """The embedded h5ad, the gene table and the provenance, into the folder ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_gene_table(table, out / "gene_table.npz")
    return {
        "gene_table": out / "gene_table.npz",
        "h5ad": write_h5ad(adata, out / "scelmo_embedded.h5ad"),
        "provenance": write_text_atomic(out / "provenance.json", json.dumps(record, indent=2, default=str)),
    }


def embed_out_of_memory(
    path: str | Path,
    *,
    table: GeneTable,
    client,
    layer: str = "X",
    symbol_column: str | None = None,
    chunk_cells: int = default("chunk_cells"),
    out: str | Path,
    scheduler: str | None = None,
    progress: Progress = no_progress,
) -> tuple[object, dict, dict]:
    """Embed an .h5ad/.zarr too large for memory block by block on a Dask ``client`` with an existing gene
    table; writes ``obsm['X_scelmo_wa']``/``['X_scelmo_aa']``, ``uns['scelmo']['embedding']`` and the files
    of :func:`write_embedding`. Returns the embeddings-only AnnData, the coverage and the record."""
    from scelmo_desktop.core.embedding.dask_embedding import embed_file_dask

    adata, coverage = embed_file_dask(
        path, table, client=client, layer=layer, symbol_column=symbol_column, chunk_cells=chunk_cells, progress=progress
    )
    workers = len(client.scheduler_info().get("workers", {}))
    record = {
        "created_at": now_iso(),
        "data": str(path),
        "layer": layer,
        "gene_table": table.provenance,
        "dask": {"scheduler": scheduler or "LocalCluster (loopback)", "workers": workers, "chunk_cells": chunk_cells},
        "coverage": {k: v for k, v in coverage.items() if k != "by_match_kind"},
        "versions": package_versions(),
    }
    add_record(adata, "embedding", h5ad_safe(record))
    write_embedding(out, adata, table, record)
    return adata, coverage, record
