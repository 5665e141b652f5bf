"""Cell-type names for clusters from their marker genes and the curated knowledge, composed once for every door:
``scelmo run`` (its default), ``scelmo annotate --mode markers``, ``scelmo.tl.name_cell_types`` and the app's
Markers panel. Hand edits (rename, take a runner-up, merge) go through :func:`rename_group` so they are kept in
the record; a local LLM's explanations (and, when allowed, its choice among the ranked candidates) go through
:func:`explain_names`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from scelmo_desktop.core._infra.atomic import write_text_atomic
from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, no_progress
from scelmo_desktop.core._infra.provenance import h5ad_safe, now_iso, package_versions
from scelmo_desktop.core.data.io import Expression
from scelmo_desktop.core.embedding.symbols import catalog_spelling, data_symbols
from scelmo_desktop.core.keys import (
    CLUSTER_KEY,
    NAME_KEY,
    UNS_KEY,
    add_record,
    analysis_rep,
    neighbors_key,
    read_record,
)
from scelmo_desktop.core.protocols import GenerationParams, LLMSource
from scelmo_desktop.core.settings import default
from scelmo_desktop.core.tasks.markers import Markers
from scelmo_desktop.core.tasks.mixed_clusters import mixed_groups
from scelmo_desktop.core.tasks.naming import GroupName, Knowledge, Naming, name_groups
from scelmo_desktop.core.tasks.naming_explanation import (
    EXPLANATION_PARAMS,
    candidates,
    explanation_prompt,
    read_answer,
)
from scelmo_desktop.core.tasks.sub_states import LESS_LIKELY_THAN_NOT, named_within_parents, parent_cells

NAMES_FILE = "cell_types.csv"


def knowledge_for_naming():
    """The marker knowledge and the ontology graph, or a clear error when the knowledge extra is missing."""
    from scelmo_desktop.core.knowledge.markers import CellMarkers
    from scelmo_desktop.core.knowledge.ontology_graph import OntologyGraph

    markers = CellMarkers.load()
    if markers is None or not markers.weights:
        raise ScelmoError(
            "Naming cell types needs the curated marker tables (cellconsensus) of the knowledge extra; "
            "install it, or set the naming setting to off."
        )
    return markers, OntologyGraph.load()


def symbol_map(expression: Expression, symbol_column: str | None = None) -> dict[str, str]:
    """The data's gene names that are not the knowledge's symbols, mapped to them: Ensembl ids (through a symbol
    column, or the ids the gene catalog knows), as every other step maps them, and symbols spelled another way
    than the catalog's (mouse and rat ``Cd3e``, :func:`~scelmo_desktop.core.embedding.symbols.catalog_spelling`);
    empty when nothing maps."""
    try:
        symbols = catalog_spelling(data_symbols(expression, symbol_column))
    except ScelmoError:  # ids nothing maps: naming finds no type and says so
        return {}
    return {str(g): str(s) for g, s in zip(expression.var_names, symbols) if str(g) != str(s)}


def name_cell_types(
    adata,
    markers: Markers,
    expression: Expression,
    *,
    symbol_column: str | None = None,
    tissue: str | None = default("tissue"),
    key_added: str = NAME_KEY,
) -> Naming:
    """Name every group of ``markers`` (found on ``obs[markers.groupby]`` in ``expression``, the matrix the test
    ran on: ``.raw`` when the data has it) and write, per cell, ``obs[key_added]`` (the name),
    ``obs['<key_added>_ontology_id']`` (the Cell Ontology id) and ``obs['<key_added>_confidence']``, and per group
    the evidence in ``uns['scelmo']['naming']`` (markers for and against, runner-ups, the two lineages its cells
    split into when it may mix them (``mixed``), the knowledge's sources and version). Hand renames of a group
    with the very same cells are kept."""
    knowledge, graph = knowledge_for_naming()
    earlier = read_record(adata, "naming")
    kept_edits = json.loads(earlier.get("hand_edits", "[]")) if earlier.get("groupby") == markers.groupby else []
    symbols = symbol_map(expression, symbol_column)
    table = markers.table.assign(gene=markers.table["gene"].map(lambda g: symbols.get(g, g)))
    measured = [symbols.get(str(g), str(g)) for g in expression.var_names]
    prepared = Knowledge(knowledge, graph, tissue)
    naming = name_groups(table, measured, markers=knowledge, graph=graph, tissue=tissue, prepared=prepared)
    groups = adata.obs[markers.groupby].astype(str)
    for group, parts in mixed_groups(expression.matrix, measured, groups, naming.groups, prepared).items():
        naming.groups[group].mixed = parts
    parents = graph_parents(adata, groups)
    if parents:
        renamed = named_within_parents(expression.matrix, measured, groups, parents, naming.groups, prepared)
        naming.groups.update(renamed)
        naming.settings["named_within_parent_below_confidence"] = LESS_LIKELY_THAN_NOT
    _write_calls(adata, groups, naming, key_added)
    add_record(
        adata,
        "naming",
        h5ad_safe(
            {
                "created_at": now_iso(),
                "method": "knowledge: curated marker sets scored on each group's markers, with a lineage gate",
                "groupby": markers.groupby,
                "key": key_added,
                "tissue": naming.tissue,
                "n_candidates": naming.n_candidates,
                "settings": naming.settings,
                "ontology": graph.version,
                "knowledge": knowledge.sources,
                "groups": _groups_json(naming),
                "hand_edits": "[]",
                "versions": package_versions(),
            }
        ),
    )
    for edit in kept_edits:  # the analyst's names outlive a re-naming, for a group of the very same cells
        group = edit["group"]
        if group in naming.groups and edit.get("cells") == _fingerprint(adata, groups == group):
            rename_group(adata, group, edit["name"], term_id=edit.get("term_id", ""), naming=naming)
    return naming


def graph_parents(adata, groups: pd.Series) -> dict[str, np.ndarray]:
    """Each group's parent cells (:func:`~scelmo_desktop.core.tasks.sub_states.parent_cells`) on the analysis's
    neighbour graph; empty when the data has no graph (groups of the user's own, named from a file)."""
    connectivities = adata.obsp.get(f"{neighbors_key(analysis_rep(adata))}_connectivities")
    if connectivities is None or connectivities.shape[0] != len(groups):
        return {}
    return parent_cells(groups.to_numpy(), connectivities)


def clear_names(adata, key_added: str = NAME_KEY) -> None:
    """Remove the names and their record (the clusters changed and were not named again)."""
    columns = [key_added, f"{key_added}_ontology_id", f"{key_added}_confidence"]
    adata.obs.drop(columns=[c for c in columns if c in adata.obs], inplace=True)
    if isinstance(adata.uns.get(UNS_KEY), dict):
        adata.uns[UNS_KEY].pop("naming", None)


def _groups_json(naming: Naming) -> str:
    return json.dumps({g: vars(call) for g, call in naming.groups.items()})


def _fingerprint(adata, cells) -> str:
    """Which cells a group holds, in a few characters (cluster ids are reused by a new clustering)."""
    names = "\n".join(sorted(map(str, adata.obs_names[np.asarray(cells)])))
    return hashlib.sha1(names.encode()).hexdigest()[:16]


def _write_calls(adata, groups: pd.Series, naming: Naming, key_added: str) -> None:
    calls = naming.groups
    adata.obs[key_added] = pd.Categorical(groups.map({g: c.name for g, c in calls.items()}).fillna("unnamed"))
    adata.obs[f"{key_added}_ontology_id"] = pd.Categorical(
        groups.map({g: c.term_id for g, c in calls.items()}).fillna("")
    )
    adata.obs[f"{key_added}_confidence"] = (
        groups.map({g: c.confidence for g, c in calls.items()}).fillna(0.0).astype(np.float32)
    )


def naming_evidence(adata) -> dict[str, dict]:
    """The per-group calls and evidence that :func:`name_cell_types` stored (empty when the data has none)."""
    record = read_record(adata, "naming")
    groups = record.get("groups")
    return json.loads(groups) if isinstance(groups, str) else {}


def naming_of_data(adata) -> Naming:
    """The calls :func:`name_cell_types` stored in ``adata`` (with hand edits and explanations), as a
    :class:`~scelmo_desktop.core.tasks.naming.Naming`."""
    record = read_record(adata, "naming")
    if not record:
        raise ScelmoError("Name the clusters first: the data has no cell-type names (uns['scelmo']['naming']).")
    calls = {group: GroupName(**call) for group, call in naming_evidence(adata).items()}
    settings = record.get("settings", {})
    return Naming(
        groups=calls,
        tissue=str(record.get("tissue", "any")),
        n_candidates=int(record.get("n_candidates", 0)),
        settings=json.loads(settings) if isinstance(settings, str) else dict(settings),
    )


def rename_group(
    adata, group: str, name: str, *, term_id: str = "", naming: Naming | None = None, key_added: str | None = None
) -> None:
    """A hand edit: the cells of ``group`` (of the naming's grouping) get ``name`` (and ``term_id``, as when a
    runner-up is taken) with confidence 1, in ``naming``'s table too when given; recorded in
    ``uns['scelmo']['naming']`` (``hand_edits``, with which cells the group held, and the group's call)."""
    record = dict(read_record(adata, "naming"))
    groupby = record.get("groupby", CLUSTER_KEY)
    key_added = key_added or record.get("key", NAME_KEY)
    if groupby not in adata.obs or key_added not in adata.obs:
        raise ScelmoError("Name the clusters first: there are no cell-type names to edit.")
    cells = (adata.obs[groupby].astype(str) == str(group)).to_numpy()
    if not cells.any():
        raise ScelmoError(f"obs['{groupby}'] has no group '{group}'.")
    name = name.strip()
    if not name:
        raise ScelmoError("A cell-type name cannot be empty.")
    for column, value in ((key_added, name), (f"{key_added}_ontology_id", term_id)):
        values = adata.obs[column].astype(str).to_numpy().copy()
        values[cells] = value
        adata.obs[column] = pd.Categorical(values)
    confidence = adata.obs[f"{key_added}_confidence"].to_numpy(np.float32).copy()
    confidence[cells] = 1.0  # the analyst's call: no score behind it
    adata.obs[f"{key_added}_confidence"] = confidence
    calls = naming_evidence(adata)
    if naming is not None and str(group) in naming.groups:
        call = naming.groups[str(group)]
        call.name, call.term_id, call.confidence, call.edited = name, term_id, 1.0, True
        calls[str(group)] = vars(call)
    elif str(group) in calls:
        calls[str(group)].update(name=name, term_id=term_id, confidence=1.0, edited=True)
    edits = json.loads(record.get("hand_edits", "[]"))
    edits.append(
        {"group": str(group), "name": name, "term_id": term_id, "cells": _fingerprint(adata, cells), "at": now_iso()}
    )
    record["hand_edits"] = json.dumps(edits)
    record["groups"] = json.dumps(calls)
    add_record(adata, "naming", record)


WEAK_MODEL_FLAG = "a model measured too weak for explanations (the embedded 270M): bring a GGUF of your own"


def explain_names(
    adata,
    naming: Naming,
    llm: LLMSource,
    expression: Expression,
    *,
    symbol_column: str | None = None,
    choose: bool = False,
    params: GenerationParams = EXPLANATION_PARAMS,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> Naming:
    """A local LLM explains each named group's call from its evidence (never a hand-named one); with ``choose``,
    a checked answer (no flag) that picks a runner-up renames the group to it, with that candidate's confidence
    (``chosen_by`` = ``llm``). ``expression``: the matrix the markers were found on (its genes tell a cited gene
    from a word). Writes each group's ``explanation`` into ``uns['scelmo']['naming']`` (``groups``), the model,
    its sha256 and the decoding settings (``explanations``), and the names into the naming's obs columns.
    Answers already given are kept if the job is cancelled."""
    record = dict(read_record(adata, "naming"))
    if not record:
        raise ScelmoError("Name the clusters first: there are no cell-type names to explain.")
    backend = llm.factory()
    if backend is None:
        raise ScelmoError(
            "Explaining names needs an LLM: choose a GGUF (the llm setting). The embedded 270M model "
            "runs but is too weak for it; bring an instruct model of your own."
        )
    weak = llm.info.get("trusted_for_text") is False
    symbols = symbol_map(expression, symbol_column)
    data_genes = [symbols.get(str(g), str(g)) for g in expression.var_names]
    # hand-named groups are the analyst's; an LLM-chosen one has already moved off the ranking it was offered
    groups = [g for g, c in naming.groups.items() if c.term_id and not c.edited and c.chosen_by == "evidence"]
    prompts = {g: explanation_prompt(naming.groups[g]) for g in groups}
    progress("explain names", 0, len(groups), f"{llm.name} reads each cluster's evidence")
    try:
        for done, (index, answer) in enumerate(
            backend.generate_many([prompts[g] for g in groups], params, cancel), start=1
        ):
            group = groups[index]
            call = naming.groups[group]
            explanation = read_answer(answer.text, call, prompt=prompts[group], data_genes=data_genes)
            if weak:
                explanation.flags.append(WEAK_MODEL_FLAG)
            if choose and explanation.choice and not explanation.flags:
                chosen = candidates(call)[explanation.choice]
                call.name, call.term_id, call.chosen_by = chosen["name"], chosen["term_id"], "llm"
                call.confidence = call.runners_up[explanation.choice - 1].get("confidence", 0.0)
            call.explanation = explanation.as_dict()
            progress("explain names", done, len(groups), f"{group}: {explanation.name}")
    finally:  # what was explained before a cancel is kept
        _write_calls(adata, adata.obs[record["groupby"]].astype(str), naming, record.get("key", NAME_KEY))
        record["groups"] = _groups_json(naming)
        record["explanations"] = json.dumps(
            {
                "llm": llm.describe(),
                "params": params.as_dict(),
                "choose": choose,
                "model_measured_weak": weak,
                "created_at": now_iso(),
            }
        )
        add_record(adata, "naming", h5ad_safe(record))
    return naming


def write_names_table(naming: Naming, out_dir: str | Path) -> Path:
    """``cell_types.csv``: one row per group with its name, ontology id, confidence and evidence."""
    return write_text_atomic(Path(out_dir) / NAMES_FILE, naming.table().to_csv(index=False))
