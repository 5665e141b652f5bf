"""``python -m scelmo_desktop.core.workflows.compile_warm_up``: compile, once, the numba code a default run
uses, into numba's cache folder (set-up runs it through
:func:`~scelmo_desktop.core._infra.compile_cache.warm_install_compile_cache`).

It runs the default run's own steps (QC with Scrublet, the kNN graph, Leiden, UMAP, markers) on a synthetic
count matrix large enough (above scanpy's 4,096 cells) that the approximate neighbour search is compiled too.
Only the compiled code matters; the results are thrown away.
"""

from __future__ import annotations

import numpy as np

WARM_UP_CELLS = 4_500  # scanpy switches to pynndescent above 4,096 cells: both kNN routes get compiled
WARM_UP_GENES = 400
WARM_UP_GROUPS = 5


def synthetic_counts(seed: int = 0):
    """A counts AnnData with a few groups of cells that differ in their genes' means (so that Leiden, Scrublet
    and the marker test all have something to find)."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    means = rng.gamma(0.6, 2.0, size=(WARM_UP_GROUPS, WARM_UP_GENES))
    group = rng.integers(0, WARM_UP_GROUPS, size=WARM_UP_CELLS)
    counts = rng.poisson(means[group] * rng.uniform(0.5, 1.5, size=(WARM_UP_CELLS, 1)))
    adata = ad.AnnData(sp.csr_matrix(counts.astype(np.float32)))
    adata.obs_names = [f"cell{i}" for i in range(WARM_UP_CELLS)]
    adata.var_names = [f"MT-G{i}" if i < 5 else f"G{i}" for i in range(WARM_UP_GENES)]
    adata.obs["group"] = pd.Categorical(group.astype(str))
    return adata


def warm_up() -> None:
    """The default run's numba-compiled steps, once, on :func:`synthetic_counts` (results discarded)."""
    import scanpy as sc

    from scelmo_desktop.core.keys import CLUSTER_KEY, SCELMO_KEY
    from scelmo_desktop.core.settings import PipelineSettings
    from scelmo_desktop.core.workflows.cluster import cluster
    from scelmo_desktop.core.workflows.markers import markers_of_data
    from scelmo_desktop.core.workflows.qc import run_qc

    settings = PipelineSettings()
    adata = synthetic_counts()
    kept = run_qc(adata, settings=settings).adata
    work = kept.copy()
    sc.pp.normalize_total(work)
    sc.pp.log1p(work)
    sc.pp.highly_variable_genes(work, n_top_genes=200)
    kept.obsm[SCELMO_KEY] = sc.pp.pca(work.X.toarray(), n_comps=20).astype(np.float32)
    cluster(kept, use_rep=SCELMO_KEY, resolution=0.5)
    markers_of_data(kept, groupby=CLUSTER_KEY, settings=settings)


if __name__ == "__main__":
    from scelmo_desktop.core._infra.compile_cache import enable_compile_cache

    enable_compile_cache()  # the parent set NUMBA_CACHE_DIR to the install's folder
    warm_up()
