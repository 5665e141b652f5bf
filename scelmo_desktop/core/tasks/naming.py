"""Name each cluster with a Cell Ontology term from its marker genes and the curated knowledge, with no reference
and no candidate list, and show why.

Every cell type of the marker knowledge (cellconsensus: top markers per Cell Ontology term, weighted by how many
source lists support them) is a candidate. A type's score in a group is the weighted mean, over its top
:data:`N_MARKERS` markers, of how much more often the group expresses the gene than the other cells do
(``pct_in_group - pct_out_group``, in [-1, 1]): a marker that is absent or down counts against the type, so a
type whose defining genes are missing loses to one whose genes are all there. A lineage gate adds pegasus' signed
immune markers: for each of pegasus' types on the candidate's lineage (itself or an ancestor), its positive
markers' evidence minus its negative markers' (NK cells lack CD3, plasma cells MS4A1); the weakest of them, times
:data:`GATE_WEIGHT`, joins the score, so a type whose lineage the group does not show falls behind. When most
cells of the whole file show a lineage (sorted T cells), its markers' share of cells detecting them in the group
and the rest alike stands in for the difference, which is then zero (:func:`_gate`). Markers the
data did not measure count as no evidence with a smaller weight (:data:`UNMEASURED_WEIGHT`), so a type is not named from the few of
its genes a gene panel happens to hold. Ribosomal and mitochondrial genes are left out on both sides: they top
many clusters' lists for technical reasons and name no type.

Not every ontology term is a name: terms that are functional classes rather than lineages
(:data:`NOT_A_LINEAGE`) and the broadest lineages (:data:`BROAD_SHARE` of all types below them: "leukocyte",
"lymphocyte") are left out, as users need a type, not a hub. A tissue hint keeps one branch of the ontology
(``blood``: hematopoietic cells).

Granularity follows the evidence: the best term gives way to its best descendant when that one scores nearly
as well and clearly ahead of its siblings (:func:`_most_specific`), so a parent names a cluster only when its
children do not separate.

The confidence is the softmax share (temperature :data:`TEMPERATURE`) of the call and of the terms on its own
lineage: close runner-ups of another lineage lower it, a parent or child of the call does not. Measured in
``benchmarks/cluster_naming.py``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

N_MARKERS = 25  # markers per type; the no-reference annotation's choice (benchmarks/no_reference_annotation.py)
MIN_SOURCES = 3  # a type needs this many marker lists behind it: single-study entries are noisy
MIN_MEASURED = 3  # a type needs this many of its markers in the data to be scored at all
UNMEASURED_WEIGHT = 0.25
GATE_WEIGHT = 0.5  # the lineage gate's weight against the marker score (benchmarks/cluster_naming.py)
BROAD_SHARE = 0.10
TEMPERATURE = 0.02  # near-identical types score alike, distinct lineages apart (benchmarks/cluster_naming.py)
# a descendant replaces the best term when it scores within DESCEND_WITHIN of it and leads its off-lineage
# siblings by SEPARATES_BY (two softmax temperatures each: a clear gap, not a tie; benchmarks/cluster_naming.py)
DESCEND_WITHIN = 2 * TEMPERATURE
SEPARATES_BY = 2 * TEMPERATURE
MOST_CELLS = 0.5  # a lineage whose genes most cells of the file detect, in a group and the rest alike, shows
SUPPORT_MIN = 0.05  # a marker supports a call when the group expresses it in this much more of its cells
SHOWN = 8
TECHNICAL = re.compile(r"^(RPL|RPS|MRPL|MRPS|MT-)", re.IGNORECASE)
# Cell Ontology classes by function, shape or state, not lineage: never a cluster's name
NOT_A_LINEAGE = {
    "CL:0000000",  # cell
    "CL:0000003",  # native cell
    "CL:0000255",  # eukaryotic cell
    "CL:0000548",  # animal cell
    "CL:0002371",  # somatic cell
    "CL:0002242",  # nucleate cell
    "CL:0000226",  # single nucleate cell
    "CL:0000228",  # multinucleate cell
    "CL:0000225",  # anucleate cell
    "CL:0000219",  # motile cell
    "CL:0000988",  # hematopoietic cell
    "CL:0000081",  # blood cell
    "CL:0011115",  # precursor cell
    "CL:0011026",  # progenitor cell
    "CL:0000034",  # stem cell
    "CL:0000723",  # somatic stem cell
    "CL:0000234",  # phagocyte
    "CL:0000518",  # phagocyte (sensu Vertebrata)
    "CL:0000151",  # secretory cell
    "CL:0000154",  # protein secreting cell
    "CL:0000457",  # biogenic amine secreting cell
    "CL:0000458",  # serotonin secreting cell
    "CL:0000325",  # stuff accumulating cell
    "CL:0000211",  # electrically active cell
    "CL:0000393",  # electrically responsive cell
    "CL:0000404",  # electrically signaling cell
    "CL:0002319",  # neural cell
    "CL:0000095",  # neuron associated cell
    "CL:0000010",  # cultured cell
    "CL:0001034",  # cell in vitro
    "CL:0000578",  # experimentally modified cell in vitro
    "CL:0009002",  # inflammatory cell
}
TISSUE_BRANCHES = {"blood": "CL:0000988"}  # a tissue hint keeps the types under this term (hematopoietic cell)


@dataclass
class GroupName:
    """One group's call: the term, its confidence, and the evidence for it and against it."""

    group: str
    term_id: str  # "" when no type could be scored
    name: str
    score: float
    confidence: float
    supporting: list[dict] = field(default_factory=list)  # the call's markers the group expresses most
    against: list[dict] = field(default_factory=list)  # the call's top markers absent, down or not measured
    runners_up: list[dict] = field(default_factory=list)  # the best types of other lineages, and why they lost
    edited: bool = False  # named by hand (rename, a runner-up taken)
    explanation: dict = field(default_factory=dict)  # a local LLM's reason and choice (naming_explanation)
    mixed: list[dict] = field(default_factory=list)  # two lineages its cells split into (mixed_clusters)
    chosen_by: str = "evidence"  # or "llm": the LLM took a runner-up the evidence ranked
    # named against the cells outside its parent cluster, which also holds these groups (sub_states)
    within: list[str] = field(default_factory=list)

    def within_parent(self) -> str:
        """How it was named, in words, when it was named against the cells outside its parent ("" otherwise)."""
        if not self.within:
            return ""
        others = f"cluster{'s' if len(self.within) > 1 else ''} {', '.join(self.within)}"
        return f"named against the cells outside it and {others}, its nearest on the graph: a state of a larger type"

    def mixed_parts(self) -> str:
        """The two lineages its cells split into, in words ("" when it is not flagged as mixed)."""
        return " and ".join(f"{p['name']} ({p['cells']} cells)" for p in self.mixed)


