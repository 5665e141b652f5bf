"""Zero-shot annotation on pbmc68k_reduced: a fixed stratified 70/30 split of cells into reference and query.

Gene table: fact-sheet texts (``facts`` mode, every gene, no LLM) embedded with the default embedder.
Methods: 10-NN on scELMo-wa; 10-NN on PCA (fitted on the reference, projected onto the query); 10-NN on a random
gene table (same genes); the fine-tuned adaptor (10-NN in its z-space) on the fact-sheet and on the random table;
label-text mode (cells vs Cell Ontology descriptions of the 10 labels): marker-signature scoring, the same with
random type vectors (chance), and centroid scoring with and without centring. Reports accuracy and macro-F1.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/annotation.py
"""

from __future__ import annotations

import time

import numpy as np
from _results import report
from gene_text_quality import STORE
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import scelmo_desktop  # noqa: F401
from scelmo_desktop.backends import registry
from scelmo_desktop.core.data.io import select_expression
from scelmo_desktop.core.embedding.baselines import random_table
from scelmo_desktop.core.embedding.gene_table import align, embed_texts
from scelmo_desktop.core.knowledge.cell_ontology import cell_type_fact_sheets
from scelmo_desktop.core.protocols import LLMSource
from scelmo_desktop.core.tasks.annotate import annotate_query, knn_vote, scores
from scelmo_desktop.core.text.gene_texts import describe_gene_list
from scelmo_desktop.core.text.store import Store
from scelmo_desktop.core.workflows.adaptor_annotation import adaptor_annotation


def main() -> dict:
    import scanpy as sc

    adata = sc.datasets.pbmc68k_reduced()
    labels = adata.obs["bulk_labels"].astype(str).to_numpy()
    ref_idx, query_idx = train_test_split(np.arange(adata.n_obs), test_size=0.3, stratify=labels, random_state=0)
    reference, query = adata[ref_idx].copy(), adata[query_idx].copy()
    embedder = registry.open_embedder(registry.find_model("sentence-transformers"), device="cpu")
    STORE.parent.mkdir(exist_ok=True)
    with Store(STORE) as store:
        genes = list(adata.raw.var_names)
        texts = describe_gene_list(
            genes, mode="facts", llm=LLMSource("none", "", lambda: None), store=store, params=None
        ).texts
        table, _ = embed_texts(texts, embedder=embedder, store=store)
    type_names = sorted(set(labels))
    type_texts, mapping = cell_type_fact_sheets(type_names)
    type_vectors = embedder.embed([type_texts[t] for t in type_names])

    ref_expr, query_expr = select_expression(reference, "raw"), select_expression(query, "raw")
    ref_align, query_align = align(table, ref_expr.var_names), align(table, query_expr.var_names)
    truth = query.obs["bulk_labels"].astype(str).to_numpy()
    rows = {}
    common = dict(
        reference=reference, reference_expression=ref_expr, reference_alignment=ref_align, label_key="bulk_labels"
    )
    started = time.perf_counter()
    rows["kNN scELMo-wa (fact-sheet table)"] = annotate_query(
        query, expression=query_expr, alignment=query_align, mode="knn", **common
    )
    seconds = time.perf_counter() - started
    random = random_table(ref_align.matched, table.dim)
    rand_align = type(ref_align)(matrix=random, matched_symbol=ref_align.matched_symbol, how=ref_align.how)
    rows["kNN random gene table"] = annotate_query(
        query,
        expression=query_expr,
        alignment=type(query_align)(random, query_align.matched_symbol, query_align.how),
        mode="knn",
        reference=reference,
        reference_expression=ref_expr,
        reference_alignment=rand_align,
        label_key="bulk_labels",
    )
    scaler = StandardScaler().fit(ref_expr.matrix.toarray())
    pca = PCA(n_components=50, random_state=0).fit(np.clip(scaler.transform(ref_expr.matrix.toarray()), -10, 10))
    project = lambda e: pca.transform(np.clip(scaler.transform(e.matrix.toarray()), -10, 10))  # noqa: E731
    rows["kNN PCA (no text)"] = knn_vote(
        project(ref_expr), reference.obs["bulk_labels"].astype(str), project(query_expr)
    )
    train_seconds = {}
    for name, (ref_a, query_a) in {
        "adaptor on fact-sheet table": (ref_align, query_align),
        "adaptor on random table": (rand_align, type(query_align)(random, query_align.matched_symbol, query_align.how)),
    }.items():
        ref_labels = reference.obs["bulk_labels"].astype(str).to_numpy()
        rows[name], extra = adaptor_annotation(
            query.copy(),
            query_expr,
            query_a,
            ref_expr,
            ref_a,
            ref_labels,
            k=10,
            threshold=0.0,
            device="cpu",
            seed=0,
            save_to=None,
            progress=None,
            cancel=None,
        )
        train_seconds[name] = extra["adaptor"]["training_seconds"]
    rows["label text, markers (10 genes per type)"] = annotate_query(
        query,
        expression=query_expr,
        alignment=query_align,
        mode="text",
        type_vectors=type_vectors,
        type_names=type_names,
        text_scoring="markers",
    )
    random_types = np.random.default_rng(0).standard_normal(type_vectors.shape).astype(np.float32)
    rows["label text, markers, random type vectors (chance)"] = annotate_query(
        query,
        expression=query_expr,
        alignment=query_align,
        mode="text",
        type_vectors=random_types,
        type_names=type_names,
        text_scoring="markers",
    )
    for center in (True, False):
        rows[f"label text, centroid ({'centred' if center else 'raw'} table)"] = annotate_query(
            query,
            expression=query_expr,
            alignment=query_align,
            mode="text",
            type_vectors=type_vectors,
            type_names=type_names,
            center=center,
            text_scoring="centroid",
        )
    result = {
        name: {k: round(v, 3) for k, v in scores(truth, a.labels).items() if k != "per_class_f1"}
        for name, a in rows.items()
    }
    return report(
        "annotation",
        {
            "split": "stratified 70/30, random_state=0",
            "n_reference": len(ref_idx),
            "n_query": len(query_idx),
            "knn_seconds": round(seconds, 2),
            "adaptor_training_seconds_cpu": train_seconds,
            "results": result,
            "cell_ontology_mapping": mapping["mapping"],
        },
    )


if __name__ == "__main__":
    main()
