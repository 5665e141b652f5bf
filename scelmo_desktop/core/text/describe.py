"""Describing a data set's genes and cell types in a settings' mode, within the LLM budget.

The generation itself (prompts, the store, batching) is :mod:`.generation`; what each gene's text is made of
(fact sheets, LLM refinement, flags) is :mod:`.gene_texts`; this module chooses *which* entities to describe.
"""

from __future__ import annotations

import functools

from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, no_progress
from scelmo_desktop.core.data.gene_selection import GeneSet
from scelmo_desktop.core.data.io import Expression, label_values
from scelmo_desktop.core.embedding.symbols import data_symbols, require_known_genes
from scelmo_desktop.core.protocols import LLMSource
from scelmo_desktop.core.settings import PipelineSettings
from scelmo_desktop.core.text.gene_texts import GeneDescriptions, describe_gene_list
from scelmo_desktop.core.text.generation import DescribeResult, describe_entities, load_template
from scelmo_desktop.core.text.store import Store


def describe_gene_set(
    expression: Expression,
    gene_set: GeneSet,
    *,
    settings: PipelineSettings,
    llm: LLMSource,
    store: Store,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> tuple[list[str], GeneDescriptions]:
    """Describe ``expression``'s ``gene_set`` (chosen once per run, most variable first: the LLM budget goes to
    the first ones); returns the entities and texts."""
    symbols = data_symbols(expression, settings.symbol_column)
    entities = gene_set.names(symbols)
    require_known_genes(entities, total=len(symbols))
    return entities, describe_genes_in_budget(
        entities, settings=settings, llm=llm, store=store, progress=progress, cancel=cancel
    )


def user_knowledge(settings: PipelineSettings) -> list:
    """The user's own knowledge files named in ``settings``, read (each a gene → text source for fact sheets)."""
    from scelmo_desktop.core.knowledge.user_files import load_user_knowledge

    return [load_user_knowledge(path) for path in settings.knowledge_files]


def describe_genes_in_budget(
    genes: list[str],
    *,
    settings: PipelineSettings,
    llm: LLMSource,
    store: Store,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> GeneDescriptions:
    """:func:`describe_gene_list` with the settings' mode, flag policy, knowledge files and LLM budget."""
    return describe_gene_list(
        genes,
        mode=settings.mode,
        llm=llm,
        store=store,
        params=settings.params,
        on_flag=settings.on_flag,
        knowledge_files=user_knowledge(settings),
        llm_genes=settings.llm_genes,
        llm_minutes=settings.llm_minutes,
        progress=functools.partial(progress, "describe"),
        cancel=cancel,
    )


def describe_cell_types(
    adata,
    label_key: str,
    *,
    settings: PipelineSettings,
    llm: LLMSource,
    store: Store,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> DescribeResult:
    """Describe each distinct label of ``obs[label_key]`` (METHOD.md §1.2) in ``settings.mode``: the cell-type
    prompt, the prompt grounded in the label's Cell Ontology term, or that term's text alone (facts)."""
    import json

    from scelmo_desktop.core.knowledge.cell_ontology import cell_type_fact_sheets

    labels = sorted(set(label_values(adata, label_key)))
    sheets, mapping = cell_type_fact_sheets(labels) if settings.mode != "llm" else (None, {})
    if settings.mode == "facts":
        return DescribeResult(texts=sheets)
    return describe_entities(
        labels,
        kind="cell_type",
        model_sha256=llm.sha256,
        model_name=llm.name,
        llm_factory=llm.factory,
        store=store,
        template=load_template("cell_type", mode=settings.mode),
        params=settings.params,
        facts=sheets,
        knowledge_id=json.dumps(mapping, sort_keys=True),
        progress=functools.partial(progress, "describe cell types"),
        cancel=cancel,
    )
