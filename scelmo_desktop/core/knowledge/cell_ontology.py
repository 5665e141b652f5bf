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
    r"\bt ?reg\b": "regulatory t cell", r"\bnk\b": "natural killer cell", r"\bdc\b": "dendritic cell",
    r"\bmono\b": "monocyte", r"\bb\b": "b cell", r"\bt\b": "t cell", r"\bpdc\b": "plasmacytoid dendritic cell",
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
    for pattern, expansion in ABBREVIATIONS.items():
        text = re.sub(pattern, expansion, text)
    return " ".join(text.split())


def _tokens(text: str) -> list[str]:
    """Words of a label; a marker keeps its sign in one token ("cd25pos" differs from "cd25neg")."""
    text = _normalise(text).replace("-positive", "pos").replace("-negative", "neg")
    return [t for t in re.split(r"[^a-z0-9]+", text) if t and t not in STOP]


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
        query = set(_tokens(label))
        if not query:
            return None
        best, best_score = None, 0.0
        for tid, tokens in self._term_tokens.items():
            shared = query & tokens
            if not shared:
                continue
            weight = lambda words: sum(self._idf.get(w, math.log(len(self.terms))) for w in words)  # noqa: E731
            score = weight(shared) / weight(query | tokens)
            if score > best_score or (score == best_score and best is not None and tid < best):
                best, best_score = tid, score
        return self._match(best, label, "fuzzy", best_score) if best else None


@lru_cache(maxsize=1)
def _load() -> CellOntology:
    try:
        from cellxgene_ontology_guide.ontology_parser import OntologyParser
    except ImportError as exc:
        raise ScelmoError("The Cell Ontology needs cellxgene-ontology-guide; install the knowledge extra.") from exc
    parser = OntologyParser()
    ids = [tid for tid in parser.get_term_label_to_id_map("CL").values() if tid.startswith("CL:")]
    labels, definitions, synonyms = parser.map_term_labels(ids), parser.map_term_descriptions(ids), parser.map_term_synonyms(ids)
    terms = {tid: (labels[tid], definitions.get(tid) or "", tuple(synonyms.get(tid) or ())) for tid in ids}
    version = str(parser.cxg_schema.ontology("CL").get("version", "")) if hasattr(parser.cxg_schema, "ontology") else ""
    return CellOntology(terms, version)


def cell_type_fact_sheets(labels: list[str], ontology: CellOntology | None = None) -> tuple[dict[str, str], dict]:
    """Per label, a sheet from its mapped Cell Ontology term; returns the texts and the mapping record
    (term id, term label, how, score per label) for provenance."""
    ontology = ontology or CellOntology.load()
    texts, mapping = {}, {}
    for label in labels:
        match = ontology.map_label(label)
        if match is None:
            texts[label] = f"Cell type {label}."
            mapping[label] = {"how": "none"}
        else:
            texts[label] = f"{label}: {match.fact_sheet()}"
            mapping[label] = {"term_id": match.term_id, "term_label": match.term_label, "how": match.how,
                              "score": match.score}
    return texts, {"cell_ontology": ontology.version or "cellxgene-ontology-guide", "mapping": mapping}
