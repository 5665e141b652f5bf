"""A local LLM's short explanation of a cluster's name, written from the evidence the knowledge scoring found
(:mod:`~scelmo_desktop.core.tasks.naming`), and its choice among the candidates that evidence ranks.

The LLM sees only the cluster's supporting markers (with their fractions in and out of the cluster and fold
changes), the two lineages its cells split into when it may mix them, each candidate's curated markers that are
absent or not higher, and the candidates themselves, numbered. It answers with a number and a reason. It cannot name a type of its own: an answer whose number is
missing or out of range keeps the evidence's call. Each answer is checked, and its flags say what was wrong:

* ``no choice``: no candidate number could be read;
* ``cites genes outside the evidence``: genes of the data that the prompt did not show (a reason the evidence
  does not back);
* ``repeats the prompt``: most of the reason is copied from the prompt (what a small base model does);
* ``empty``: no reason at all.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from scelmo_desktop.core.protocols import GenerationParams

# a reason of two or three sentences (the declared max_tokens); one blank line may separate "Choice" from "Reason"
EXPLANATION_PARAMS = GenerationParams(stop=("\n\n\n", "<end_of_turn>"))
SHOWN_MARKERS = 8
ECHO_SHARE = 0.6  # a reason whose word 6-grams are mostly the prompt's is a copy, not a reason
GENE_TOKEN = re.compile(r"\b[A-Za-z][A-Za-z0-9.\-]*[A-Za-z0-9]\b")
CHOICE = re.compile(r"choice\s*[:\-]?\s*\(?#?(\d+)", re.IGNORECASE)
LEADING_NUMBER = re.compile(r"^\s*\(?#?(\d+)[).:\s]")
REASON = re.compile(r"reason\s*[:\-]\s*(.*)", re.IGNORECASE | re.DOTALL)


@dataclass
class Explanation:
    """One group's explanation: the candidate the LLM chose (None when it chose none it was offered), its reason,
    what the check found, and the genes it cited."""

    choice: int | None  # index into the candidates: 0 is the evidence's call
    term_id: str
    name: str
    reason: str
    flags: list[str] = field(default_factory=list)
    cited: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return self.choice == 0

    def as_dict(self) -> dict:
        return {**asdict(self), "agrees": self.agrees}


def candidates(call) -> list[dict]:
    """The call and its runner-ups (:class:`~scelmo_desktop.core.tasks.naming.GroupName`), best first: the only
    names the LLM may choose."""
    first = {
        "term_id": call.term_id,
        "name": call.name,
        "score": call.score,
        "lacks": [m["gene"] for m in call.against],
    }
    return [first, *({k: r[k] for k in ("term_id", "name", "score", "lacks")} for r in call.runners_up)]


def explanation_prompt(call) -> str:
    """The prompt for one group: its markers, the numbered candidates with the markers each lacks, the task."""
    markers = [m for m in call.supporting if "pct_in_group" in m][:SHOWN_MARKERS]
    lines = [
        f"A cluster of single cells ({call.group}) is to be named. Use only the evidence below.",
        "",
        "Its marker genes (share of the cluster's cells expressing the gene vs the other cells; log2 fold change):",
        *(
            f"- {m['gene']}: {m['pct_in_group']:.0%} vs {m['pct_out_group']:.0%}; {m['log2_fold_change']:+.1f}"
            for m in markers
        ),
        *(
            [
                "",
                f"Its cells split into two parts named differently: {call.mixed_parts()}.",
            ]
            if call.mixed
            else []
        ),
        "",
        "Candidate cell types, ranked by how well curated marker lists fit the cluster:",
    ]
    for number, candidate in enumerate(candidates(call), start=1):
        lacks = ", ".join(candidate["lacks"][:4]) or "none"
        lines.append(
            f"{number}. {candidate['name']} ({candidate['term_id']}), score {candidate['score']:.2f}; "
            f"its markers not higher here: {lacks}"
        )
    lines += [
        "",
        "Choose one candidate by its number and give the reason in two or three sentences, citing only the genes "
        "listed above. Answer in this form:",
        "Choice: <number>",
        "Reason: <two or three sentences>",
    ]
    return "\n".join(lines)


def read_answer(text: str, call, *, prompt: str, data_genes) -> Explanation:
    """The LLM's ``text`` for ``call``, read and checked against the ``prompt`` it was given and ``data_genes``
    (every gene the data measured, to tell a cited gene from an ordinary word)."""
    options = candidates(call)
    text = (text or "").strip()
    match = CHOICE.search(text) or LEADING_NUMBER.search(text)
    number = int(match.group(1)) if match else None
    choice = number - 1 if number is not None and 1 <= number <= len(options) else None
    reason_match = REASON.search(text)
    reason = (reason_match.group(1) if reason_match else CHOICE.sub("", text)).strip()
    flags = []
    if choice is None:
        flags.append("no choice" if number is None else f"chose {number}, not a candidate")
    if not reason:
        flags.append("empty")
    genes = {str(g) for g in data_genes}  # as written: "SET" is a gene, "set" a word
    cited = sorted({t for t in GENE_TOKEN.findall(reason) if t in genes})
    shown = set(GENE_TOKEN.findall(prompt))
    outside = [g for g in cited if g not in shown]
    if outside:
        flags.append("cites genes outside the evidence: " + ", ".join(outside))
    if _echo_share(text, prompt) >= ECHO_SHARE:  # the whole answer: an echo may copy the template's "Reason:"
        flags.append("repeats the prompt")
    kept = options[choice if choice is not None else 0]
    return Explanation(choice, kept["term_id"], kept["name"], reason, flags, cited)


def _echo_share(answer: str, prompt: str, n: int = 6) -> float:
    """The share of the answer's word n-grams found in the prompt."""
    words, source = answer.lower().split(), prompt.lower().split()
    if len(words) < n:
        return 0.0
    prompt_grams = {tuple(source[i : i + n]) for i in range(len(source) - n + 1)}
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return sum(g in prompt_grams for g in grams) / len(grams)
