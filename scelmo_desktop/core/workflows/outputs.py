"""Write a pipeline result to a folder: h5ad, metrics CSV, descriptions CSV, a table of the cells, provenance
JSON, figures, report.

Every file is written atomically; figures are drawn before the h5ad so that the category colours scanpy
assigns (``uns['<column>_colors']``) are saved with the data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from scelmo_desktop.core._infra.atomic import write_text_atomic
from scelmo_desktop.core.data.io import write_h5ad
from scelmo_desktop.core.data.samples import SAMPLE_KEY
from scelmo_desktop.core.keys import CLUSTER_KEY, LABEL_KEY, NAME_KEY, UNS_KEY
from scelmo_desktop.core.workflows.report import save_figures, write_report

RESULT_H5AD = "scelmo_result.h5ad"
# per-cell columns the table carries when the data has them: the run's clusters and names, annotation's labels,
# quality control's measures
CELL_COLUMNS = (
    CLUSTER_KEY, NAME_KEY, f"{NAME_KEY}_ontology_id", f"{NAME_KEY}_confidence", LABEL_KEY, f"{LABEL_KEY}_confidence",
    "n_genes_by_counts", "total_counts", "pct_counts_mt", "doublet_score", "predicted_doublet",
)  # fmt: skip


def cells_table(adata) -> pd.DataFrame:
    """One row per cell, for a spreadsheet, R or another viewer: ``barcode`` (the AnnData's), ``sample`` and
    ``cellranger_barcode`` (when intake joined several samples, it suffixed each barcode with its sample's name:
    this is the barcode as in that sample's own Cell Ranger files, what a viewer of one sample matches on), then :data:`CELL_COLUMNS` that
    the data has and the UMAP's two coordinates (``UMAP_1``, ``UMAP_2``)."""
    table = pd.DataFrame({"barcode": adata.obs_names.astype(str)})
    if SAMPLE_KEY in adata.obs:
        samples = adata.obs[SAMPLE_KEY].astype(str).to_numpy()
        table[SAMPLE_KEY] = samples
        pairs = list(zip(table["barcode"], [f"-{sample}" for sample in samples]))
        if len(set(samples)) > 1 and all(len(b) > len(x) and b.endswith(x) for b, x in pairs):
            table["cellranger_barcode"] = [b[: -len(x)] for b, x in pairs]
    for column in CELL_COLUMNS:
        if column in adata.obs:
            table[column] = adata.obs[column].to_numpy()
    if "X_umap" in adata.obsm:
        umap = np.asarray(adata.obsm["X_umap"])
        table["UMAP_1"], table["UMAP_2"] = umap[:, 0], umap[:, 1]
    return table


def write_outputs(result, out_dir: str | Path, *, label_key: str | None = None) -> dict[str, Path]:
    """Write a pipeline result into ``out_dir``: UMAP PNGs, h5ad, metrics.csv, descriptions.csv, cells.csv
    (:func:`cells_table`), provenance.json and report.html (and markers.csv and cell_types.csv with the run's marker
    genes and cluster names); returns the paths. Drawing the UMAPs stores ``uns['<column>_colors']`` before the h5ad is saved."""
    out_dir = Path(out_dir)
    adata, record = result.adata, result.record
    colors = {f"umap_{CLUSTER_KEY}": CLUSTER_KEY}
    if getattr(result, "naming", None) is not None:
        colors[f"umap_{NAME_KEY}"] = NAME_KEY
    if label_key:
        colors[f"umap_{label_key}"] = label_key
    figures = save_figures(adata, out_dir, colors)
    if getattr(result, "qc", None) is not None:  # the run's QC: table, plots, its report and record in qc/
        from scelmo_desktop.core.workflows.qc import write_qc_files

        result.qc.files = write_qc_files(result.qc, out_dir / "qc")
    paths = dict(figures)
    paths["h5ad"] = write_h5ad(adata, out_dir / RESULT_H5AD)
    paths["metrics"] = write_text_atomic(out_dir / "metrics.csv", result.metrics.to_csv(index=False))
    descriptions = pd.DataFrame({"gene": list(result.descriptions), "description": list(result.descriptions.values())})
    paths["descriptions"] = write_text_atomic(out_dir / "descriptions.csv", descriptions.to_csv(index=False))
    paths["cells"] = write_text_atomic(out_dir / "cells.csv", cells_table(adata).to_csv(index=False))
    if getattr(result, "markers", None) is not None:
        from scelmo_desktop.core.workflows.markers import write_markers_table

        paths["markers"] = write_markers_table(result.markers, out_dir)
    if getattr(result, "naming", None) is not None:
        from scelmo_desktop.core.workflows.naming import write_names_table

        paths["cell_types"] = write_names_table(result.naming, out_dir)
    paths["provenance"] = write_text_atomic(out_dir / "provenance.json", json.dumps(record, indent=2, default=str))
    paths["report"] = write_report(
        out_dir / "report.html",
        record=record,
        metrics=result.metrics,
        figures=figures,
        descriptions=descriptions.head(15),
        qc=getattr(result, "qc", None),
        markers=getattr(result, "markers", None),
        naming=getattr(result, "naming", None),
        intake=(adata.uns.get(UNS_KEY) or {}).get("intake"),
    )
    return paths


def export_results(adata, h5ad_path: str | Path, *, markers=None, naming=None) -> dict[str, Path]:
    """The app's "Export data with results": the h5ad (every key, hand edits included) and, beside it,
    ``<stem>_cells.csv`` (:func:`cells_table`) and the current clusters' ``<stem>_markers.csv`` and
    ``<stem>_cell_types.csv`` (with the names as edited by hand). Returns the paths."""
    h5ad_path = Path(h5ad_path)
    paths = {"h5ad": write_h5ad(adata, h5ad_path)}
    cells = cells_table(adata).to_csv(index=False)
    paths["cells"] = write_text_atomic(h5ad_path.with_name(f"{h5ad_path.stem}_cells.csv"), cells)
    if markers is not None:
        table = markers.table.to_csv(index=False)
        paths["markers"] = write_text_atomic(h5ad_path.with_name(f"{h5ad_path.stem}_markers.csv"), table)
    if naming is not None:
        table = naming.table().to_csv(index=False)
        paths["cell_types"] = write_text_atomic(h5ad_path.with_name(f"{h5ad_path.stem}_cell_types.csv"), table)
    return paths
