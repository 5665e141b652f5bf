"""Gene descriptions in one of three modes, each checked for quality.

* ``llm``: the paper's prompt alone (as the original did).
* ``grounded``: the gene's fact sheet is placed in the prompt, with an instruction to stick to it.
* ``facts``: the fact sheet itself is the description; no LLM (GenePT-style: fast and deterministic).

The LLM is slow on a CPU (seconds a gene), so it must not be what bounds coverage: in ``llm`` and ``grounded``
mode an LLM budget (``llm_genes``, most variable first, and/or ``llm_minutes``) says how many genes the LLM
describes; every other gene keeps its fact sheet, so the table always covers every requested gene.

Every LLM answer gets quality flags (:mod:`scelmo_desktop.core.text.quality`). Policy for a flagged answer:
``keep`` it; ``facts``: embed the fact sheet instead; ``regenerate``: ask once more with sampling (another seed)
and fall back to the fact sheet if that answer is flagged too. Every answer stays in the store and the report.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, no_progress
from scelmo_desktop.core.knowledge.facts import gene_fact_sheets
from scelmo_desktop.core.knowledge.user_files import UserKnowledge
from scelmo_desktop.core.protocols import GenerationParams
from scelmo_desktop.core.settings import default
from scelmo_desktop.core.text.generation import MODES, DescribeResult, describe_entities, load_template
from scelmo_desktop.core.text.quality import quality_flags
from scelmo_desktop.core.text.store import Store

FLAG_POLICIES = ("keep", "regenerate", "facts")
# regenerate: one more try with sampling (greedy decoding would repeat the same answer), then the fact sheet
RETRY_TEMPERATURE = 0.7


@dataclass
class GeneDescriptions(DescribeResult):
    """Gene texts and how each was made: mode, LLM answer, flags, fallbacks, hand edits, fact-sheet genes."""

    mode: str = "llm"
    generated: dict[str, str] = field(default_factory=dict)  # what the LLM wrote, before any fallback
    flags: dict[str, list[str]] = field(default_factory=dict)
    fell_back: list[str] = field(default_factory=list)
    edited: dict[str, dict] = field(default_factory=dict)  # hand edits applied (they win over any mode)
    knowledge: dict = field(default_factory=dict)
    from_facts: list[str] = field(default_factory=list)  # genes outside the LLM budget: their fact sheet is the text

    def budget_report(self) -> dict:
        """How the texts were made: LLM answers vs fact sheets, and whether a time budget ended the LLM."""
        return {
            "genes": len(self.texts),
            "llm": len(self.generated),
            "fact_sheets": len(self.from_facts),
            "time_budget_reached": self.budget_reached,
        }

    def flag_counts(self) -> dict[str, int]:
        counts = Counter(flag for flags in self.flags.values() for flag in flags)
        counts["any"] = sum(1 for flags in self.flags.values() if flags)
        return dict(counts)


def describe_gene_list(
    genes: list[str],
    *,
    mode: str,
    llm,
    store: Store,
    params: GenerationParams,
    on_flag: str = default("on_flag"),
    knowledge_files: list[UserKnowledge] = (),
    llm_genes: int | None = None,
    llm_minutes: float | None = None,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> GeneDescriptions:
    """Describe ``genes`` in ``mode``; ``llm`` is an :class:`~scelmo_desktop.core.protocols.LLMSource`.

    In ``llm``/``grounded`` mode only the first ``llm_genes`` genes (None: all) go to the LLM, and generation
    stops after ``llm_minutes`` (None: no limit); the other genes get their fact sheets."""
    if mode not in MODES:
        raise ScelmoError(f"Unknown description mode '{mode}'; use one of {', '.join(MODES)}.")
    if on_flag not in FLAG_POLICIES:
        raise ScelmoError(f"Unknown flag policy '{on_flag}'; use one of {', '.join(FLAG_POLICIES)}.")
    genes = list(dict.fromkeys(genes))
    bounded = llm_genes is not None or llm_minutes is not None
    needs_sheets = mode != "llm" or on_flag != "keep" or bounded
    sheets = gene_fact_sheets(genes, user=knowledge_files) if needs_sheets else None
    knowledge = {"sources": sheets.source, "matches": sheets.match_counts} if sheets else {}
    if mode == "facts" or llm_genes == 0:
        progress(len(genes), len(genes), "fact sheets")
        return _apply_edits(
            GeneDescriptions(texts=dict(sheets.texts), mode=mode, knowledge=knowledge, from_facts=list(genes)), store
        )
    llm_part = genes if llm_genes is None else genes[:llm_genes]
    described = describe_entities(
        llm_part,
        kind="gene",
        model_sha256=llm.sha256,
        model_name=llm.name,
        llm_factory=llm.factory,
        store=store,
        template=load_template("gene", mode=mode),
        params=params,
        facts=sheets.texts if sheets else None,
        knowledge_id=sheets.knowledge_id if sheets else "",
        progress=progress,
        cancel=cancel,
        deadline=time.monotonic() + 60.0 * llm_minutes if llm_minutes is not None else None,
    )
    result = GeneDescriptions(**vars(described), mode=mode, generated=dict(described.texts), knowledge=knowledge)
    result.from_facts = [gene for gene in genes if gene not in described.texts]
    for gene in result.from_facts:
        result.texts[gene] = sheets.texts[gene]

    def check(texts: DescribeResult, gene: str, retry_params: GenerationParams) -> list[str]:
        return quality_flags(
            texts.texts[gene],
            entity=gene,
            prompt=texts.prompts.get(gene, ""),
            record=sheets.records.get(gene) if sheets else None,
            n_tokens=texts.n_tokens.get(gene),
            max_tokens=retry_params.max_tokens,
        )

    result.flags = {gene: check(described, gene, params) for gene in result.generated}
    flagged = [gene for gene in result.generated if result.flags[gene]]
    if on_flag == "regenerate" and flagged:
        retry_params = replace(params, temperature=RETRY_TEMPERATURE, seed=params.seed + 1)
        retried = describe_entities(
            flagged,
            kind="gene",
            model_sha256=llm.sha256,
            model_name=llm.name,
            llm_factory=llm.factory,
            store=store,
            template=load_template("gene", mode=mode),
            params=retry_params,
            facts=sheets.texts,
            knowledge_id=sheets.knowledge_id,
            cancel=cancel,
        )
        result.n_llm_calls += retried.n_llm_calls
        result.n_cached += retried.n_cached
        for gene in flagged:
            retry_flags = check(retried, gene, retry_params)
            if not retry_flags:
                result.texts[gene] = result.generated[gene] = retried.texts[gene]
                result.flags[gene] = []
        flagged = [gene for gene in flagged if result.flags[gene]]
    if on_flag in ("facts", "regenerate"):
        for gene in flagged:
            result.texts[gene] = sheets.texts[gene]
            result.fell_back.append(gene)
    return _apply_edits(result, store)


def _apply_edits(result: GeneDescriptions, store: Store) -> GeneDescriptions:
    result.edited = store.latest_edits("gene", list(result.texts))
    for gene, edit in result.edited.items():
        result.texts[gene] = edit["text"]
    return result
