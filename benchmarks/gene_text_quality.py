"""Does the description text matter? Scores gene tables where the text space itself is used.

For each description mode (facts, llm, grounded) and two controls (name-only text "Gene X.", random vectors):
  * marker → cell-type retrieval: cosine of each marker gene's embedding with each type's Cell Ontology
    definition; ROC AUC over (marker, type) pairs, top-1 and top-3 accuracy per marker. Not circular: the
    markers are the project's textbook table (``markers.py``), not cellconsensus, and the row
    ``facts, marker line held out`` scores sheets without the "Marker of:" sentence (GO processes and pathways
    only), beside ``facts, identity only`` (the sheets before function knowledge: name, locus, diseases);
  * marker-pair AUC: cosine of two markers of the same type vs of different types;
  * co-expression agreement: Spearman of gene-gene text cosine vs expression correlation (pbmc68k .raw);
  * clustering (wa on every gene, NMI/ARI/ASW on bulk_labels) with PCA, for the modes cheap enough to run on
    all 765 genes (facts and the controls); the LLM modes describe only the marker genes (~4.5 s a gene here).
Also the time per gene of each mode and the quality-flag counts of the LLM modes.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gene_text_quality.py
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
from _results import report
from markers import MARKERS
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

import scelmo_desktop  # noqa: F401  (offline switches)
from scelmo_desktop.backends import registry
from scelmo_desktop.core.knowledge.cell_ontology import CellOntology
from scelmo_desktop.core.knowledge.facts import gene_fact_sheets
from scelmo_desktop.core.protocols import GenerationParams, LLMSource
from scelmo_desktop.core.text.gene_texts import describe_gene_list
from scelmo_desktop.core.text.store import Store

STORE = Path(__file__).parent / "results" / "gene_text_quality.sqlite"


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def retrieval(gene_vectors: dict[str, np.ndarray], type_vectors: np.ndarray, types: list[str]) -> dict:
    markers = sorted({g for genes in MARKERS.values() for g in genes})
    G = unit(np.stack([gene_vectors[g] for g in markers]))
    cos = G @ unit(type_vectors).T
    truth = np.array([[g in MARKERS[t] for t in types] for g in markers])
    ranks = np.argsort(-cos, axis=1)
    top1 = np.mean([truth[i, ranks[i, 0]] for i in range(len(markers))])
    top3 = np.mean([truth[i, ranks[i, :3]].any() for i in range(len(markers))])
    pairs, same = [], []
    for (i, a), (j, b) in itertools.combinations(enumerate(markers), 2):
        pairs.append(float(G[i] @ G[j]))
        same.append(any(a in genes and b in genes for genes in MARKERS.values()))
    return {
        "retrieval_auc": roc_auc_score(truth.ravel(), cos.ravel()),
        "top1": top1,
        "top3": top3,
        "marker_pair_auc": roc_auc_score(same, pairs),
    }


def coexpression(gene_vectors: dict[str, np.ndarray], adata) -> float:
    genes = [g for g in adata.raw.var_names if g in gene_vectors]
    X = adata.raw[:, genes].X
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    expression = np.corrcoef(X.T)
    text = unit(np.stack([gene_vectors[g] for g in genes]))
    upper = np.triu_indices(len(genes), 1)
    keep = np.isfinite(expression[upper])
    return float(spearmanr((text @ text.T)[upper][keep], expression[upper][keep]).statistic)


def clustering(gene_vectors: dict[str, np.ndarray], adata) -> dict:
    from scelmo_desktop.core.embedding.cell_embedding import average_gene_vectors
    from scelmo_desktop.core.tasks.cluster import leiden_on_embedding

    E = np.stack([gene_vectors.get(g, np.zeros(384, np.float32)) for g in adata.raw.var_names])
    work = adata.copy()
    work.obsm["X_bench"] = average_gene_vectors(work.raw.X, E, mode="wa")
    return leiden_on_embedding(work, "X_bench", labels=work.obs["bulk_labels"].astype(str).to_numpy()).scores


def main() -> dict:
    import scanpy as sc

    adata = sc.datasets.pbmc68k_reduced()
    all_genes = list(adata.raw.var_names)
    markers = sorted({g for genes in MARKERS.values() for g in genes})
    embedder = registry.open_embedder(registry.find_model("sentence-transformers"), device="cpu")
    ontology = CellOntology.load()
    types = list(MARKERS)
    type_vectors = embedder.embed([ontology.map_label(t).fact_sheet() for t in types])
    info = registry.find_model("gguf")
    llm = LLMSource(name=info.name, sha256=info.sha256, factory=registry.LazyLLM(info, n_threads=1))
    params = GenerationParams()
    STORE.parent.mkdir(exist_ok=True)
    rows, extra = {}, {}
    with Store(STORE) as store:
        texts = {}
        for mode, genes in (("facts", all_genes + markers), ("llm", markers), ("grounded", markers)):
            started = time.perf_counter()
            result = describe_gene_list(genes, mode=mode, llm=llm, store=store, params=params)
            seconds = time.perf_counter() - started
            texts[mode] = result.texts
            # LLM modes: generation time per generated gene (a cached re-run keeps the stored timings out)
            per_gene = result.generation_seconds / result.n_llm_calls if result.n_llm_calls else seconds / len(genes)
            extra[mode] = {"seconds_per_gene": round(per_gene, 3), "cached": result.n_cached}
            if mode != "facts":
                extra[mode]["flags"] = result.flag_counts()
        texts["name-only"] = {g: f"Gene {g}." for g in set(all_genes + markers)}
        genes = list(dict.fromkeys(all_genes + markers))
        texts["facts, marker line held out"] = gene_fact_sheets(genes, held_out=frozenset({"markers"})).texts
        texts["facts, identity only"] = gene_fact_sheets(genes, held_out=frozenset({"markers", "function"})).texts
    rng = np.random.default_rng(0)
    tables = {mode: dict(zip(t, embedder.embed(list(t.values())))) for mode, t in texts.items()}
    tables["random"] = {g: rng.normal(size=384).astype(np.float32) for g in sorted(set(all_genes + markers))}
    for mode, vectors in tables.items():
        row = retrieval(vectors, type_vectors, types)
        row["coexpression_spearman"] = coexpression(vectors, adata)
        if mode not in ("llm", "grounded"):
            row.update(clustering(vectors, adata))
        rows[mode] = {k: round(float(v), 3) for k, v in row.items()}
    from scelmo_desktop.core.embedding.baselines import pca_embedding
    from scelmo_desktop.core.tasks.cluster import leiden_on_embedding

    adata.obsm["X_pca_bench"] = pca_embedding(adata.raw.X)
    rows["PCA (no text)"] = {
        k: round(float(v), 3)
        for k, v in leiden_on_embedding(
            adata, "X_pca_bench", labels=adata.obs["bulk_labels"].astype(str).to_numpy()
        ).scores.items()
    }
    result = {
        "metrics": rows,
        "modes": extra,
        "cell_type_texts": "Cell Ontology definitions (cellxgene-ontology-guide)",
        "n_markers": len(markers),
        "llm": info.name,
        "max_tokens": params.max_tokens,
    }
    return report("gene_text_quality", result)


if __name__ == "__main__":
    main()
