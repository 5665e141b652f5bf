"""Fact sheets for a list of gene names, with a report of how each name was matched."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from scelmo_desktop.core.knowledge.genes import GeneCatalog, GeneRecord, fact_sheet


@dataclass
class FactSheets:
    texts: dict[str, str]
    records: dict[str, GeneRecord | None]
    match_counts: dict[str, int] = field(default_factory=dict)
    source: dict = field(default_factory=dict)

    @property
    def knowledge_id(self) -> str:
        return json.dumps(self.source, sort_keys=True)


def gene_fact_sheets(names: list[str], catalog: GeneCatalog | None = None) -> FactSheets:
    """One sheet per name; names unknown to the catalog (or with no catalog installed) get "Gene NAME."."""
    catalog = catalog if catalog is not None else GeneCatalog.load()
    records, hows = {}, Counter()
    for name in names:
        record, how = catalog.resolve(name) if catalog is not None else (None, "no-catalog")
        records[name] = record
        hows[how] += 1
    return FactSheets(texts={n: fact_sheet(n, records[n]) for n in names}, records=records,
                      match_counts=dict(hows), source=catalog.source if catalog is not None else {"genes": "none"})
