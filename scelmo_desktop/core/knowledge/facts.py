"""Fact sheets for a list of gene names, with a report of how each name was matched."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from scelmo_desktop.core.knowledge.function import GeneFunction
from scelmo_desktop.core.knowledge.genes import GeneCatalog, GeneRecord, fact_sheet, truncate_words
from scelmo_desktop.core.knowledge.markers import CellMarkers
from scelmo_desktop.core.knowledge.user_files import UserKnowledge

MAX_SHEET_CHARS = 900  # ~200 word pieces: inside all-MiniLM-L6-v2's 256-token window
N_PROCESSES, N_PATHWAYS, N_MARKED = 5, 3, 3  # what a sheet says a gene does, within the window
# what a sheet says and in which order; bumped when that changes, so grounded answers cached for the old
# layout are not reused (the knowledge id holds it beside the source files' hashes)
SHEET_FORMAT = 2


def function_sentences(symbol: str, function: GeneFunction | None, markers: CellMarkers | None) -> list[str]:
    """What ``symbol`` does, from the shipped curated sets: its most specific GO biological processes, its
    pathways and the cell types it is a top marker of; empty without the knowledge extra's function sources.

    GO molecular functions and term definitions (the GO databases have both) are left out on measurement:
    added to the sheet (definitions and functions, functions alone, or only functions annotated to ≤ 100 genes)
    they lowered the marker → cell-type retrieval AUC of benchmarks/gene_text_quality.py; "protein binding" and
    long definitions dilute the words that name a cell type."""
    sentences = []
    if function is not None:
        if processes := function.processes_of(symbol, N_PROCESSES):
            sentences.append("Biological processes: " + "; ".join(processes) + ".")
        if pathways := function.pathways_of(symbol, N_PATHWAYS):
            sentences.append("Pathways: " + "; ".join(pathways) + ".")
    if markers is not None:
        if marked := [markers.names[t] for t in markers.types_marked_by(symbol)[:N_MARKED] if markers.names.get(t)]:
            sentences.append("Marker of: " + "; ".join(marked) + ".")
    return sentences


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


def gene_fact_sheets(
    names: list[str],
    catalog: GeneCatalog | None = None,
    user: list[UserKnowledge] = (),
    held_out: frozenset[str] = frozenset(),
) -> FactSheets:
    """One sheet per name; names unknown to the catalog (or with no catalog installed) get "Gene NAME." (plus
    what the function sources know of the name). ``held_out`` leaves sources out (``function``: GO and
    pathways, ``markers``: the cell types a gene marks), so a benchmark can score what the rest carries.

    Texts from the user's own knowledge files come first (they are the curated summaries, e.g. NCBI's),
    followed by the catalog facts, all within :data:`MAX_SHEET_CHARS`.
    """
    catalog = catalog if catalog is not None else GeneCatalog.load()
    function = GeneFunction.load() if "function" not in held_out else None
    markers = CellMarkers.load() if "markers" not in held_out else None
    records, hows, texts = {}, Counter(), {}
    for name in names:
        record, how = catalog.resolve(name) if catalog is not None else (None, "no-catalog")
        records[name] = record
        hows[how] += 1
        symbol = record.symbol if record is not None else name
        summaries = [t for t in (k.text_for(name) or k.text_for(symbol) for k in user) if t]
        facts = fact_sheet(
            name, record, max_chars=MAX_SHEET_CHARS, function=function_sentences(symbol, function, markers)
        )
        if summaries:
            facts = " ".join(summaries) + (" " + facts if record is not None else "")
            facts = truncate_words(facts, MAX_SHEET_CHARS)
            hows["user-file"] += 1
        texts[name] = facts
    source = catalog.source if catalog is not None else {"genes": "none"}
    function_sources = (function.sources if function else []) + (markers.sources if markers else [])
    if function_sources:  # part of the knowledge id: a grounded answer is cached per sheet content
        source = {**source, "function": function_sources, "sheet_format": SHEET_FORMAT}
    if user:
        source = {**source, "user_files": [k.source for k in user]}
    return FactSheets(texts=texts, records=records, match_counts=dict(hows), source=source)
