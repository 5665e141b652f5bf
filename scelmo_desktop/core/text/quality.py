"""Quality flags for a generated description: problems a reader would spot, found mechanically.

Each check is cheap and deterministic, so flags are recomputed from the stored text whenever needed.
"""

from __future__ import annotations

import re
import unicodedata

from scelmo_desktop.core.knowledge.genes import GeneRecord

FLAGS = ("prompt_echo", "repetition", "wrong_script", "too_short", "truncated", "name_absent", "contradicts_facts")
MIN_WORDS = 25
CHROMOSOME_MENTION = re.compile(r"\bchromosome\s+(\d{1,2}|X|Y)\b", re.IGNORECASE)


def _words(text: str) -> list[str]:
    return re.findall(r"[\w'-]+", text.lower())


def _repeated_ngram_fraction(words: list[str], n: int = 5) -> float:
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return 0.0 if not grams else 1.0 - len(set(grams)) / len(grams)


def _non_latin_fraction(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    foreign = sum(1 for c in letters if not unicodedata.name(c, "").startswith(("LATIN", "GREEK")))
    return foreign / len(letters)


def quality_flags(
    text: str,
    *,
    entity: str,
    prompt: str = "",
    record: GeneRecord | None = None,
    n_tokens: int | None = None,
    max_tokens: int | None = None,
) -> list[str]:
    """The subset of :data:`FLAGS` that applies to ``text`` (empty list: nothing found)."""
    flags = []
    words = _words(text)
    prompt_head = " ".join(_words(prompt)[:8])
    if prompt_head and prompt_head in " ".join(words):
        flags.append("prompt_echo")
    if _repeated_ngram_fraction(words) > 0.25:
        flags.append("repetition")
    if _non_latin_fraction(text) > 0.05:
        flags.append("wrong_script")
    if len(words) < MIN_WORDS:
        flags.append("too_short")
    if (n_tokens is not None and max_tokens is not None and n_tokens >= max_tokens) or (
        text.strip() and text.strip()[-1] not in ".!?)\"'…"
    ):
        flags.append("truncated")
    names = {entity.lower()}
    if record is not None:
        names |= {record.symbol.lower(), record.long_name.lower()}
    if not any(name and name in text.lower() for name in names):
        flags.append("name_absent")
    if record is not None and _contradicts(text, record):
        flags.append("contradicts_facts")
    return flags


def _contradicts(text: str, record: GeneRecord) -> bool:
    """Checkable contradictions with the fact sheet: another chromosome, or the wrong kind of gene."""
    mentioned = {m.upper() for m in CHROMOSOME_MENTION.findall(text)}
    if record.chromosome and mentioned and record.chromosome.upper() not in mentioned:
        return True
    lowered = text.lower()
    if record.gene_type == "protein_coding" and re.search(
        r"\b(is a|is an)\s+(pseudogene|non-coding rna|lncrna)", lowered
    ):
        return True
    return False
