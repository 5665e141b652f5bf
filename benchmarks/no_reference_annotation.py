"""No-reference annotation (``scelmo annotate --mode text``) on real labelled files, each file's own label names
as the candidates, in facts mode: curated markers of each label's Cell Ontology term (``knowledge``, the
default with the knowledge extra) against the text-space route (``markers``) and the description centroid.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/no_reference_annotation.py [knowledge markers centroid]

PBMC 3k and Kang 2018 come from the wheel in DATASETS.md (tests/real_files.py, cached outside the repository);
pbmc68k_reduced ships with scanpy. Writes ``benchmarks/results/no_reference_annotation.json``.
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

import real_files  # noqa: E402
import scanpy as sc  # noqa: E402
from _results import report  # noqa: E402

import scelmo_desktop as scelmo  # noqa: E402


def data_sets():
    kang = real_files.load("kang")
    yield "PBMC 3k", real_files.load("pbmc3k"), "celltype", {}
    yield "Kang control", kang[kang.obs["stim"].astype(str) == "CTRL"].copy(), "cell_type", {}
    yield "pbmc68k_reduced", sc.datasets.pbmc68k_reduced(), "bulk_labels", {"layer": "raw"}


def main(scorings: list[str]) -> dict:
    models = scelmo.models.load(mode="facts")
    rows = []
    for name, adata, key, options in data_sets():
        for scoring in scorings:
            started = time.perf_counter()
            record = scelmo.tl.annotate(adata, method="text", candidates=sorted(set(adata.obs[key].astype(str))),
                                        label_key=key, text_scoring=scoring, models=models, **options)
            metrics = record["metrics"]
            rows.append({"data": name, "scoring": scoring, "accuracy": round(metrics["accuracy"], 3),
                         "macro_f1": round(metrics["macro_f1"], 3), "seconds": round(time.perf_counter() - started, 1),
                         "terms": {label: entry["term_label"] for label, entry in
                                   (record.get("cell_ontology") or {}).items()}})
            print(f"{name:16} {scoring:9} accuracy {metrics['accuracy']:.3f}  macro-F1 {metrics['macro_f1']:.3f}",
                  flush=True)
    return report("no_reference_annotation", {"rows": rows})


if __name__ == "__main__":
    main(sys.argv[1:] or ["knowledge", "markers", "centroid"])
