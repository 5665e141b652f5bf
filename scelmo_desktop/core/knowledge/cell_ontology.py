"""Map free-text cell-type labels to Cell Ontology terms (from ``cellxgene-ontology-guide``, read offline).

Matching order: exact label, exact synonym, then a fuzzy token match with a reported score. Lab labels are
terse ("CD14+ Monocyte", "CD56+ NK", "CD4+/CD25 T Reg"), so the fuzzy step first expands common
abbreviations and marker notation ("+" → "-positive") and then scores IDF-weighted token overlap, so that
rare, informative words (cd14, monocyte) count more than frequent ones (cell, positive).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from scelmo_desktop.core._infra.errors import ScelmoError

ABBREVIATIONS = {
    r"\bt ?reg\b": "regulatory t cell",
    r"\bnk\b": "natural killer cell",
    r"\bdc\b": "dendritic cell",
    r"\bmono\b": "monocyte",
    r"\bb\b": "b cell",
    r"\bt\b": "t cell",
    r"\bpdc\b": "plasmacytoid dendritic cell",
}
STOP = {"cell", "cells", "of", "the", "and", "a", "human"}


@dataclass(frozen=True)
class CellTypeMatch:
    """A user's label mapped to a Cell Ontology term: the term, how it matched and the match score."""

    label: str  # the user's label
    term_id: str
    term_label: str
    definition: str
    synonyms: tuple[str, ...]
    how: str  # exact | synonym | fuzzy
    score: float  # 1.0 for exact and synonym matches

    def fact_sheet(self) -> str:
        synonyms = f" Also called {', '.join(self.synonyms)}." if self.synonyms else ""
        return f"{self.term_label} ({self.term_id}): {self.definition}{synonyms}".strip()


def _normalise(text: str) -> str:
    text = text.lower().replace("/", " ").replace(",", " ")
    text = re.sub(r"(\w)\+", r"\1-positive", text)
    text = re.sub(r"(cd\d+\w*)-(?=\s|$)", r"\1-negative", text)
    text = re.sub(r"(cd\d+\w*)-(low|high|dim|bright)\b", r"\1\2", text)  # "CD14-low": one token, not CD14
    for pattern, expansion in ABBREVIATIONS.items():
        text = re.sub(pattern, expansion, text)
    return " ".join(text.split())


def _tokens(text: str) -> list[str]:
    """Words of a label; a marker keeps its sign in one token ("cd25pos" differs from "cd25neg")."""
    text = _normalise(text).replace("-positive", "pos").replace("-negative", "neg")
    tokens = [t for t in re.split(r"[^a-z0-9]+", text) if t and t not in STOP]
    # a bare marker in a label names a positive population ("CD14 Monocytes", "CD8 T")
    return [f"{t}pos" if BARE_MARKER.match(t) else t for t in tokens]


BARE_MARKER = re.compile(r"^cd\d+[a-z]?$")
CD_ALIAS = re.compile(r"^CD\d+$")


class CellOntology:
    """The Cell Ontology terms, indexed to map free-text labels by exact label, synonym, then IDF-weighted tokens."""

    def __init__(self, terms: dict[str, tuple[str, str, tuple[str, ...]]], version: str):
        self.terms = terms  # id -> (label, definition, synonyms)
        self.version = version
        self._exact = {label.lower(): tid for tid, (label, _, _) in terms.items()}
        self._synonym = {}
        for tid, (_, _, synonyms) in terms.items():
            for synonym in synonyms:
                self._synonym.setdefault(synonym.lower(), tid)
        self._term_tokens = {tid: set(_tokens(label)) for tid, (label, _, _) in terms.items()}
        counts = Counter(token for tokens in self._term_tokens.values() for token in tokens)
        self._idf = {token: math.log(len(terms) / n) for token, n in counts.items()}

    def _singular(self, token: str) -> str:
        """``monocytes`` → ``monocyte`` when the singular is an ontology word (labels are often plural)."""
        return token[:-1] if token.endswith("s") and token not in self._idf and token[:-1] in self._idf else token

    @classmethod
    def load(cls) -> CellOntology:
        return _load()

    def _match(self, tid: str, label: str, how: str, score: float) -> CellTypeMatch:
        term_label, definition, synonyms = self.terms[tid]
        return CellTypeMatch(label, tid, term_label, definition, synonyms, how, round(score, 3))

    def map_label(self, label: str) -> CellTypeMatch | None:
        key = label.strip().lower()
        if key in self._exact:
            return self._match(self._exact[key], label, "exact", 1.0)
        if key in self._synonym:
            return self._match(self._synonym[key], label, "synonym", 1.0)
        normalised = _normalise(label)
        for candidate in (normalised, normalised + " cell"):
            if candidate in self._exact:
                return self._match(self._exact[candidate], label, "exact", 1.0)
        found = self.candidates(label, 1)
        return self._match(found[0][0], label, "fuzzy", found[0][1]) if found else None

    def candidates(self, label: str, n: int = 5) -> list[tuple[str, float]]:
        """The ``n`` best fuzzy matches of ``label``: (term id, IDF-weighted token overlap in [0, 1]), best
        first, ties by id. Exact and synonym matches are :meth:`map_label`'s first steps, not scored here."""
        query = {self._singular(t) for t in _tokens(_markers_as_cd(label))}
        if not query:
            return []
        weight = lambda words: sum(self._idf.get(w, math.log(len(self.terms))) for w in words)  # noqa: E731
        scored = [
            (-weight(query & tokens) / weight(query | tokens), tid)
            for tid, tokens in self._term_tokens.items()
            if query & tokens
        ]
        return [(tid, round(-score, 6)) for score, tid in sorted(scored)[:n]]


