"""``scelmo.io``: reading and writing the files single-cell analysts have, with the app's checks.

>>> adata = scelmo.io.read("filtered_feature_bc_matrix.h5")   # .h5ad, 10x .h5 or folder, CSV/TSV, loom
>>> scelmo.io.input_kind(adata)                                 # counts / normalized / log / scaled
>>> scelmo.io.write(adata, "result.h5ad")                       # atomic: never a half-written file
"""

from __future__ import annotations

from scelmo_desktop.core.workflows.data import load_demo, read_data, write_h5ad
from scelmo_desktop.core.workflows.storage import resolve_table

__all__ = ["demo", "gene_table", "input_kind", "read", "write"]


def read(path):
    """Read a data file, validated (orientation, ids, NaNs) with errors that say what to do."""
    return read_data(path)


def write(adata, path):
    """Write ``adata`` as .h5ad atomically; returns the path."""
    return write_h5ad(adata, path)


def demo():
    """The shipped demo data (scanpy's pbmc68k_reduced; use ``layer='raw'``, labels in ``bulk_labels``)."""
    return load_demo()


def input_kind(adata, *, layer: str = "auto") -> dict:
    """What the chosen matrix holds (counts, normalized, log, scaled), the evidence, and what scELMo will do."""
    from scelmo_desktop.core.workflows.data import INPUT_KIND_DESCRIPTIONS as DESCRIPTIONS
    from scelmo_desktop.core.workflows.data import chosen_matrix, detect_input_kind, preparation_for

    chosen, matrix, _ = chosen_matrix(adata, layer)
    kind, evidence = detect_input_kind(matrix)
    return {
        "layer": chosen,
        "kind": kind,
        "means": DESCRIPTIONS[kind],
        "evidence": evidence,
        "preparation": preparation_for(kind),
    }


def gene_table(name_or_path: str):
    """A stored gene-embedding table (``scelmo tables list``) or a table file (.npz, .pkl, .csv, .parquet)."""
    return resolve_table(name_or_path)
