"""Function fact sheets on real data: clustering with the sheet table against the old sheets and a random table
(5 Leiden seeds each, so seed noise is visible), and the time to build and embed the sheets of every gene.

* Tables, facts mode: ``function sheets`` (the default: identity + GO processes + pathways + the cell types a
  gene marks), ``identity only`` (the sheets before the function sources: name, locus, aliases, diseases),
  ``random`` (a Gaussian vector per gene, the same genes), each embedded with the shipped MiniLM and used
  through ``scelmo.tl.embed_cells`` (whitened table, 50 PCs) on each file's 2,000 most variable genes.
* Clustering: ``scelmo.tl.cluster`` (Leiden, resolution swept against the labels) for seeds 0–4; NMI / ARI.
* Timing: the sheets of every protein-coding gene of the catalog (~19k), cold in a fresh process (the catalog,
  GO, pathway and marker files are read) and warm, then their embedding through the store (one thread): cold
  (computed) and warm (read back, as a second run gets them).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/function_sheets.py [--no-timing | --timing-only]

Writes ``benchmarks/results/function_sheets.json``.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("SCELMO_HOME", tempfile.mkdtemp(prefix="scelmo-bench-"))

import numpy as np  # noqa: E402
import real_files  # noqa: E402
from _results import report  # noqa: E402

import scelmo_desktop as scelmo  # noqa: E402
from scelmo_desktop.core.data.gene_selection import select_genes  # noqa: E402
from scelmo_desktop.core.data.io import select_expression  # noqa: E402
from scelmo_desktop.core.embedding.gene_table import GeneTable  # noqa: E402
from scelmo_desktop.core.knowledge.facts import gene_fact_sheets  # noqa: E402

SEEDS = range(5)
SHEETS = {"function sheets": frozenset(), "identity only": frozenset({"function", "markers"})}


def tables(genes: list[str], embedder) -> dict[str, GeneTable]:
    out = {}
    for name, held_out in SHEETS.items():
        texts = gene_fact_sheets(genes, held_out=held_out).texts
        out[name] = GeneTable(symbols=list(texts), vectors=np.asarray(embedder.embed(list(texts.values())), np.float32))
    rng = np.random.default_rng(0)
    out["random"] = GeneTable(
        symbols=list(genes), vectors=rng.normal(size=(len(genes), out["identity only"].dim)).astype(np.float32)
    )
    return out


def clustering(models) -> list[dict]:
    rows = []
    kang = real_files.load("kang")
    for name, adata, key in (("PBMC 3k", real_files.load("pbmc3k"), "celltype"), ("Kang", kang, "cell_type")):
        expression = select_expression(adata, "auto")
        genes = [expression.var_names[i] for i in select_genes(expression.matrix, 2000)]
        for table_name, table in tables(genes, models.embedder).items():
            scelmo.tl.embed_cells(adata, table=table, key_added="X_bench", models=models)
            per_seed = []
            for seed in SEEDS:
                scores = scelmo.tl.cluster(adata, use_rep="X_bench", label_key=key, seed=seed, umap=False)
                per_seed.append((float(scores.loc[0, "nmi"]), float(scores.loc[0, "ari"])))
            nmi, ari = np.array(per_seed).T
            rows.append(
                {
                    "data": name,
                    "table": table_name,
                    "nmi_mean": round(nmi.mean(), 3),
                    "nmi_sd": round(nmi.std(ddof=1), 3),
                    "ari_mean": round(ari.mean(), 3),
                    "ari_sd": round(ari.std(ddof=1), 3),
                    "per_seed": [[round(a, 3), round(b, 3)] for a, b in per_seed],
                }
            )
            print(
                f"{name:8} {table_name:16} NMI {nmi.mean():.3f} ± {nmi.std(ddof=1):.3f}  "
                f"ARI {ari.mean():.3f} ± {ari.std(ddof=1):.3f}",
                flush=True,
            )
    return rows


COLD = """
import json, sys, time
started = time.perf_counter()
from scelmo_desktop.core.knowledge.genes import GeneCatalog
catalog = GeneCatalog.load()
loaded = time.perf_counter() - started
genes = sorted(s for s, r in catalog.records.items() if "protein" in r.gene_type.lower())
from scelmo_desktop.core.knowledge.facts import gene_fact_sheets
started = time.perf_counter()
texts = gene_fact_sheets(genes, catalog=catalog).texts
cold = time.perf_counter() - started
started = time.perf_counter()
gene_fact_sheets(genes, catalog=catalog)
warm = time.perf_counter() - started
json.dump({"genes": len(genes), "catalog_load_seconds": round(loaded, 1), "sheets_cold_seconds": round(cold, 1),
           "sheets_warm_seconds": round(warm, 2), "texts": texts}, sys.stdout)
"""


def timing(models, *, store_path: Path) -> dict:
    """Sheets of every protein-coding gene in a fresh process (cold: the catalog, GO, pathway and marker files
    are read; warm: again in that process), then embedded through the store: cold (computed) and warm (read
    back from the store, as a second run gets them)."""
    import json
    import subprocess

    from scelmo_desktop.core.embedding.gene_table import embed_texts
    from scelmo_desktop.core.text.store import Store

    run = subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True, check=True)
    result = json.loads(run.stdout)
    texts = result.pop("texts")
    with Store(store_path) as store:
        started = time.perf_counter()
        _, stats = embed_texts(texts, embedder=models.embedder, store=store)
        embed_cold = time.perf_counter() - started
        started = time.perf_counter()
        _, again = embed_texts(texts, embedder=models.embedder, store=store)
        embed_warm = time.perf_counter() - started
    assert again["n_embedded"] == 0, again  # warm: every vector from the store
    result.update(
        embedded=stats["n_embedded"],
        embed_cold_seconds=round(embed_cold, 1),
        embed_ms_per_gene=round(1000 * embed_cold / max(stats["n_embedded"], 1), 2),
        embed_warm_seconds=round(embed_warm, 2),
        mean_sheet_chars=round(float(np.mean([len(t) for t in texts.values()])), 0),
    )
    print(result, flush=True)
    return result


def main(with_timing: bool = True) -> dict:
    models = scelmo.models.load(mode="facts")
    previous = Path(__file__).parent / "results" / "function_sheets.json"
    if "--timing-only" in sys.argv and previous.is_file():  # keep the clustering figures of the last full run
        import json

        result = {k: v for k, v in json.loads(previous.read_text()).items() if k != "timing"}
    else:
        result = {"clustering": clustering(models)}
    if with_timing:
        result["timing"] = timing(models, store_path=Path(os.environ["SCELMO_HOME"]) / "timing.sqlite")
    return report("function_sheets", result)


if __name__ == "__main__":
    main("--no-timing" not in sys.argv)
