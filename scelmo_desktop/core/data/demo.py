"""The demo data every door offers: scanpy's ``pbmc68k_reduced``, shipped inside scanpy (no download).

Its ``.X`` is scaled (negative values, unfit for weighted averages), so runs use ``.raw`` (log-normalised) and
the ``bulk_labels`` column. It is a pre-filtered toy (765 chosen genes): good for a first look and for fast
tests, not for judging the method (the README's "Real data" section does that).
"""

from __future__ import annotations

DEMO_SOURCE = "demo:pbmc68k_reduced"  # how a project file names the demo instead of a path
DEMO_NAME = "scanpy.datasets.pbmc68k_reduced (.raw, bulk_labels)"
DEMO_LAYER, DEMO_LABELS = "raw", "bulk_labels"
# keeps a cold demo to a few minutes on one CPU core with the embedded model in grounded mode (genes a minute:
# benchmarks/bench_llm_batch.py --mode grounded)
DEMO_LLM_GENES = 96


def load_demo():
    """A fresh copy of the demo AnnData."""
    import scanpy as sc

    return sc.datasets.pbmc68k_reduced()
