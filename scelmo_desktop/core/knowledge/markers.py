"""Cell-type marker genes shipped inside packages, keyed by Cell Ontology id: ``cellconsensus``' weighted
consensus markers (MIT; 1,375 CL types, read through the restricted unpickler, pinned as the package is young)
and ``pegasuspy``'s curated immune hierarchy with positive and negative markers (BSD-3).

The weights are relative ranks within a type (how many source lists support a gene), not probabilities.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache

from scelmo_desktop.core._infra.safe_pickle import safe_unpickle
from scelmo_desktop.core.knowledge.sources import package_file, source_record

CONSENSUS = ("cellconsensus", "cellconsensus", "data/consensus_cache_full.pkl", "MIT")
IMMUNE = ("pegasuspy", "pegasus", "annotate_cluster/human_immune_cell_markers.json", "BSD-3-Clause")


@dataclass
class ImmuneType:
    """One type of pegasus' immune hierarchy: its name, parent, and markers with their sign (+/-)."""

    name: str
    parent: str | None
    positive: list[str] = field(default_factory=list)
    negative: list[str] = field(default_factory=list)


@dataclass
class CellMarkers:
    """Marker genes per Cell Ontology term (weights), term names, source counts, the immune hierarchy."""

    weights: dict[str, dict[str, float]]  # CL id -> gene -> weight
    n_sources: dict[str, int]
    names: dict[str, str]  # CL id -> term name (cellconsensus' copy of the ontology)
    immune: dict[str, ImmuneType]
    depth: dict[str, int] = field(default_factory=dict)  # CL id -> depth in the ontology (deeper: more specific)
    sources: list[dict] = field(default_factory=list)

    @classmethod
    def load(cls) -> CellMarkers | None:
        """The installed marker tables, read once per process; None when neither package is installed."""
        return _load()

    def markers(self, term_id: str, n: int = 10, *, genes=None) -> list[str]:
        """The ``n`` highest-weighted markers of ``term_id`` (among ``genes`` when given), ties by name."""
        weights = self.weights.get(term_id, {})
        if genes is not None:
            keep = set(genes)
            weights = {g: w for g, w in weights.items() if g in keep}
        return [g for g, _ in sorted(weights.items(), key=lambda item: (-item[1], item[0]))[:n]]

    def present_markers(self, term_id: str, n: int, genes, *, at_least: int = 5) -> list[str]:
        """The type's top ``n`` markers that ``genes`` has; when fewer than ``at_least`` are, the ``at_least``
        best it has. A file missing a strong marker (pbmc68k_reduced has no CD14) does not get weaker ones in
        its place, which helps pbmc68k_reduced's own labels and leaves PBMC 3k and Kang unchanged
        (benchmarks/no_reference_annotation.py)."""
        keep = set(genes)
        present = [g for g in self.markers(term_id, n) if g in keep]
        return present if len(present) >= at_least else self.markers(term_id, at_least, genes=keep)

    def immune_type(self, term_id: str) -> ImmuneType | None:
        """pegasus' immune type whose name maps to ``term_id`` exactly or by synonym (its signed markers)."""
        index = self.__dict__.get("_immune_by_term")
        if index is None:
            from scelmo_desktop.core.knowledge.cell_ontology import CellOntology

            ontology, index = CellOntology.load(), {}
            for node in self.immune.values():
                match = ontology.map_label(node.name)
                if match is not None and match.how != "fuzzy":
                    index.setdefault(match.term_id, node)
            self.__dict__["_immune_by_term"] = index
        return index.get(term_id)

    def description(self, term_id: str, n: int = 10) -> str:
        """The markers sentence of a cell-type sheet: top weighted markers, and pegasus' signed ones if any."""
        parts = []
        top = self.markers(term_id, n)
        if top:
            parts.append(f"Marker genes: {', '.join(top)}.")
        node = self.immune_type(term_id)
        if node is not None and node.positive:
            parts.append(
                f"Expresses {', '.join(node.positive[:8])}"
                + (f"; lacks {', '.join(node.negative[:5])}." if node.negative else ".")
            )
        return " ".join(parts)

    def types_marked_by(self, gene: str, *, top: int = 5, min_sources: int = 5) -> list[str]:
        """Cell Ontology ids of the types (with at least ``min_sources`` source lists) where ``gene`` is among
        the ``top`` markers: where it ranks highest first, then the most specific, then the best-supported."""
        return [term for *_, term in self._reverse(top, min_sources).get(gene, [])]

    def _reverse(self, top: int, min_sources: int) -> dict[str, list[tuple]]:
        key = (top, min_sources)
        cache = self.__dict__.setdefault("_reverse_cache", {})
        if key not in cache:
            index: dict[str, list[tuple]] = {}
            for term in self.weights:
                if self.n_sources.get(term, 0) >= min_sources:
                    for rank, gene in enumerate(self.markers(term, top)):
                        index.setdefault(gene, []).append((rank, -self.depth.get(term, 0), -self.n_sources[term], term))
            cache[key] = {gene: sorted(entries) for gene, entries in index.items()}
        return cache[key]


