"""Clustering: every embedding of a run on the same protocol (scELMo, the paper's wa/aa, the baselines), or one
embedding of an embedded file (``scelmo cluster``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scelmo_desktop.core._infra.atomic import write_text_atomic
from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, no_progress
from scelmo_desktop.core._infra.provenance import h5ad_safe, now_iso, package_versions
from scelmo_desktop.core.data.gene_selection import GeneSet
from scelmo_desktop.core.data.io import Expression, label_values, write_h5ad
from scelmo_desktop.core.embedding import baselines
from scelmo_desktop.core.embedding.cell_vectors import conditioned_embedding
from scelmo_desktop.core.embedding.gene_table import Alignment
from scelmo_desktop.core.keys import (
    AA_KEY,
    CLUSTER_KEY,
    METHOD_NAMES,
    PCA_KEY,
    RANDOM_KEY,
    SCELMO_KEY,
    WA_KEY,
    add_record,
    analysis_rep,
    neighbors_key,
    read_record,
)
from scelmo_desktop.core.settings import PipelineSettings
from scelmo_desktop.core.tasks import cluster as clustering
from scelmo_desktop.core.tasks import metrics


def evaluate_clustering(
    adata,
    expression: Expression,
    alignment: Alignment,
    *,
    settings: PipelineSettings,
    gene_set: GeneSet | None = None,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> pd.DataFrame:
    """Cluster the analysis embedding (``obsm['X_scelmo_integrated']`` when the samples were integrated, else
    ``obsm['X_scelmo']``; with ``settings.compare`` also the uncorrected scELMo space, the paper's wa/aa vectors and
    the PCA and random-table baselines, each scored); write ``obs['scelmo_leiden']`` and UMAP.

    The PCA baseline runs on ``gene_set``, the run's (None: chosen here by ``settings.max_genes``), so it sees
    the same genes as scELMo. Returns one row per method with the chosen resolution, the cluster count and,
    with labels, NMI/ARI/ASW.
    """
    labels = label_values(adata, settings.label_key)
    primary = analysis_rep(adata)
    reps = [primary]
    if settings.compare:
        reps += ([SCELMO_KEY] if primary != SCELMO_KEY else []) + [WA_KEY, AA_KEY]
        gene_set = gene_set or GeneSet.choose(expression.matrix, settings.max_genes)
        adata.obsm[PCA_KEY] = baselines.pca_embedding(expression.matrix, gene_set=gene_set, seed=settings.seed)
        random_matrix = baselines.random_table(alignment.matched, alignment.matrix.shape[1], seed=settings.seed)
        adata.obsm[RANDOM_KEY] = conditioned_embedding(
            expression.matrix, random_matrix, seed=settings.seed, conditioning=settings.conditioning
        )
        reps += [PCA_KEY, RANDOM_KEY]
    rows = []
    for done, rep in enumerate(reps):
        progress("cluster", done, len(reps), METHOD_NAMES[rep])
        result = clustering.leiden_on_embedding(
            adata,
            rep,
            labels=labels,
            resolution=settings.resolution,
            n_neighbors=settings.n_neighbors,
            seed=settings.seed,
            cancel=cancel,
        )
        rows.append(
            {
                "method": METHOD_NAMES[rep],
                "embedding": rep,
                "resolution": result.resolution,
                "n_clusters": int(len(np.unique(result.clusters))),
                **result.scores,
            }
        )
        if rep == primary:
            clustering.store_clusters(adata, result.clusters)
            _record_clustering(adata, rows[-1], label_key=settings.label_key, seed=settings.seed)
        else:  # keep only the analysis graph in the output; the other graphs served their purpose
            clustering.drop_graph(adata, neighbors_key(rep))
    progress("cluster", len(reps), len(reps), "UMAP")
    clustering.umap(adata, neighbors_key(primary), seed=settings.seed)
    return pd.DataFrame(rows)


def _record_clustering(adata, row: dict, *, label_key: str | None, seed: int) -> None:
    """``uns['scelmo']['clustering']`` for a new clustering (replacing an earlier one's hand edits and splits)."""
    record = {"created_at": now_iso(), "label_key": label_key, "seed": seed, **row, "versions": package_versions()}
    add_record(adata, "clustering", h5ad_safe(record))


@dataclass
class ClusterOutcome:
    """What :func:`cluster` made: the metrics row and, with ``out``, the files written."""

    metrics: pd.DataFrame  # one row: the embedding, resolution, cluster count, and NMI/ARI/ASW with labels
    files: dict[str, Path] = field(default_factory=dict)


def cluster(
    adata,
    *,
    use_rep: str = SCELMO_KEY,
    label_key: str | None = None,
    resolution: float | None = None,
    seed: int = 0,
    key_added: str = CLUSTER_KEY,
    umap: bool = True,
    out: str | Path | None = None,
    cancel: CancelFlag | None = None,
) -> ClusterOutcome:
    """Leiden on the kNN graph of ``obsm[use_rep]`` (a resolution sweep scored against ``obs[label_key]``, or
    ``resolution``), then UMAP. Writes ``obs[key_added]`` (default ``'scelmo_leiden'``), with ``umap``
    ``obsm['X_umap']``, the graph
    ``obsp``/``uns['<use_rep>_neighbors']`` and ``uns['scelmo']['clustering']``; with ``out``, the clustered h5ad and
    ``metrics.csv``."""
    if use_rep not in adata.obsm:
        raise ScelmoError(
            f"The data has no obsm['{use_rep}'] embedding; embed the cells first, or choose one of: "
            f"{', '.join(adata.obsm.keys()) or 'none'}."
        )
    result = clustering.leiden_on_embedding(
        adata, use_rep, labels=label_values(adata, label_key), resolution=resolution, seed=seed, cancel=cancel
    )
    clustering.store_clusters(adata, result.clusters, key=key_added)
    if umap:
        clustering.umap(adata, neighbors_key(use_rep), seed=seed)
    row = {
        "embedding": use_rep,
        "resolution": result.resolution,
        "n_clusters": len(set(result.clusters)),
        **result.scores,
    }
    _record_clustering(adata, row, label_key=label_key, seed=seed)
    outcome = ClusterOutcome(metrics=pd.DataFrame([row]))
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        outcome.files = {
            "h5ad": write_h5ad(adata, out / "scelmo_clustered.h5ad"),
            "metrics": write_text_atomic(out / "metrics.csv", outcome.metrics.to_csv(index=False)),
        }
    return outcome


def recluster(
    adata,
    resolution: float,
    *,
    use_rep: str | None = None,
    label_key: str | None = None,
    seed: int = 0,
    key_added: str = CLUSTER_KEY,
) -> dict:
    """Leiden again at ``resolution`` on the kNN graph a clustering already built for ``obsm[use_rep]`` (no new
    graph, no new UMAP: the app's resolution slider). Writes ``obs[key_added]`` and updates
    ``uns['scelmo']['clustering']``; returns its row (resolution, cluster count, and NMI/ARI with labels).
    ``use_rep`` None: the analysis embedding (:func:`~scelmo_desktop.core.keys.analysis_rep`)."""
    use_rep = use_rep or analysis_rep(adata)
    key = neighbors_key(use_rep)
    if key not in adata.uns or f"{key}_connectivities" not in adata.obsp:
        raise ScelmoError(
            f"There is no neighbour graph for obsm['{use_rep}'] to recluster; cluster the cells first "
            f"(scelmo cluster, or the Clustering panel's Cluster button)."
        )
    if not resolution > 0:
        raise ScelmoError(f"The Leiden resolution must be above 0 (got {resolution}).")
    clusters = clustering.leiden(adata, key, float(resolution), seed=seed)
    clustering.store_clusters(adata, clusters, key=key_added)
    row = {"embedding": use_rep, "resolution": float(resolution), "n_clusters": int(len(np.unique(clusters)))}
    labels = label_values(adata, label_key)
    if labels is not None:
        labels = np.asarray(labels).astype(str)
        row.update(nmi=metrics.nmi(labels, clusters), ari=metrics.ari(labels, clusters))
    add_record(adata, "clustering", h5ad_safe({"created_at": now_iso(), "label_key": label_key, "seed": seed, **row}))
    return row


def _hand_edit(adata, edit: dict) -> None:
    record = dict(read_record(adata, "clustering"))
    edits = json.loads(record.get("hand_edits", "[]"))
    edits.append({**edit, "at": now_iso()})
    record["hand_edits"] = json.dumps(edits)
    add_record(adata, "clustering", record)


def _require_groups(adata, key: str, groups: list[str]) -> None:
    if key not in adata.obs:
        raise ScelmoError(f"The data has no obs['{key}'] clusters; cluster the cells first.")
    present = set(adata.obs[key].astype(str))
    missing = [g for g in groups if g not in present]
    if missing:
        raise ScelmoError(f"obs['{key}'] has no cluster {', '.join(map(repr, missing))}.")


def merge_clusters(adata, groups: list[str], *, key: str = CLUSTER_KEY) -> str:
    """A hand edit: the clusters ``groups`` of ``obs[key]`` become one, named by their ids joined with '+'
    (recorded in ``uns['scelmo']['clustering']['hand_edits']``). Returns the merged cluster's id. Find the
    markers and names again afterwards (:func:`~scelmo_desktop.core.workflows.markers.markers_and_names`)."""
    groups = [str(g) for g in dict.fromkeys(groups)]
    if len(groups) < 2:
        raise ScelmoError("Choose two or more clusters to merge.")
    _require_groups(adata, key, groups)
    merged = "+".join(sorted(groups, key=lambda c: (len(c), c)))
    values = adata.obs[key].astype(str).to_numpy()
    values[np.isin(values, groups)] = merged
    clustering.store_clusters(adata, values, key=key)
    _hand_edit(adata, {"edit": "merge", "clusters": groups, "into": merged})
    return merged


def _leiden_within(adata, graph: str, group: str, resolution: float, *, seed: int, key: str):
    """(every cell's cluster id with Leiden at ``resolution`` run within ``group`` of ``obs[key]`` only, the ids its
    cells got: ``group,0``, ``group,1``, … in numeric order). Nothing is stored."""
    clusters = clustering.leiden(adata, graph, resolution, seed=seed, restrict_to=(key, [group]))
    return clusters, sorted({c for c in clusters if c.startswith(f"{group},")}, key=lambda c: (len(c), c))


SPLIT_RESOLUTIONS = tuple(round(0.1 * step, 1) for step in range(1, 11))  # coarsest first; 1.0 is the run's own


def split_mixed_clusters(
    adata, groups: list[str], *, use_rep: str | None = None, seed: int = 0, key: str = CLUSTER_KEY
):
    """Each cluster of ``groups`` (those the naming flags as mixing two lineages) sub-clustered as the app's
    sub-cluster action does (scanpy's Leiden ``restrict_to``: ``8`` becomes ``8,0``, ``8,1``), at the coarsest
    resolution of :data:`SPLIT_RESOLUTIONS` that splits it at all: the flag says two lineages, so the split asked
    for is the smallest one. A cluster no resolution splits keeps its id. Recorded in
    ``uns['scelmo']['clustering']['auto_splits']`` (not a hand edit). Returns {cluster: its new ids}; name the
    clusters again afterwards."""
    use_rep = use_rep or analysis_rep(adata)
    graph = neighbors_key(use_rep)
    if graph not in adata.uns or not groups:
        return {}
    if adata.obs[key].dtype.name != "category":  # scanpy's restrict_to needs categories
        clustering.store_clusters(adata, adata.obs[key].astype(str).to_numpy(), key=key)
    splits = {}
    for group in map(str, groups):
        for resolution in SPLIT_RESOLUTIONS:
            clusters, new = _leiden_within(adata, graph, group, resolution, seed=seed, key=key)
            if len(new) > 1:
                clustering.store_clusters(adata, clusters, key=key)
                splits[group] = {"into": new, "resolution": resolution}
                break
    if splits:
        record = dict(read_record(adata, "clustering"))
        record["auto_splits"] = json.dumps(splits)
        add_record(adata, "clustering", record)
    return {group: split["into"] for group, split in splits.items()}


def automatic_splits(adata) -> dict[str, list[str]]:
    """{cluster: the ids it was split into} for the splits :func:`split_mixed_clusters` made on the current
    clustering (a new clustering drops its record)."""
    record = read_record(adata, "clustering")
    return {group: split["into"] for group, split in json.loads(record.get("auto_splits", "{}")).items()}


def split_summary(splits: dict) -> list[str]:
    """One line per cluster the run split (``uns['scelmo']['split_clusters']``), for every door."""
    return [
        f"cluster {group} may mix {split['mixed']}: split into {', '.join(split['into'])}"
        for group, split in splits.items()
    ]


def subcluster(
    adata,
    group: str,
    *,
    resolution: float = 0.5,
    use_rep: str | None = None,
    seed: int = 0,
    key: str = CLUSTER_KEY,
) -> list[str]:
    """A hand edit: Leiden at ``resolution`` within cluster ``group`` of ``obs[key]``, on the graph the clustering
    built for ``obsm[use_rep]`` (the rest keep their ids; recorded as a hand edit). Returns the new clusters'
    ids. Find the markers and names again afterwards, so the sub-clusters are named too. ``use_rep`` None: the
    analysis embedding (:func:`~scelmo_desktop.core.keys.analysis_rep`)."""
    use_rep = use_rep or analysis_rep(adata)
    group = str(group)
    _require_groups(adata, key, [group])
    graph = neighbors_key(use_rep)
    if graph not in adata.uns:
        raise ScelmoError(f"There is no neighbour graph for obsm['{use_rep}'] to sub-cluster on; cluster first.")
    if not resolution > 0:
        raise ScelmoError(f"The Leiden resolution must be above 0 (got {resolution}).")
    clusters, new = _leiden_within(adata, graph, group, float(resolution), seed=seed, key=key)
    clustering.store_clusters(adata, clusters, key=key)
    _hand_edit(adata, {"edit": "subcluster", "cluster": group, "resolution": resolution, "into": new})
    return new
