"""The Cell Ontology as a graph: each term's ancestors with their distance in steps (is_a and part_of edges), read
offline from the copy ``cellxgene-ontology-guide`` bundles. Naming walks it to keep a call's lineage consistent
and to tell a parent term from its children."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from scelmo_desktop.core.knowledge.cell_ontology import read_cell_ontology


@dataclass(frozen=True)
class OntologyGraph:
    """Term names and ancestors (term id → {ancestor id: steps}) of the Cell Ontology, without deprecated terms."""

    names: dict[str, str]
    ancestors: dict[str, dict[str, int]]
    version: str

    @classmethod
    def load(cls) -> OntologyGraph:
        """The bundled Cell Ontology, read once per process."""
        return _load()

    def is_under(self, term: str, ancestor: str) -> bool:
        """Whether ``ancestor`` is ``term`` or one of its ancestors (any depth)."""
        return term == ancestor or ancestor in self.ancestors.get(term, {})

    def related(self, a: str, b: str) -> bool:
        """Whether one term is the other or lies on its lineage (ancestor or descendant)."""
        return self.is_under(a, b) or self.is_under(b, a)


@lru_cache(maxsize=1)
def _load() -> OntologyGraph:
    raw, version = read_cell_ontology()
    live = {tid: entry for tid, entry in raw.items() if not entry.get("deprecated")}
    names = {tid: str(entry.get("label", "")) for tid, entry in live.items()}
    ancestors = {
        tid: {a: int(d) for a, d in (entry.get("ancestors") or {}).items() if a != tid and a in live}
        for tid, entry in live.items()
    }
    return OntologyGraph(names=names, ancestors=ancestors, version=version)