def _immune_types(tree: dict, parent: str | None, out: dict) -> None:
    for entry in tree.get("cell_types", []):
        node = ImmuneType(entry["name"], parent)
        for group in entry.get("markers", []):
            for gene in group.get("genes", []):
                (node.negative if gene.endswith("-") else node.positive).append(gene.rstrip("+-"))
        out[node.name] = node
        if entry.get("subtypes"):
            _immune_types(entry["subtypes"], node.name, out)


@lru_cache(maxsize=1)
def _load() -> CellMarkers | None:
    sources, weights, n_sources, names, immune, depth = [], {}, {}, {}, {}, {}
    distribution, package, relative, licence = CONSENSUS
    path = package_file(package, relative)
    if path is not None:
        data = safe_unpickle(path.read_bytes())
        weights = {term: {str(g): float(w) for g, w in genes.items()} for term, genes in data["consensus"].items()}
        n_sources = {term: int(n) for term, n in data["n_sources"].items()}
        names = {term: str(info.get("name", "")) for term, info in data["ct_info"].items()}
        depth = {term: int(info.get("depth") or 0) for term, info in data["ct_info"].items()}
        sources.append(source_record(distribution, path, licence=licence))
    distribution, package, relative, licence = IMMUNE
    path = package_file(package, relative)
    if path is not None:
        _immune_types(json.loads(path.read_text(encoding="utf-8")), None, immune)
        sources.append(source_record(distribution, path, licence=licence))
    if not sources:
        return None
    return CellMarkers(weights=weights, n_sources=n_sources, names=names, immune=immune, depth=depth, sources=sources)


def marker_terms(
    labels: list[str],
    markers: CellMarkers,
    *,
    genes=None,
    margin: float = 0.8,
    n_markers: int = 10,
    fixed: dict[str, str] | None = None,
) -> dict[str, dict]:
    """Per label, the Cell Ontology term whose markers stand for it, among terms that have markers.

    ``fixed`` gives the term of some labels outright (a tissue preset names its terms by id).

    Exact and synonym matches are taken as they are. A label matched by tokens may fit several terms nearly as
    well ("FCGR3A Monocytes": the intermediate or the non-classical CD16+ monocyte); of those within ``margin``
    of the best score, the one whose markers (among ``genes``) overlap least with the other labels' is chosen,
    as the labels of one file name distinct populations, then the term more marker lists support. On PBMC 3k's
    labels this comes close to terms chosen by hand and well above the best-scoring term alone
    (benchmarks/no_reference_annotation.py)."""
    from scelmo_desktop.core.knowledge.cell_ontology import CellOntology

    ontology = CellOntology.load()
    chosen, pools = {}, {}
    for label in labels:
        if fixed and label in fixed:
            chosen[label] = {"term_id": fixed[label], "how": "preset", "score": 1.0}
            continue
        match = ontology.map_label(label)
        if match is not None and match.how != "fuzzy" and match.term_id in markers.weights:
            chosen[label] = {"term_id": match.term_id, "how": match.how, "score": 1.0}
            continue
        candidates = [(term, score) for term, score in ontology.candidates(label, 10) if term in markers.weights]
        if not candidates:
            chosen[label] = {"term_id": None, "how": "none", "score": 0.0}
            continue
        best = candidates[0][1]
        pools[label] = [c for c in candidates if c[1] >= margin * best]
        chosen[label] = {"term_id": candidates[0][0], "how": "fuzzy", "score": best}

    def top(term):
        return set(
            markers.present_markers(term, n_markers, genes) if genes is not None else markers.markers(term, n_markers)
        )

    for _ in range(2):  # a second pass sees the first pass's choices for every other label
        for label, pool in pools.items():
            others = set().union(*(top(e["term_id"]) for other, e in chosen.items() if other != label and e["term_id"]))
            term, score = min(pool, key=lambda c: (len(top(c[0]) & others), -markers.n_sources.get(c[0], 0), c[0]))
            chosen[label].update(term_id=term, score=score)
    for entry in chosen.values():
        entry["term_label"] = markers.names.get(entry["term_id"], "") if entry["term_id"] else ""
    return chosen
