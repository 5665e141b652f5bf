"""LLM descriptions of genes and cell types (METHOD.md §1.1–1.2), cached in the store and resumable.

The prompt comes verbatim from a template file in ``resources/prompts/``. Each answer is committed to the
store as soon as it is generated, so a cancelled or killed run loses at most the answers in flight (one per
batch slot when the backend decodes several at once), and a re-run asks the LLM only for the entities that are
still missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, check_cancel, no_progress
from scelmo_desktop.core._infra.paths import resources_dir
from scelmo_desktop.core._infra.provenance import sha256_json, sha256_text
from scelmo_desktop.core.protocols import GenerationParams, LLMBackend
from scelmo_desktop.core.text.store import DescriptionKey, Store

ENTITY_KINDS = ("gene", "cell_type")
PLACEHOLDER = "{entity}"
FACTS_PLACEHOLDER = "{facts}"
# llm: the paper's prompt alone; grounded: the fact sheet inside the prompt; facts: the fact sheet itself, no LLM
MODES = ("llm", "grounded", "facts")


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt template for one entity kind; ``render`` fills ``{entity}`` and, when grounded, ``{facts}``."""

    kind: str
    text: str

    @property
    def sha256(self) -> str:
        return sha256_text(self.text)

    @property
    def grounded(self) -> bool:
        return FACTS_PLACEHOLDER in self.text

    def render(self, entity: str, facts: str = "") -> str:
        return self.text.replace(FACTS_PLACEHOLDER, facts).replace(PLACEHOLDER, entity)


def load_template(kind: str = "gene", path=None, *, mode: str = "llm") -> PromptTemplate:
    """The prompt template for ``kind`` from ``resources/prompts/<kind>[_grounded].txt`` (or a user file)."""
    if kind not in ENTITY_KINDS:
        raise ScelmoError(f"Unknown entity kind '{kind}'; use one of {', '.join(ENTITY_KINDS)}.")
    suffix = "_grounded" if mode == "grounded" else ""
    template_path = path or resources_dir() / "prompts" / f"{kind}{suffix}.txt"
    try:
        text = open(template_path, encoding="utf-8").read().strip()
    except OSError as exc:
        raise ScelmoError(f"Cannot read prompt template {template_path}: {exc.strerror}.") from exc
    if PLACEHOLDER not in text:
        raise ScelmoError(f"Prompt template {template_path} has no {PLACEHOLDER} placeholder for the {kind} name.")
    return PromptTemplate(kind=kind, text=text)


def description_key(
    kind: str, model_sha256: str, template: PromptTemplate, params: GenerationParams, knowledge_id: str = ""
) -> DescriptionKey:
    """``knowledge_id`` names the fact sources of a grounded prompt, so new knowledge never reuses old answers."""
    return DescriptionKey(
        kind=kind,
        model_sha256=model_sha256,
        template_sha256=sha256_text(template.text + knowledge_id),
        params_sha256=sha256_json(params.as_dict()),
    )


@dataclass
class DescribeResult:
    """Texts, prompts and token counts of the described entities, with LLM calls, cache hits, time and budget flag."""

    texts: dict[str, str]
    prompts: dict[str, str] = field(default_factory=dict)
    n_tokens: dict[str, int | None] = field(default_factory=dict)
    n_llm_calls: int = 0
    n_cached: int = 0
    generated_tokens: int = 0
    generation_seconds: float = 0.0
    budget_reached: bool = False  # the time budget ended generation; entities not in ``texts`` were not described


def describe_entities(
    entities: list[str],
    *,
    kind: str,
    model_sha256: str,
    model_name: str,
    llm_factory: Callable[[], LLMBackend],
    store: Store,
    template: PromptTemplate,
    params: GenerationParams,
    facts: dict[str, str] | None = None,
    knowledge_id: str = "",
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
    deadline: float | None = None,
) -> DescribeResult:
    """Describe every entity, reusing stored answers; returns the texts and how many LLM calls were made.

    A grounded template gets each entity's fact sheet from ``facts``. ``deadline`` (a ``time.monotonic()``
    value) ends generation once passed: the answers so far are kept and stored, ``budget_reached`` is set, and
    the remaining entities are left out of ``texts``.

    ``llm_factory`` is called only when something is missing, so a fully cached run never loads the model.
    Raises :class:`~scelmo_desktop.core._infra.jobs.Cancelled` on cancel, after the last answer has been stored.
    """
    entities = list(dict.fromkeys(entities))  # de-duplicate, keep order
    if template.grounded and facts is None:
        raise ScelmoError(
            "The grounded prompt needs fact sheets; install the knowledge extra or use the llm description mode."
        )
    key = description_key(kind, model_sha256, template, params, knowledge_id if template.grounded else "")
    stored = store.get_descriptions(key, entities)
    result = DescribeResult(
        texts={e: stored[e].text for e in entities if e in stored},
        prompts={e: stored[e].prompt for e in stored},
        n_tokens={e: stored[e].n_tokens for e in stored},
        n_cached=len(stored),
    )
    todo = [e for e in entities if e not in stored]
    total = len(entities)
    progress(result.n_cached, total, f"{result.n_cached} cached")
    if not todo:
        return result
    llm = llm_factory()
    prompts = [template.render(entity, (facts or {}).get(entity, "")) for entity in todo]
    row_params = {**params.as_dict(), "batch_size": _parallel(llm)}  # provenance only, not part of the key
    answers = _answers(llm, prompts, params, cancel)
    for index, generation in answers:
        entity, prompt = todo[index], prompts[index]
        store.put_description(
            key,
            entity,
            generation.text,
            prompt=prompt,
            model_name=model_name,
            params=row_params,
            n_tokens=generation.n_tokens,
            seconds=generation.seconds,
        )
        result.texts[entity] = generation.text
        result.prompts[entity] = prompt
        result.n_tokens[entity] = generation.n_tokens
        result.n_llm_calls += 1
        result.generated_tokens += generation.n_tokens
        result.generation_seconds += generation.seconds
        progress(result.n_cached + result.n_llm_calls, total, entity)
        if deadline is not None and time.monotonic() >= deadline and result.n_cached + result.n_llm_calls < total:
            result.budget_reached = True
            answers.close()  # stops the batch: answers in flight are dropped, finished ones are stored
            break
    return result


def _parallel(llm) -> int:
    return int(getattr(llm, "parallel", 1))


def _answers(llm, prompts: list[str], params: GenerationParams, cancel: CancelFlag | None):
    """Answers as they end: batched when the backend can (each is stored at once by the caller), else one by one."""
    if _parallel(llm) > 1 and hasattr(llm, "generate_many"):
        yield from llm.generate_many(prompts, params, cancel=cancel)
        return
    for index, prompt in enumerate(prompts):
        check_cancel(cancel)
        yield (
            index,
            (llm.generate(prompt, params, cancel=cancel) if cancel is not None else llm.generate(prompt, params)),
        )