@dataclass
class Naming:
    """The calls of every group, with what they were chosen from."""

    groups: dict[str, GroupName]
    tissue: str
    n_candidates: int
    settings: dict

    def table(self) -> pd.DataFrame:
        """One row per group: name, ontology id, confidence, score, the markers for and against, the runner-ups."""
        rows = []
        for g in self.groups.values():
            rows.append(
                {
                    "group": g.group,
                    "cell_type": g.name,
                    "ontology_id": g.term_id,
                    "confidence": g.confidence,
                    "score": g.score,
                    "supporting_markers": ", ".join(m["gene"] for m in g.supporting),
                    "absent_or_down": ", ".join(m["gene"] for m in g.against),
                    "runners_up": "; ".join(f"{r['name']} ({r['score']:.3f})" for r in g.runners_up),
                    "edited_by_hand": g.edited,
                    "may_mix": g.mixed_parts(),
                    "named_within": g.within_parent(),
                    **(
                        {
                            "chosen_by": g.chosen_by,
                            "llm_choice": g.explanation.get("name", ""),
                            "llm_reason": g.explanation.get("reason", ""),
                            "llm_flags": "; ".join(g.explanation.get("flags", [])),
                        }
                        if any(c.explanation for c in self.groups.values())
                        else {}
                    ),
                }
            )
        return pd.DataFrame(rows)


class Knowledge:
    """The candidate types with their top markers and weights, and the ontology, prepared once per call."""

    def __init__(self, markers, graph, tissue: str | None):
        below = Counter(a for term in markers.weights for a in graph.ancestors.get(term, {}))
        broad = {t for t, n in below.items() if n >= BROAD_SHARE * len(markers.weights)}
        branch = TISSUE_BRANCHES.get(tissue or "")
        self.graph = graph
        self.names = {t: graph.names.get(t) or markers.names.get(t, t) for t in markers.weights}
        self.candidates = {}
        for term, weights in markers.weights.items():
            if term not in graph.names or term in NOT_A_LINEAGE or term in broad:
                continue
            if markers.n_sources.get(term, 0) < MIN_SOURCES or (branch and not graph.is_under(term, branch)):
                continue
            top = [g for g in sorted(weights, key=lambda g: (-weights[g], g)) if not TECHNICAL.match(g)][:N_MARKERS]
            self.candidates[term] = (top, np.array([weights[g] for g in top], dtype=np.float64))
        # pegasus' signed immune types on each candidate's lineage (itself or an ancestor): the lineage gate
        self.lineage = {}
        for term in self.candidates:
            nodes = [markers.immune_type(a) for a in (term, *graph.ancestors.get(term, {}))]
            unique = {n.name: n for n in nodes if n is not None and (n.positive or n.negative)}
            self.lineage[term] = list(unique.values())


