"""Write a pipeline result to a folder: h5ad, metrics CSV, descriptions CSV, provenance JSON, figures, report.

Every file is written atomically; figures are drawn before the h5ad so that the category colours scanpy
assigns (``uns['<column>_colors']``) are saved with the data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from scelmo_desktop.core._infra.atomic import write_text_atomic
from scelmo_desktop.core.data.io import write_h5ad
from scelmo_desktop.core.keys import CLUSTER_KEY, NAME_KEY, UNS_KEY
from scelmo_desktop.core.workflows.report import save_figures, write_report

RESULT_H5AD = "scelmo_result.h5ad"


def write_outputs(result, out_dir: str | Path, *, label_key: str | None = None) -> dict[str, Path]:
    """Write a pipeline result into ``out_dir``: UMAP PNGs, h5ad, metrics.csv, descriptions.csv, provenance.json and
    report.html (and markers.csv and cell_types.csv with the run's marker genes and cluster names); returns the paths. Drawing the UMAPs stores ``uns['<column>_colors']`` before the h5ad is saved."""
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
    """The app's "Export data with results": the h5ad (every key, hand edits included) and, beside it, the
    current clusters' ``<stem>_markers.csv`` and ``<stem>_cell_types.csv`` (with the names as edited by hand).
    Returns the paths."""
    h5ad_path = Path(h5ad_path)
    paths = {"h5ad": write_h5ad(adata, h5ad_path)}
    if markers is not None:
        table = markers.table.to_csv(index=False)
        paths["markers"] = write_text_atomic(h5ad_path.with_name(f"{h5ad_path.stem}_markers.csv"), table)
    if naming is not None:
        table = naming.table().to_csv(index=False)
        paths["cell_types"] = write_text_atomic(h5ad_path.with_name(f"{h5ad_path.stem}_cell_types.csv"), table)
    return paths
