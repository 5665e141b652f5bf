"""The gene table an analysis needs: every file's gene set plus the genes the analysis must have, described
once and embedded."""

from __future__ import annotations

import functools

from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, no_progress
from scelmo_desktop.core.data.gene_selection import GeneSet
from scelmo_desktop.core.data.io import Expression
from scelmo_desktop.core.embedding.gene_table import GeneTable, embed_texts
from scelmo_desktop.core.protocols import Embedder, LLMSource
from scelmo_desktop.core.settings import PipelineSettings
from scelmo_desktop.core.text.describe import describe_gene_set, describe_genes_in_budget
from scelmo_desktop.core.text.gene_texts import GeneDescriptions
from scelmo_desktop.core.text.store import Store


def gene_table_for(
    expressions: list[Expression],
    *,
    settings: PipelineSettings,
    llm: LLMSource,
    store: Store,
    embedder: Embedder,
    extra_genes=(),
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> tuple[GeneTable, list[GeneDescriptions]]:
    """One gene table for several files: each file's gene set (its ``max_genes`` most variable genes) plus
    ``extra_genes`` (genes an analysis must have, e.g. candidates or perturbed genes), described once and
    embedded."""
    texts, results = {}, []
    for expression in expressions:
        gene_set = GeneSet.choose(expression.matrix, settings.max_genes)
        _, described = describe_gene_set(
            expression, gene_set, settings=settings, llm=llm, store=store, progress=progress, cancel=cancel
        )
        texts.update(described.texts)
        results.append(described)
    missing = [g for g in dict.fromkeys(map(str, extra_genes)) if g not in texts]
    if missing:
        described = describe_genes_in_budget(
            missing, settings=settings, llm=llm, store=store, progress=progress, cancel=cancel
        )
        texts.update(described.texts)
        results.append(described)
    table, _ = embed_texts(
        texts, embedder=embedder, store=store, cancel=cancel, progress=functools.partial(progress, "embed texts")
    )
    return table, results
