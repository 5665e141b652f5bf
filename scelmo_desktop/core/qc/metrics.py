"""Per-cell QC metrics with scanpy's names and function, always on raw counts.

``sc.pp.calculate_qc_metrics(qc_vars=["mt", "ribo", "hb"], percent_top=None, log1p=True)`` runs on the counts
wherever they are (``X``, a counts layer or ``.raw``, see :func:`count_matrix`); the gene flags follow scanpy's
tutorial (mitochondrial ``MT-``/``mt-``, ribosomal ``RPS``/``RPL``, haemoglobin ``^HB[^(P)]``), with mouse
capitalisation too. Log-normalised or scaled data without counts are refused: their "total counts" would be
meaningless.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.data.input_kind import DESCRIPTIONS, detect_input_kind
from scelmo_desktop.core.data.io import COUNT_LAYERS, chosen_matrix
from scelmo_desktop.core.embedding.gene_table import gene_symbols

QC_VARS = ("mt", "ribo", "hb")
GENE_PATTERNS = {"mt": r"^(?:MT-|mt-)", "ribo": r"^(?:RPS|RPL|Rps|Rpl)", "hb": r"^(?:HB[^(P)]|Hb[^(p)])"}
OBS_KEYS = (
    "total_counts",
    "log1p_total_counts",
    "n_genes_by_counts",
    "log1p_n_genes_by_counts",
    *(f"{kind}_{qc}" for qc in QC_VARS for kind in ("total_counts", "log1p_total_counts", "pct_counts")),
)
VAR_METRICS = (
    "n_cells_by_counts",
    "mean_counts",
    "log1p_mean_counts",
    "pct_dropout_by_counts",
    "total_counts",
    "log1p_total_counts",
)


@dataclass
class CountMatrix:
    """The raw counts QC runs on: where they were found (``X``, ``raw`` or a layer), the matrix as stored,
    the gene symbols of its columns and why it was taken to hold counts."""

    layer: str
    matrix: object
    var_names: list[str]
    symbols: list[str]
    evidence: str

    def as_dict(self) -> dict:
        """The record's description of the matrix."""
        return {"layer": self.layer, "evidence": self.evidence, "genes": len(self.var_names)}


def _candidates(adata, layer: str) -> list[str]:
    found = ["X", *(name for name in COUNT_LAYERS if name in adata.layers)]
    found += ["raw"] if adata.raw is not None else []
    return [layer, *(name for name in found if name != layer)] if layer != "auto" else found


def count_matrix(adata, *, layer: str = "auto", input_kind: str = "auto", symbol_column: str | None = None):
    """The raw counts of ``adata`` as a :class:`CountMatrix`: the first of ``layer`` (when it names one: X, raw
    or a layer name), X, a counts layer (``counts``, ``raw_counts``, ``count``) and ``.raw`` that holds whole
    numbers. ``input_kind='counts'`` accepts the first candidate that is not scaled as counts (counts
    corrected for ambient RNA are no longer whole). Raises :class:`ScelmoError` when no matrix holds counts."""
    seen = []
    for name in _candidates(adata, layer):
        try:
            name, matrix, var = chosen_matrix(adata, name)
        except ScelmoError as exc:  # an empty X or a missing layer: look at the next candidate
            seen.append(str(exc).rstrip("."))
            continue
        kind, evidence = detect_input_kind(matrix)
        if kind == "counts" or (input_kind == "counts" and kind != "scaled"):
            names = [str(v) for v in var.index]
            symbols = gene_symbols(names, var, symbol_column)
            return CountMatrix(name, matrix, names, symbols, evidence if kind == "counts" else "declared counts")
        seen.append(f"{name} holds {DESCRIPTIONS[kind]} ({evidence})")
    raise ScelmoError(
        f"Quality control needs raw counts, and the data holds none: {'; '.join(seen)}. Keep the counts in a "
        "'counts' layer or in .raw (scanpy: adata.layers['counts'] = adata.X.copy() before normalising), or set "
        "the qc setting to off."
    )


def gene_flags(symbols) -> dict[str, np.ndarray]:
    """``{"mt", "ribo", "hb"}``: one bool per gene, from the symbols by scanpy's patterns."""
    index = pd.Index([str(s) for s in symbols])
    return {qc: np.asarray(index.str.contains(pattern, regex=True)) for qc, pattern in GENE_PATTERNS.items()}


def compute_metrics(adata, counts: CountMatrix) -> None:
    """Run scanpy's ``calculate_qc_metrics`` on ``counts`` and write its per-cell columns (:data:`OBS_KEYS`)
    into ``adata.obs``; ``adata.var`` gets the gene flags ``mt``, ``ribo``, ``hb`` and, when the counts share
    ``adata``'s genes (X or a layer), scanpy's per-gene metrics (:data:`VAR_METRICS`)."""
    import anndata as ad
    import scanpy as sc

    view = ad.AnnData(X=counts.matrix, var=pd.DataFrame(index=pd.Index(counts.var_names)))
    view.obs_names = adata.obs_names
    flags = gene_flags(counts.symbols)
    for qc, flag in flags.items():
        view.var[qc] = flag
    sc.pp.calculate_qc_metrics(view, qc_vars=list(QC_VARS), percent_top=None, log1p=True, inplace=True)
    for key in OBS_KEYS:
        adata.obs[key] = view.obs[key].to_numpy()
    same_genes = counts.layer != "raw" and list(adata.var_names) == counts.var_names
    if same_genes:
        for qc in QC_VARS:
            adata.var[qc] = flags[qc]
        for key in VAR_METRICS:
            adata.var[key] = view.var[key].to_numpy()
    else:  # .raw holds more genes than X: flag X's own genes by their names
        own = gene_flags(gene_symbols([str(v) for v in adata.var_names], adata.var))
        for qc in QC_VARS:
            adata.var[qc] = own[qc]


def mito_genes(counts: CountMatrix) -> int:
    """How many mitochondrial genes the counts have (0: no % mitochondrial bound can be suggested)."""
    return int(gene_flags(counts.symbols)["mt"].sum())