def _markers_as_cd(label: str) -> str:
    """Gene symbols in a label written as their CD names ("FCGR3A Monocytes" → "CD16 Monocytes"), as the
    ontology names populations by CD markers; without the gene catalog the label is left as it is."""
    from scelmo_desktop.core.knowledge.genes import GeneCatalog

    catalog = GeneCatalog.load()
    if catalog is None:
        return label
    words = []
    for word in label.split():
        record = catalog.records.get(word) if word.isupper() and not BARE_MARKER.match(word.lower()) else None
        cd = next((a for a in (record.aliases if record else []) if CD_ALIAS.match(a)), None)
        words.append(cd or word)
    return " ".join(words)


@lru_cache(maxsize=1)
def read_cell_ontology() -> tuple[dict[str, dict], str]:
    """The Cell Ontology's terms as ``cellxgene-ontology-guide`` bundles them (term id → label, description,
    synonyms, ancestors with their steps, deprecated) and its version; read once per process, for both the
    label matcher here and the graph naming walks (:mod:`~scelmo_desktop.core.knowledge.ontology_graph`)."""
    try:
        from cellxgene_ontology_guide.supported_versions import CXGSchema
    except ImportError as exc:
        raise ScelmoError("The Cell Ontology needs cellxgene-ontology-guide; install the knowledge extra.") from exc
    schema = CXGSchema()
    raw = {tid: entry for tid, entry in schema.ontology("CL").items() if tid.startswith("CL:")}
    return raw, f"CL {schema.supported_ontologies['CL']['version']} (cellxgene schema {schema.version})"


@lru_cache(maxsize=1)
def _load() -> CellOntology:
    raw, version = read_cell_ontology()
    by_label = {str(entry["label"]): tid for tid, entry in raw.items()}  # a label's last term, as the guide maps
    terms = {
        tid: (raw[tid]["label"], raw[tid].get("description") or "", tuple(raw[tid].get("synonyms") or ()))
        for tid in by_label.values()
    }
    return CellOntology(terms, version)


def cell_type_fact_sheets(labels: list[str], ontology: CellOntology | None = None) -> tuple[dict[str, str], dict]:
    """Per label, a sheet from its Cell Ontology term (definition, synonyms) and, with the marker tables
    installed, the term's markers (cellconsensus' top 10; pegasus' positive and negative markers); the term is
    the one annotation scores (``marker_terms``). Returns the texts and the mapping record (term id, term label,
    how, score per label; the marker sources) for provenance."""
    from scelmo_desktop.core.knowledge.markers import CellMarkers, marker_terms

    ontology = ontology or CellOntology.load()
    table = CellMarkers.load()
    chosen = marker_terms(list(labels), table) if table is not None else {}
    texts, mapping = {}, {}
    for label in labels:
        entry = chosen.get(label) or {}
        if entry.get("term_id") in ontology.terms:  # marker_terms already mapped it: the term annotation scores
            match = ontology._match(entry["term_id"], label, entry["how"], entry["score"])
        else:
            match = ontology.map_label(label)
        if match is None:
            texts[label] = f"Cell type {label}."
            mapping[label] = {"how": "none"}
            continue
        markers = table.description(match.term_id) if table is not None else ""
        texts[label] = f"{label}: {match.fact_sheet()} {markers}".strip()
        mapping[label] = {
            "term_id": match.term_id,
            "term_label": match.term_label,
            "how": match.how,
            "score": match.score,
        }
    record = {"cell_ontology": ontology.version or "cellxgene-ontology-guide", "mapping": mapping}
    if table is not None:
        record["markers"] = table.sources
    return texts, record
