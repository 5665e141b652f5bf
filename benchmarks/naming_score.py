"""The project's scorer for automatic cell-type naming (no reference, no candidate labels) against curated Cell
Ontology truth: the rules of ``shared/NAMING.md`` and of the header of its reference scorer
``shared/naming/score_naming.py``, written here so the benchmark stands on its own (``benchmarks/cluster_naming.py``
also runs the reference scorer beside it when that file exists, and the two must agree cell by cell).

Rules (the reference's numbering):

0. Ontology: the Cell Ontology bundled in ``cellxgene-ontology-guide``, read offline through
   :class:`~scelmo_desktop.core.knowledge.ontology_graph.OntologyGraph` (is_a and part_of edges; each term's
   ancestors with their shortest distance in steps). ``d(a, b)``: steps from ``a`` up to its ancestor ``b``.
1. Cells: the truth cells; a truth label mapped to no term (``None``) is excluded from every count; truth cells
   with no prediction (removed by the run's QC, say) count as unnamed.
2. Prediction: ``CL:0000624`` (``CL_0000624`` and IRIs accepted). Empty / ``unknown`` / ``nan`` and the like: no
   prediction, credit 0, counted in ``unmapped``. An id the ontology does not hold: credit 0, ``invalid``. (The
   graph leaves deprecated terms out, so a deprecated id is invalid here; the reference swaps in its replacement
   when CL names one. Neither the app nor the baseline can predict one: both draw only from live terms.)
3. Credit of ``p`` against a truth id ``t`` (the label's id and its alt_ids are tried, the best kept):
   FULL 1.0 when ``p == t``, ``p`` under ``t``, or ``p`` a direct parent of ``t`` that is neither GENERIC nor HUB;
   PARTIAL 0.5 when (a) ``p`` is an ancestor of ``t`` within 3 steps and not GENERIC, or (b) ``p`` and ``t`` share
   an ancestor ``q`` within 3 steps of ``t`` that is neither GENERIC nor HUB; else 0.
4. Guard: a FULL becomes PARTIAL when (i) ``p`` is FULL for another label's id at a strictly smaller match
   distance, or (ii) ``p`` is FULL only as ``t``'s direct parent and is also an ancestor of another label's id.
5. score = mean credit over scored cells; full / partial = the share of cells with credit 1 / 0.5; the per-label
   mean (each truth label weighs 1) is GPTCelltype's unit.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import pandas as pd

from scelmo_desktop.core.knowledge.ontology_graph import OntologyGraph

# Root-like terms that say nothing about lineage (reference scorer, GENERIC)
GENERIC = {
    "CL:0000000": "cell",
    "CL:0000003": "native cell",
    "CL:0000255": "eukaryotic cell",
    "CL:0000548": "animal cell",
    "CL:0002371": "somatic cell",
    "CL:0002242": "nucleate cell",
    "CL:0000226": "single nucleate cell",
    "CL:0000228": "multinucleate cell",
    "CL:0000225": "anucleate cell",
    "CL:0000219": "motile cell",
    "CL:0000988": "hematopoietic cell",
    "CL:0000081": "blood cell",
    "CL:0011115": "precursor cell",
    "CL:0011026": "progenitor cell",
    "CL:0000034": "stem cell",
    "CL:0000723": "somatic stem cell",
    "CL:0000234": "phagocyte",
    "CL:0000518": "phagocyte (sensu Vertebrata)",
    "CL:0000151": "secretory cell",
    "CL:0000325": "stuff accumulating cell",
    "CL:0000211": "electrically active cell",
    "CL:0000393": "electrically responsive cell",
    "CL:0000404": "electrically signaling cell",
    "CL:0002319": "neural cell",
    "CL:0000095": "neuron associated cell",
    "CL:0000010": "cultured cell",
    "CL:0001034": "cell in vitro",
    "CL:0000578": "experimentally modified cell in vitro",
    "CL:0000154": "protein secreting cell",
    "CL:0000457": "biogenic amine secreting cell",
    "CL:0000458": "serotonin secreting cell",
}
# Broad lineages: partial as ancestors (rule a), too broad to make two types "the same broad type" (rule b)
HUB = {
    "CL:0000738": "leukocyte",
    "CL:0000842": "mononuclear leukocyte",
    "CL:0000542": "lymphocyte",
    "CL:0000763": "myeloid cell",
    "CL:0000766": "myeloid leukocyte",
    "CL:0000113": "mononuclear phagocyte",
    "CL:0000145": "professional antigen presenting cell",
    "CL:0000094": "granulocyte",
    "CL:0000125": "glial cell",
    "CL:0000126": "macroglial cell",
    "CL:0000066": "epithelial cell",
    "CL:0000499": "stromal cell",
    "CL:0002320": "connective tissue cell",
    "CL:0000080": "circulating cell",
}
NO_PREDICTION = {"", "nan", "none", "null", "unknown", "unassigned", "na", "n/a", "-", "<na>"}
FULL, PARTIAL, NONE = 1.0, 0.5, 0.0

_MONOCYTE_CD14 = {"id": "CL:0001054", "alt_ids": ["CL:0000860"]}  # CD14-positive monocyte; classical monocyte
# Truth label -> Cell Ontology id (and alt_ids scored alike), copied from shared/naming/naming_truth.json (the
# curation NAMING.md points to; CL v2026-03-26 as cellxgene-ontology-guide 1.11.1 bundles it). Notes kept short.
TRUTH = {
    "pbmc3k": {
        "label_key": "celltype",
        "labels": {
            "CD4 T": {"id": "CL:0000624"},  # CD4-positive, alpha-beta T cell
            "CD14 Monocytes": _MONOCYTE_CD14,
            "B": {"id": "CL:0000236"},  # B cell
            "CD8 T": {"id": "CL:0000625"},  # CD8-positive, alpha-beta T cell
            "FCGR3A Monocytes": {"id": "CL:0002396"},  # CD14-low, CD16-positive monocyte
            "NK": {"id": "CL:0000623"},  # natural killer cell
            "Dendritic": {"id": "CL:0000451"},  # dendritic cell
            # megakaryocyte; platelet accepted: the PPBP/PF4 cluster is platelets (not under megakaryocyte in CL)
            "Megakaryocytes": {"id": "CL:0000556", "alt_ids": ["CL:0000233"]},
        },
    },
    "kang_control": {
        "label_key": "cell_type",
        "where": {"condition": "control"},
        "labels": {
            "CD14+ Monocytes": _MONOCYTE_CD14,
            "CD4+ T cells": {"id": "CL:0000624"},
            "B": {"id": "CL:0000236"},
            "CD16+ Monocytes": {"id": "CL:0002396"},
            "CD8+ T cells": {"id": "CL:0000625"},
            "T": {"id": "CL:0000084"},  # T cell: activated T cells the authors did not split into CD4/CD8
            "NK cells": {"id": "CL:0000623"},
            "DC": {"id": "CL:0000451"},  # dendritic cell: mostly myeloid DC, no pDC markers
        },
    },
    "pbmc68k_reduced": {
        "label_key": "bulk_labels",
        "labels": {
            "CD14+ Monocyte": _MONOCYTE_CD14,
            "Dendritic": {"id": "CL:0000451"},
            "CD56+ NK": {"id": "CL:0000623"},  # all NK cells, not only CD56-bright
            "CD4+/CD25 T Reg": {"id": "CL:0000792"},  # CD4-positive, CD25-positive, alpha-beta regulatory T cell
            "CD19+ B": {"id": "CL:0000236"},
            "CD8+ Cytotoxic T": {"id": "CL:0000625"},  # all CD8 T cells; the cytotoxic child scores full anyway
            "CD4+/CD45RO+ Memory": {"id": "CL:0000897"},  # CD4-positive, alpha-beta memory T cell
            "CD8+/CD45RA+ Naive Cytotoxic": {"id": "CL:0000900"},  # naive thymus-derived CD8+ alpha-beta T cell
            "CD4+/CD45RA+/CD25- Naive T": {"id": "CL:0000895"},  # naive thymus-derived CD4+ alpha-beta T cell
            "CD34+": {"id": "CL:0008001"},  # hematopoietic precursor cell (HSC and MPP are its children)
        },
    },
}


def truth_ids(dataset: str) -> dict[str, list[str]]:
    """Each truth label of ``dataset`` -> its Cell Ontology ids (id first, then alt_ids); labels mapped to
    nothing are left out (excluded from scoring)."""
    return {
        label: [entry["id"], *entry.get("alt_ids", [])]
        for label, entry in TRUTH[dataset]["labels"].items()
        if entry.get("id")
    }


class Scorer:
    """Credits of predicted Cell Ontology ids against truth ids, by the rules of this module's docstring."""

    def __init__(self, graph: OntologyGraph | None = None):
        self.graph = graph or OntologyGraph.load()
        self.anc = self.graph.ancestors  # term -> {ancestor: steps}, the term itself left out
        self.version = self.graph.version

    def normalise(self, value) -> tuple[str | None, str]:
        """-> (id or None, 'ok' | 'none' | 'invalid')."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None, "none"
        text = str(value).strip()
        if text.lower() in NO_PREDICTION:
            return None, "none"
        found = re.search(r"CL[:_](\d{7})", text)
        if not found:
            return None, "invalid"
        term = f"CL:{found.group(1)}"
        return (term, "ok") if term in self.graph.names else (None, "invalid")

    def full_distance(self, p: str, t: str) -> int | None:
        """The match distance when ``p`` is a FULL match for ``t`` (rule 3), else None."""
        if p == t:
            return 0
        if t in self.anc.get(p, {}):  # more specific: any depth
            return self.anc[p][t]
        if self.anc.get(t, {}).get(p) == 1 and p not in GENERIC and p not in HUB:  # a specific direct parent
            return 1
        return None

    def is_partial(self, p: str, t: str) -> bool:
        steps = self.anc.get(t, {}).get(p)
        if steps is not None and steps <= 3 and p not in GENERIC:  # (a) a close ancestor that says a lineage
            return True
        above_p = self.anc.get(p, {})
        return any(  # (b) the same broad type: a shared ancestor within 3 steps of t, neither generic nor a hub
            d <= 3 and q not in GENERIC and q not in HUB and q in above_p for q, d in self.anc.get(t, {}).items()
        )

    def credit(self, p: str, ids: list[str], other_ids: list[str], *, guard: bool = True) -> tuple[float, bool]:
        """-> (credit, capped by the guard) of a valid id ``p`` for a label with ``ids``, the data set's other
        labels having ``other_ids``."""
        distances = {t: self.full_distance(p, t) for t in ids}
        full_for = [t for t, d in distances.items() if d is not None]
        if full_for:
            if guard:
                best = min(distances[t] for t in full_for)
                for other in other_ids:  # (i) p names another population of this data set more closely
                    d = self.full_distance(p, other)
                    if d is not None and d < best:
                        return PARTIAL, True
                parent_only = all(p != t and t not in self.anc.get(p, {}) for t in full_for)
                if parent_only and any(p in self.anc.get(other, {}) for other in other_ids):  # (ii) does not separate
                    return PARTIAL, True
            return FULL, False
        if any(self.is_partial(p, t) for t in ids):
            return PARTIAL, False
        return NONE, False

    def score(self, predicted: pd.Series, truth: pd.Series, dataset: str, *, guard: bool = True) -> dict:
        """Score ``predicted`` ids (indexed by cell) against the truth labels ``truth`` (indexed by cell) of
        ``dataset`` (a key of :data:`TRUTH`). Returns the summary, the per-label table and the per-cell credits."""
        ids_of = truth_ids(dataset)
        truth = truth.astype(str)
        unknown = sorted(set(truth.unique()) - set(TRUTH[dataset]["labels"]))
        if unknown:
            raise ValueError(f"truth label(s) {unknown} of {dataset} have no entry in TRUTH")
        scored = truth[truth.isin(list(ids_of))]
        present = list(scored.unique())
        predicted = predicted[~predicted.index.duplicated()]
        values = predicted.reindex(scored.index)
        rows, cache = [], {}
        for cell, label, raw in zip(scored.index, scored.to_numpy(), values.to_numpy(dtype=object)):
            key = (label, None if raw is None or (isinstance(raw, float) and math.isnan(raw)) else str(raw))
            if key not in cache:
                term, status = self.normalise(raw)
                if term is None:
                    cache[key] = (None, status, NONE, False)
                else:
                    others = [t for other in present if other != label for t in ids_of[other] if t not in ids_of[label]]
                    cache[key] = (term, status, *self.credit(term, ids_of[label], others, guard=guard))
            rows.append((cell, label, *cache[key]))
        cells = pd.DataFrame(rows, columns=["cell", "truth_label", "pred_id", "status", "credit", "guard_capped"])
        cells = cells.set_index("cell")
        per_label = []
        for label, n in Counter(cells["truth_label"]).most_common():
            c = cells[cells["truth_label"] == label]
            per_label.append(
                {
                    "label": label,
                    "truth": ids_of[label][0],
                    "n": n,
                    "full": float((c["credit"] == FULL).mean()),
                    "partial": float((c["credit"] == PARTIAL).mean()),
                    "score": float(c["credit"].mean()),
                    "unmapped": int((c["status"] == "none").sum()),
                    "top": ", ".join(
                        f"{t} {self.graph.names.get(t, '')} x{k}"
                        for t, k in Counter(c["pred_id"].fillna("(none)")).most_common(3)
                    ),
                }
            )
        per_label = pd.DataFrame(per_label)
        n = len(cells)

        def mean(column):
            return float(per_label[column].mean()) if len(per_label) else 0.0

        summary = {
            "n_scored": n,
            "n_excluded": int(len(truth) - n),
            "n_missing": int((~scored.index.isin(predicted.index)).sum()),
            "full": float((cells["credit"] == FULL).mean()) if n else 0.0,
            "partial": float((cells["credit"] == PARTIAL).mean()) if n else 0.0,
            "score": float(cells["credit"].mean()) if n else 0.0,
            "unmapped": int((cells["status"] == "none").sum()),
            "invalid": int((cells["status"] == "invalid").sum()),
            "guard_capped": int(cells["guard_capped"].sum()),
            "macro_full": mean("full"),
            "macro_partial": mean("partial"),
            "macro_score": mean("score"),
        }
        return {"summary": summary, "per_label": per_label, "cells": cells}
