"""Fact sheets for a list of gene names, with a report of how each name was matched."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from scelmo_desktop.core.knowledge.genes import GeneCatalog, GeneRecord, fact_sheet, truncate_words
from scelmo_desktop.core.knowledge.user_files import UserKnowledge

MAX_SHEET_CHARS = 900  # ~200 word pieces: inside all-MiniLM-L6-v2's 256-token window


@dataclass
class FactSheets:
    """A fact sheet per gene name, the catalog record behind each, match-kind counts and the knowledge sources."""

    texts: dict[str, str]
    records: dict[str, GeneRecord | None]
    match_counts: dict[str, int] = field(default_factory=dict)
    source: dict = field(default_factory=dict)

    @property
    def knowledge_id(self) -> str:
        return json.dumps(self.source, sort_keys=True)


def gene_fact_sheets(names: list[str], catalog: GeneCatalog | None = None,
                     user: list[UserKnowledge] = ()) -> FactSheets:
    """One sheet per name; names unknown to the catalog (or with no catalog installed) get "Gene NAME.".

    Texts from the user's own knowledge files come first (they are the curated summaries, e.g. NCBI's),
    followed by the catalog facts, all within :data:`MAX_SHEET_CHARS`.
    """
    catalog = catalog if catalog is not None else GeneCatalog.load()
    records, hows, texts = {}, Counter(), {}
    for name in names:
        record, how = catalog.resolve(name) if catalog is not None else (None, "no-catalog")
        records[name] = record
        hows[how] += 1
        symbol = record.symbol if record is not None else name
        summaries = [t for t in (k.text_for(name) or k.text_for(symbol) for k in user) if t]
        facts = fact_sheet(name, record, max_chars=MAX_SHEET_CHARS)
        if summaries:
            facts = " ".join(summaries) + (" " + facts if record is not None else "")
            facts = truncate_words(facts, MAX_SHEET_CHARS)
            hows["user-file"] += 1
        texts[name] = facts
    source = catalog.source if catalog is not None else {"genes": "none"}
    if user:
        source = {**source, "user_files": [k.source for k in user]}
    return FactSheets(texts=texts, records=records, match_counts=dict(hows), source=source)
