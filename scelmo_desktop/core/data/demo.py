"""The demo data every door offers: scanpy's ``pbmc68k_reduced``, shipped inside scanpy (no download).

Its ``.X`` is scaled (negative values, unfit for weighted averages), so runs use ``.raw`` (log-normalised) and
the ``bulk_labels`` column. It is a pre-filtered toy (765 chosen genes): good for a first look and for fast
tests, not for judging the method (the README's "Real data" section does that).
"""

from __future__ import annotations

DEMO_SOURCE = "demo:pbmc68k_reduced"  # how a project file names the demo instead of a path
DEMO_NAME = "scanpy.datasets.pbmc68k_reduced (.raw, bulk_labels)"
DEMO_LAYER, DEMO_LABELS = "raw", "bulk_labels"
DEMO_LLM_GENES = 96  # keeps a cold demo near 5 minutes on one CPU core (~2.1 s a gene, grounded mode, 270M model)


def load_demo():
    """A fresh copy of the demo AnnData."""
    import scanpy as sc

    return sc.datasets.pbmc68k_reduced()
