"""The shipped int8 gene table against embedding every fact sheet in the run: do the real-data metrics move?

``scelmo run FILE --label-key KEY`` twice on the same file, each with an empty store: once as shipped (the
catalog genes' vectors come from ``resources/gene_vectors``), once with the packs switched off so the run embeds
every text with the float32 embedder. Both runs' ``X_scelmo`` are reclustered over the same Leiden seeds (kNN 15,
resolution sweep 0.2-2.0, best NMI: the run's own protocol); the difference of the seed means is set against the
spread over seeds. Also reported: the cosine between the two gene tables, gene by gene, and each run's time.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gene_table_pack.py [--files pbmc3k kang]

Results: benchmarks/results/gene_table_pack.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

SEEDS = range(5)
LABELS = {"pbmc3k": "celltype", "kang": "cell_type"}


def run(path: Path, label_key: str, out: Path, *, packs: bool) -> float:
    from scelmo_desktop import cli
    from scelmo_desktop.core.embedding import prebuilt

    argv = ["run", str(path), "--out", str(out / "run"), "--label-key", label_key, "--store", str(out / "s.sqlite")]
    started = time.perf_counter()
    if packs:
        code = cli.main(argv)
    else:
        with mock.patch.object(prebuilt, "packs_for", lambda embedder_id: ()):
            code = cli.main(argv)
    if code != 0:
        raise RuntimeError(f"scelmo run {path.name} failed ({code})")
    return time.perf_counter() - started


def seed_scores(run_dir: Path, label_key: str) -> dict:
    import anndata as ad

    from scelmo_desktop.core.tasks.cluster import leiden_on_embedding

    adata = ad.read_h5ad(run_dir / "scelmo_result.h5ad")
    labels = adata.obs[label_key].astype(str).to_numpy()
    work = ad.AnnData(np.zeros((adata.n_obs, 1), np.float32))
    work.obsm["X_scelmo"] = adata.obsm["X_scelmo"]
    runs = [leiden_on_embedding(work, "X_scelmo", labels=labels, seed=seed) for seed in SEEDS]
    nmi = np.array([r.scores["nmi"] for r in runs])
    ari = np.array([r.scores["ari"] for r in runs])
    return {
        "nmi_mean": round(float(nmi.mean()), 4),
        "nmi_sd": round(float(nmi.std(ddof=1)), 4),
        "ari_mean": round(float(ari.mean()), 4),
        "ari_sd": round(float(ari.std(ddof=1)), 4),
        "per_seed_nmi": [round(float(v), 4) for v in nmi],
        "cells": int(adata.n_obs),
        "clusters_seed0": int(len(set(runs[0].clusters))),
        "embedding": {k: v for k, v in adata.uns["scelmo"]["embedding"].items() if k.startswith("n_")},
    }


def table_cosines(run_dir: Path, fresh_store: Path) -> dict:
    """Text by text, the cosine between the shipped vector and the one the run without packs embedded."""
    import json

    import pandas as pd

    from scelmo_desktop.core.embedding.gene_table import text_hash
    from scelmo_desktop.core.embedding.prebuilt import prebuilt_lookup
    from scelmo_desktop.core.text.store import Store

    embedder_id = json.loads((run_dir / "provenance.json").read_text())["embedder"]["id"]
    texts = pd.read_csv(run_dir / "descriptions.csv")["description"].dropna().astype(str)
    hashes = sorted({text_hash(t) for t in texts if t.strip()})
    shipped, _ = prebuilt_lookup(embedder_id, hashes)
    with Store(fresh_store) as store:
        embedded = store.get_embeddings(embedder_id, hashes)
    shared = sorted(set(shipped) & set(embedded))
    if not shared:
        return {"shared_texts": 0}
    x = np.stack([shipped[h] for h in shared])
    y = np.stack([embedded[h] for h in shared])
    cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
    return {
        "texts": len(hashes),
        "shared_texts": len(shared),
        "cosine_min": round(float(cos.min()), 6),
        "cosine_median": round(float(np.median(cos)), 6),
    }


def main() -> None:
    import real_files
    from _results import report

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", nargs="+", default=["pbmc3k"], choices=sorted(LABELS))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="gene_table_pack_") as tmp:
        for name in args.files:
            path = real_files.path(name) if name == "pbmc3k" else real_files.kang_sparse_file(Path(tmp))
            row = {"file": name}
            for side, packs in (("shipped table", True), ("embedded in the run", False)):
                out = Path(tmp) / name / ("packs" if packs else "fresh")
                seconds = run(path, LABELS[name], out, packs=packs)
                row[side] = {"seconds": round(seconds, 1), **seed_scores(out / "run", LABELS[name])}
                print(name, side, row[side], flush=True)
            a, b = row["shipped table"], row["embedded in the run"]
            row["nmi_difference"] = round(a["nmi_mean"] - b["nmi_mean"], 4)
            row["ari_difference"] = round(a["ari_mean"] - b["ari_mean"], 4)
            row["seed_sd_of_mean"] = round(
                max(a["nmi_sd"], b["nmi_sd"], a["ari_sd"], b["ari_sd"]) / len(SEEDS) ** 0.5, 4
            )
            fresh = Path(tmp) / name / "fresh"
            row["tables"] = table_cosines(fresh / "run", fresh / "s.sqlite")
            rows.append(row)
    report("gene_table_pack", {"seeds": list(SEEDS), "rows": rows})


if __name__ == "__main__":
    main()