def name_groups(
    table: pd.DataFrame, genes, *, markers, graph, tissue: str | None = None, prepared: Knowledge | None = None
) -> Naming:
    """Name each group of a marker table (:class:`~scelmo_desktop.core.tasks.markers.Markers`' ``table``: group,
    gene, log2_fold_change, pct_in_group, pct_out_group) whose data measured ``genes``, from the marker knowledge
    ``markers`` (:class:`~scelmo_desktop.core.knowledge.markers.CellMarkers`) and the ontology ``graph``
    (``prepared``: the :class:`Knowledge` of these, when the caller has built it already)."""
    knowledge = prepared or Knowledge(markers, graph, tissue)
    measured = {str(g) for g in genes}
    groups = {}
    for group, rows in table.groupby("group", observed=True, sort=False):
        rows = rows.set_index("gene")
        difference = (rows["pct_in_group"] - rows["pct_out_group"]).astype(np.float64)
        groups[str(group)] = name_one(str(group), rows, difference, measured, knowledge)
    settings = {
        "n_markers": N_MARKERS,
        "min_sources": MIN_SOURCES,
        "unmeasured_weight": UNMEASURED_WEIGHT,
        "broad_share": BROAD_SHARE,
        "temperature": TEMPERATURE,
        "descend_within": DESCEND_WITHIN,
        "separates_by": SEPARATES_BY,
    }
    return Naming(groups=groups, tissue=tissue or "any", n_candidates=len(knowledge.candidates), settings=settings)


def best_type(
    difference: pd.Series, measured: set[str], knowledge: Knowledge, detected: pd.Series | None = None
) -> tuple[str, dict[str, float]]:
    """The term a group with this evidence (``pct_in_group - pct_out_group`` per gene; ``detected``: its
    ``pct_in_group``, for the lineage gate) is named, as :func:`name_groups` names it ("" when none scores), and
    every term's score."""
    scores = _scores(difference, measured, knowledge, detected)
    if not scores:
        return "", scores
    return _most_specific(min(scores, key=lambda t: (-scores[t], t)), scores, knowledge.graph), scores


def _scores(
    difference: pd.Series, measured: set[str], knowledge: Knowledge, detected: pd.Series | None = None
) -> dict[str, float]:
    scores, gates = {}, {}
    common = detected_everywhere(difference, detected)
    for term, (top, weights) in knowledge.candidates.items():
        present = np.array([g in measured for g in top])
        if present.sum() < MIN_MEASURED:
            continue
        evidence = difference.reindex(top).fillna(0.0).to_numpy() * present
        score = (weights * evidence).sum() / (weights[present].sum() + UNMEASURED_WEIGHT * weights[~present].sum())
        lineage = [_gate(node, difference, common, measured, gates) for node in knowledge.lineage[term]]
        scores[term] = float(score + GATE_WEIGHT * np.min(lineage)) if lineage else float(score)
    return scores


def lineage_gate(
    term: str, difference: pd.Series, measured: set[str], knowledge: Knowledge, detected: pd.Series | None = None
) -> float | None:
    """How well a group with this evidence shows ``term``'s lineage: the weakest gate of pegasus' signed immune
    types on it (:func:`_gate`); None when its lineage has none."""
    common = detected_everywhere(difference, detected)
    gates = [_gate(node, difference, common, measured, {}) for node in knowledge.lineage.get(term, [])]
    return min(gates) if gates else None


def detected_everywhere(difference: pd.Series, detected: pd.Series | None) -> pd.Series | None:
    """Per gene, the share of cells that detect it in the group and in the rest alike: the smaller of the group's
    share (``detected``, its ``pct_in_group``) and the rest's (``detected - difference``); None without
    ``detected``."""
    if detected is None:
        return None
    inside = detected.reindex(difference.index).fillna(0.0).astype(np.float64)
    return np.minimum(inside, inside - difference)


def _gate(node, difference: pd.Series, common: pd.Series | None, measured: set[str], cache: dict) -> float:
    """How well a group fits one of pegasus' signed immune types: its positive markers' evidence minus its
    negative markers' (NK cells lack CD3). Each side's evidence is the mean of its markers' ``difference``, or,
    when larger, how far the mean share of cells detecting them in the group and the rest alike (``common``,
    :func:`detected_everywhere`) lies above :data:`MOST_CELLS`. Why: when most cells of the whole file show a
    lineage (CD3 in a file of sorted T cells), its genes are no more frequent in one cluster than in the rest, yet
    every cluster plainly shows it; by the difference alone every T-cell type's gate is zero there, and types with
    no gate (innate lymphoid cells) or a CD3-negative one (NK cells) name T-cell clusters. Taken over a type's
    markers together, not gene by gene, so that a few genes any cell detects (CD59, SOX4 in full-length data) do
    not make a lineage; only where that mean share is above :data:`MOST_CELLS`, so a file where no lineage is
    common to most cells is scored as before."""
    if node.name not in cache:

        def side(genes) -> float:
            genes = [g for g in genes if g in measured]
            if not genes:
                return 0.0
            relative = float(np.mean([difference.get(g, 0.0) for g in genes]))
            shared = float(np.mean([common.get(g, 0.0) for g in genes])) if common is not None else 0.0
            return max(relative, shared - MOST_CELLS) if shared > MOST_CELLS else relative

        cache[node.name] = side(node.positive) - side(node.negative)
    return cache[node.name]


