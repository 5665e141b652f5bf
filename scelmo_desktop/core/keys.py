"""Every AnnData key scELMo writes, in one place, and the layout of ``uns['scelmo']``.

``obsm``: :data:`SCELMO_KEY` (the cell embedding every task uses), :data:`WA_KEY` / :data:`AA_KEY` (the
paper's formulas), the baselines :data:`PCA_KEY` / :data:`RANDOM_KEY`, :data:`INTEGRATED_KEY` and
:data:`HARMONY_KEY` (integration; the analysis runs on :data:`INTEGRATED_KEY` when it is there, see
:func:`analysis_rep`), :data:`ADVERSARIAL_KEY` (the labelled integration adaptor), :data:`ADAPTOR_KEY` (annotation with the adaptor), ``X_umap``.
``obs``: :data:`CLUSTER_KEY`, :data:`NAME_KEY` (+ ``_ontology_id``, ``_confidence``), :data:`LABEL_KEY` (+ ``_confidence``,
``_similarity``, ``_head``, ``_head_probability``).
``uns``: :data:`MARKERS_KEY` (scanpy's ``rank_genes_groups`` layout). ``varm``: :data:`GENE_EMBEDDING_KEY`. ``obsp``/``uns``: ``<rep>_neighbors`` (the graph on ``<rep>``).

``uns['scelmo']`` is one dict: the pipeline's run record at its top level (data, input, models with hashes,
prompt, seed, settings, coverage, metrics, versions) and one record per task under its name
(``annotation``, ``integration``, ``embedding``, ``clustering``, ``markers``, ``naming``), each with its own
provenance; hand edits (renames, merges, sub-clusters) are listed in ``naming`` and ``clustering``.
"""

from __future__ import annotations

UNS_KEY = "scelmo"
SCELMO_KEY, WA_KEY, AA_KEY = "X_scelmo", "X_scelmo_wa", "X_scelmo_aa"

PCA_KEY, RANDOM_KEY = "X_scelmo_baseline_pca", "X_scelmo_baseline_random"

INTEGRATED_KEY, HARMONY_KEY, ADAPTOR_KEY = "X_scelmo_integrated", "X_pca_harmony", "X_scelmo_adaptor"
ADVERSARIAL_KEY = "X_scelmo_adaptor_integrated"  # the labelled, batch-adversarial adaptor (scelmo integrate)
CLUSTER_KEY, LABEL_KEY, GENE_EMBEDDING_KEY = "scelmo_leiden", "scelmo_label", "scelmo_gene_embedding"
NAME_KEY = "scelmo_cell_type"  # + _ontology_id, _confidence: the clusters' cell-type names
MARKERS_KEY = "rank_genes_groups"  # scanpy's own key, so sc.pl.rank_genes_groups_* read it
METHOD_NAMES = {
    SCELMO_KEY: "scELMo",
    INTEGRATED_KEY: "scELMo, samples integrated",
    WA_KEY: "scELMo-wa (paper)",
    AA_KEY: "scELMo-aa (paper)",
    PCA_KEY: "PCA (scanpy route)",
    RANDOM_KEY: "random-table",
}


def analysis_rep(adata) -> str:
    """The embedding the analysis runs on: :data:`INTEGRATED_KEY` once the batches were integrated (clusters,
    UMAP, markers and names then describe the integrated space), else :data:`SCELMO_KEY`."""
    return INTEGRATED_KEY if INTEGRATED_KEY in adata.obsm else SCELMO_KEY


def paper_keys(key: str) -> tuple[str, str]:
    """The obsm keys of the paper's wa and aa embeddings written beside ``obsm[key]``."""
    return f"{key}_wa", f"{key}_aa"


def gene_embedding_key(key: str) -> str:
    """The varm key of the gene vectors behind ``obsm[key]`` (``X_scelmo`` → ``scelmo_gene_embedding``)."""
    return f"{key.removeprefix('X_')}_gene_embedding"


def neighbors_key(rep: str) -> str:
    """The obsp/uns key of the neighbour graph built on ``obsm[rep]``."""
    return f"{rep}_neighbors"


def add_record(adata, name: str, record: dict) -> None:
    """Store ``record`` (already h5ad-safe) as ``uns['scelmo'][name]``, keeping the other records."""
    scelmo = dict(adata.uns.get(UNS_KEY, {}))
    scelmo[name] = record
    adata.uns[UNS_KEY] = scelmo


def read_record(adata, name: str) -> dict:
    """``uns['scelmo'][name]`` as :func:`add_record` stored it; empty when the data has none."""
    return (adata.uns.get(UNS_KEY) or {}).get(name) or {}
