"""kNN graph, Leiden resolution sweep and UMAP on a cell embedding (scanpy underneath).

With labels, the sweep picks the resolution of best NMI and reports ARI at that same resolution (the
scib-metrics protocol). Without labels it uses the user's resolution (1.0 by default).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import SparseEfficiencyWarning

from scelmo_desktop.core._infra.jobs import CancelFlag, check_cancel
from scelmo_desktop.core.keys import CLUSTER_KEY
from scelmo_desktop.core.settings import default
from scelmo_desktop.core.tasks import metrics

DEFAULT_RESOLUTIONS = tuple(round(0.2 * i, 1) for i in range(1, 11))  # 0.2, 0.4, ..., 2.0


@dataclass
class ClusterResult:
    """A clustering of ``obsm[use_rep]``: the chosen resolution, a cluster id per cell, the scores and the sweep."""

    use_rep: str
    resolution: float
    clusters: np.ndarray  # string cluster ids, one per cell
    scores: dict = field(default_factory=dict)  # nmi, ari, asw_label (when labels exist)
    sweep: list[dict] = field(default_factory=list)  # per resolution: resolution, n_clusters, nmi, ari


def neighbors(
    adata, use_rep: str, *, n_neighbors: int = default("n_neighbors"), seed: int = 0, n_jobs: int | None = None
) -> str:
    """Build the kNN graph on ``obsm[use_rep]``; returns the neighbours key (``<use_rep>_neighbors``).

    Above 4,096 cells scanpy uses pynndescent (approximate); ``n_jobs`` threads it (default: the app's thread
    setting; scanpy's own default is one thread, which leaves a workstation's other cores idle).
    """
    import scanpy as sc

    from scelmo_desktop.core._infra.hardware import default_threads

    key = f"{use_rep}_neighbors"
    saved_jobs = sc.settings.n_jobs
    sc.settings.n_jobs = n_jobs or default_threads()
    with warnings.catch_warnings():
        # identical cell vectors (e.g. cells expressing no described gene) make scanpy edit the sparse graph
        # in place, which only costs a little time; the warning would alarm users for nothing
        warnings.simplefilter("ignore", SparseEfficiencyWarning)
        try:
            sc.pp.neighbors(adata, use_rep=use_rep, n_neighbors=n_neighbors, key_added=key, random_state=seed)
        finally:
            sc.settings.n_jobs = saved_jobs
    return key


def leiden(adata, neighbors_key: str, resolution: float, *, seed: int = 0, restrict_to=None) -> np.ndarray:
    """Leiden cluster ids (strings, one per cell) on the ``neighbors_key`` graph at ``resolution``; with
    ``restrict_to=(obs key, [groups])`` only within those groups (scanpy's sub-clustering: ``3`` splits into
    ``3,0``, ``3,1``, …). The temporary ``obs``/``uns`` entries scanpy writes are removed again, so ``adata``
    keeps no new key."""
    import scanpy as sc

    key = f"_leiden_{neighbors_key}"
    sc.tl.leiden(
        adata,
        resolution=resolution,
        neighbors_key=neighbors_key,
        restrict_to=restrict_to,
        key_added=key,
        flavor="igraph",
        n_iterations=2,
        directed=False,
        random_state=seed,
    )
    clusters = adata.obs.pop(key).astype(str).to_numpy()
    adata.uns.pop(key, None)
    return clusters


def leiden_on_embedding(
    adata,
    use_rep: str,
    *,
    labels=None,
    resolution: float | None = None,
    resolutions=DEFAULT_RESOLUTIONS,
    n_neighbors: int = default("n_neighbors"),
    seed: int = 0,
    cancel: CancelFlag | None = None,
) -> ClusterResult:
    """Cluster ``obsm[use_rep]``; with ``labels`` sweep ``resolutions`` and keep the best NMI.

    Writes ``obsp['<use_rep>_neighbors_connectivities']``/``_distances`` and ``uns['<use_rep>_neighbors']``.
    """
    key = neighbors(adata, use_rep, n_neighbors=n_neighbors, seed=seed)
    if labels is None:
        chosen = 1.0 if resolution is None else resolution
        return ClusterResult(use_rep=use_rep, resolution=chosen, clusters=leiden(adata, key, chosen, seed=seed))
    labels = np.asarray(labels).astype(str)
    sweep, best = [], None
    for res in [resolution] if resolution is not None else resolutions:
        check_cancel(cancel)
        clusters = leiden(adata, key, res, seed=seed)
        row = {
            "resolution": res,
            "n_clusters": int(len(np.unique(clusters))),
            "nmi": metrics.nmi(labels, clusters),
            "ari": metrics.ari(labels, clusters),
        }
        sweep.append(row)
        if best is None or row["nmi"] > best[0]["nmi"]:
            best = (row, clusters)
    row, clusters = best
    scores = {"nmi": row["nmi"], "ari": row["ari"], "asw_label": metrics.silhouette_label(adata.obsm[use_rep], labels)}
    return ClusterResult(use_rep=use_rep, resolution=row["resolution"], clusters=clusters, scores=scores, sweep=sweep)


def drop_graph(adata, key: str) -> None:
    """Remove a neighbours graph (``uns[key]`` and its ``obsp`` matrices) that served only for scoring."""
    adata.uns.pop(key, None)
    for suffix in ("_connectivities", "_distances"):
        if key + suffix in adata.obsp:
            del adata.obsp[key + suffix]


def store_clusters(adata, clusters: np.ndarray, key: str = CLUSTER_KEY) -> None:
    """Write cluster ids as a categorical ``obs[key]`` with categories in numeric order (0, 1, 2, …, 10)."""
    import pandas as pd

    categories = sorted(np.unique(clusters), key=lambda c: (len(c), c))
    adata.obs[key] = pd.Categorical(clusters, categories=categories)
    adata.uns.pop(f"{key}_colors", None)  # scanpy's palette of the old categories would colour the new ones wrongly


def umap(adata, neighbors_key: str, *, seed: int = 0) -> np.ndarray:
    """UMAP of the given graph into ``obsm['X_umap']`` (for figures only)."""
    import scanpy as sc

    sc.tl.umap(adata, neighbors_key=neighbors_key, random_state=seed)
    return adata.obsm["X_umap"]