def name_one(group: str, rows: pd.DataFrame, difference: pd.Series, measured, knowledge: Knowledge) -> GroupName:
    """One group's call from its marker rows (indexed by gene: ``pct_in_group`` for the lineage gate) and evidence
    (``pct_in_group - pct_out_group``)."""
    best, scores = best_type(difference, measured, knowledge, rows["pct_in_group"])
    if not best:
        return GroupName(group, "", "unnamed", 0.0, 0.0)
    ranked = sorted(scores, key=lambda t: (-scores[t], t))
    values = np.array([scores[t] for t in ranked])
    share = np.exp((values - values[0]) / TEMPERATURE)
    share /= share.sum()
    graph = knowledge.graph

    def lineage_share(term: str) -> float:  # the softmax share of a term and the terms on its lineage
        return float(sum(s for t, s in zip(ranked, share) if graph.related(t, term)))

    confidence = lineage_share(best)
    runners, seen = [], [best]
    for term in ranked[1:]:
        if len(runners) == 3:
            break
        if any(graph.related(term, t) for t in seen):
            continue
        seen.append(term)
        runners.append(
            {
                "term_id": term,
                "name": knowledge.names[term],
                "score": round(scores[term], 4),
                "behind_by": round(scores[best] - scores[term], 4),
                "confidence": round(lineage_share(term), 4),
                "lacks": [m["gene"] for m in _against(term, rows, difference, measured, knowledge)[:4]],
            }
        )
    return GroupName(
        group=group,
        term_id=best,
        name=knowledge.names[best],
        score=round(scores[best], 4),
        confidence=round(confidence, 4),
        supporting=_supporting(best, rows, difference, knowledge),
        against=_against(best, rows, difference, measured, knowledge),
        runners_up=runners,
    )


def _most_specific(best: str, scores: dict[str, float], graph) -> str:
    """Granularity by the evidence: the best-scoring term, or the best of its descendants when that one scores
    within :data:`DESCEND_WITHIN` of it and leads every descendant off its own lineage by :data:`SEPARATES_BY`
    (its markers tell it from its siblings: naive CD4 T from naive CD8 T under "naive T cell"); repeated down the
    ontology. A parent whose children do not separate stays the name."""
    while True:
        below = sorted((t for t in scores if t != best and graph.is_under(t, best)), key=lambda t: (-scores[t], t))
        if not below or scores[best] - scores[below[0]] > DESCEND_WITHIN:
            return best
        child = below[0]
        rivals = [t for t in below[1:] if not graph.related(t, child)]
        if rivals and scores[child] - scores[rivals[0]] < SEPARATES_BY:
            return best
        best = child


def _row(gene: str, rows: pd.DataFrame, note: str = "") -> dict:
    if gene not in rows.index:
        return {"gene": gene, "note": note or "not expressed"}
    r = rows.loc[gene]
    return {
        "gene": gene,
        "log2_fold_change": round(float(r["log2_fold_change"]), 3),
        "pct_in_group": round(float(r["pct_in_group"]), 3),
        "pct_out_group": round(float(r["pct_out_group"]), 3),
        **({"note": note} if note else {}),
    }


def _supporting(term: str, rows, difference: pd.Series, knowledge: Knowledge) -> list[dict]:
    top, weights = knowledge.candidates[term]
    evidence = difference.reindex(top).fillna(0.0).to_numpy()
    order = [i for i in np.argsort(-(weights * evidence), kind="stable") if evidence[i] > SUPPORT_MIN]
    return [_row(top[i], rows) for i in order[:SHOWN]]


def _against(term: str, rows, difference: pd.Series, measured, knowledge: Knowledge) -> list[dict]:
    """The type's ten highest-weighted markers that the group does not express more than the rest does."""
    top, _ = knowledge.candidates[term]
    out = []
    for gene in top[:10]:
        if gene not in measured:
            out.append(_row(gene, rows, "not measured"))
        elif difference.get(gene, 0.0) <= SUPPORT_MIN:
            out.append(_row(gene, rows, "down" if difference.get(gene, 0.0) < -SUPPORT_MIN else "not higher"))
    return out
