"""Gene descriptions in one of three modes, each checked for quality.

* ``llm``: the paper's prompt alone (as the original did).
* ``grounded``: the gene's fact sheet is placed in the prompt, with an instruction to stick to it.
* ``facts``: the fact sheet itself is the description; no LLM (GenePT-style: fast and deterministic).

Every LLM answer gets quality flags (:mod:`scelmo_desktop.core.quality`). With ``on_flag="facts"`` a flagged
answer is replaced by the fact sheet for embedding (the LLM's text stays in the store and the report).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from scelmo_desktop.backends.llm import GenerationParams
from scelmo_desktop.core.descriptions import MODES, DescribeResult, describe_entities, load_template
from scelmo_desktop.core.errors import ScelmoError
from scelmo_desktop.core.jobs import CancelFlag, ProgressFn, no_progress
from scelmo_desktop.core.knowledge.facts import gene_fact_sheets
from scelmo_desktop.core.knowledge.user_files import UserKnowledge
from scelmo_desktop.core.quality import quality_flags
from scelmo_desktop.core.store import Store

FLAG_POLICIES = ("keep", "facts")


@dataclass
class GeneDescriptions(DescribeResult):
    mode: str = "llm"
    generated: dict[str, str] = field(default_factory=dict)  # what the LLM wrote, before any fallback
    flags: dict[str, list[str]] = field(default_factory=dict)
    fell_back: list[str] = field(default_factory=list)
    edited: dict[str, dict] = field(default_factory=dict)  # hand edits applied (they win over any mode)
    knowledge: dict = field(default_factory=dict)

    def flag_counts(self) -> dict[str, int]:
        counts = Counter(flag for flags in self.flags.values() for flag in flags)
        counts["any"] = sum(1 for flags in self.flags.values() if flags)
        return dict(counts)


def describe_gene_list(
    genes: list[str], *, mode: str, llm, store: Store, params: GenerationParams, on_flag: str = "keep",
    knowledge_files: list[UserKnowledge] = (), progress: ProgressFn = no_progress, cancel: CancelFlag | None = None,
) -> GeneDescriptions:
    """Describe ``genes`` in ``mode``; ``llm`` is an :class:`~scelmo_desktop.core.pipeline.LLMSource`."""
    if mode not in MODES:
        raise ScelmoError(f"Unknown description mode '{mode}'; use one of {', '.join(MODES)}.")
    if on_flag not in FLAG_POLICIES:
        raise ScelmoError(f"Unknown flag policy '{on_flag}'; use one of {', '.join(FLAG_POLICIES)}.")
    genes = list(dict.fromkeys(genes))
    sheets = gene_fact_sheets(genes, user=knowledge_files) if mode != "llm" or on_flag == "facts" else None
    knowledge = {"sources": sheets.source, "matches": sheets.match_counts} if sheets else {}
    if mode == "facts":
        progress(len(genes), len(genes), "fact sheets")
        return _apply_edits(GeneDescriptions(texts=dict(sheets.texts), mode=mode, knowledge=knowledge), store)
    described = describe_entities(
        genes, kind="gene", model_sha256=llm.sha256, model_name=llm.name, llm_factory=llm.factory, store=store,
        template=load_template("gene", mode=mode), params=params,
        facts=sheets.texts if sheets else None, knowledge_id=sheets.knowledge_id if sheets else "",
        progress=progress, cancel=cancel,
    )
    result = GeneDescriptions(**vars(described), mode=mode, generated=dict(described.texts), knowledge=knowledge)
    for gene in genes:
        result.flags[gene] = quality_flags(
            described.texts[gene], entity=gene, prompt=described.prompts.get(gene, ""),
            record=sheets.records.get(gene) if sheets else None, n_tokens=described.n_tokens.get(gene),
            max_tokens=params.max_tokens)
        if on_flag == "facts" and result.flags[gene]:
            result.texts[gene] = sheets.texts[gene]
            result.fell_back.append(gene)
    return _apply_edits(result, store)


def _apply_edits(result: GeneDescriptions, store: Store) -> GeneDescriptions:
    result.edited = store.latest_edits("gene", list(result.texts))
    for gene, edit in result.edited.items():
        result.texts[gene] = edit["text"]
    return result
