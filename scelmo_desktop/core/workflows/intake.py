"""Intake: open one or several data paths as the one AnnData a run works on; the doors' only way to open data.

Steps per path: read it (:func:`scelmo_desktop.core.data.samples.read_sample`: Cell Ranger HDF5 v3/v2 and matrix
folders through :mod:`scelmo_desktop.core.data.cellranger`, .h5ad and .csv as ``read_data`` reads them); call
cells when the matrix is unfiltered (:mod:`scelmo_desktop.core.data.cell_calling`); then join the samples
(:func:`scelmo_desktop.core.data.samples.merge_samples`). A single .h5ad or .csv path comes back as ``read_data``
gives it, plus the intake record.

``cell_calling``: ``auto`` calls cells in Cell Ranger output that looks unfiltered (most barcodes are empty
droplets, or the file is Cell Ranger's raw matrix); ``on`` calls cells in every sample; ``off`` never does.
``umi_threshold`` replaces the calling rule by a UMI threshold wherever cells are called.

Keys written: ``obs['sample']`` (Cell Ranger input, or several samples), ``obsm['protein_expression']`` (antibody
counts, when present) and ``uns['scelmo']['intake']``: ``samples`` (one record per sample: file, format, genome,
barcodes, cells and how they were called, features set aside by type, repeated symbols), ``merge`` (how genes were
matched, or ``none``), ``settings``, ``n_cells``, ``n_genes``, ``created_at``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, check_cancel, no_progress
from scelmo_desktop.core._infra.provenance import h5ad_safe, now_iso
from scelmo_desktop.core.data import footprint
from scelmo_desktop.core.data import samples as sample_io
from scelmo_desktop.core.data.cell_calling import (
    CellCall,
    barcode_rank_points,  # noqa: F401 - for the app's barcode-rank plot
    barcodes_at_least,  # noqa: F401 - for the app's barcode-rank plot
    call_cells,
    is_raw_counts,
    looks_unfiltered,
    write_barcode_rank_plot,
)
from scelmo_desktop.core.data.cellranger import PROTEIN_KEY
from scelmo_desktop.core.keys import add_record
from scelmo_desktop.core.qc.doublets import largest_part

CELL_CALLING_CHOICES = ("auto", "on", "off")
RECORD_NAME = "intake"
_RAW_NAMES = ("raw_feature_bc_matrix", "raw_gene_bc_matrices")


@dataclass
class IntakeResult:
    """What :func:`open_data` opened: the AnnData, one record per sample (the same as in
    ``uns['scelmo']['intake']['samples']``), the cell calls made (for the barcode-rank plots) and the join report
    (None for one sample)."""

    adata: object
    records: dict[str, dict]
    calls: dict[str, CellCall] = field(default_factory=dict)
    merge: dict | None = None
    warnings: list[str] = field(default_factory=list)  # said before a run starts (a run that may not fit in memory)

    def summary_lines(self) -> list[str]:
        """One plain line per sample, plus one for the join: what was opened and what was done to it; then any
        warning."""
        return intake_lines(self.records, self.merge) + list(self.warnings)

    def write_barcode_rank_plots(self, folder: str | os.PathLike) -> dict[str, Path]:
        """Write ``barcode_rank_<sample>.png`` for each sample where cells were called; returns the paths."""
        folder = Path(folder)
        return {
            name: write_barcode_rank_plot(call, folder / f"barcode_rank_{name}.png", title=f"{name}: barcode rank")
            for name, call in self.calls.items()
        }


def intake_lines(records: dict, merge: dict | None) -> list[str]:
    """One plain line per sample record (:func:`open_data`'s, as in ``uns['scelmo']['intake']['samples']``), plus
    one for the join (``merge``; None for one sample): what was opened and what was done to it. The CLI prints
    them and the report shows them."""
    lines = []
    for name, record in records.items():
        genome = f", {record['genome']}" if record.get("genome", "none") != "none" else ""
        calling = record.get("cell_calling", {})
        if calling.get("done"):
            cells = (
                f"{record['cells']:,} cells called of {record['barcodes']:,} barcodes ({calling['method']}, "
                f"at least {calling['umi_threshold']:,.0f} UMIs)"
            )
        else:
            cells = f"{record['cells']:,} cells"
        line = f"{name} ({record['format']}{genome}): {cells} x {record['genes']:,} genes"
        aside = record.get("features_set_aside") or {}
        if aside:
            parts = [f"{kind} {n}" for kind, n in aside.items()]
            kept = f" (antibodies kept in obsm['{PROTEIN_KEY}'])" if record.get("proteins") else ""
            line += f"; set aside: {', '.join(parts)}{kept}"
        if record.get("repeated_symbols"):
            line += f"; {record['repeated_symbols']} symbols name more than one gene (later ones: symbol-id)"
        lines.append(line)
    if merge:
        dropped = {k: v for k, v in merge["genes_dropped_per_sample"].items() if v}
        line = (
            f"joined {len(records)} samples: {merge['genes_kept']:,} genes measured in all "
            f"(matched by {merge['matched_by']}; {merge['genes_union']:,} in any)"
        )
        if merge.get("matched_by_reason"):
            line += f"; not by gene id because {merge['matched_by_reason']}"
        if dropped:
            line += "; genes not in every sample left out: " + ", ".join(f"{k} {v}" for k, v in dropped.items())
        lines.append(line)
    return lines


def _as_paths(paths) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    paths = [Path(p) for p in paths]
    if not paths:
        raise ScelmoError("No data files were given; give one or more files or matrix folders.")
    seen: dict[Path, Path] = {}
    for path in paths:  # one run given twice would join its cells to themselves as a second sample
        first = seen.setdefault(path.resolve(), path)
        if first is not path:
            raise ScelmoError(f"{path} was given twice (also as {first}); give each sample once.")
    return paths


def _check_options(cell_calling: str, umi_threshold, expected_cells) -> None:
    if cell_calling not in CELL_CALLING_CHOICES:
        raise ScelmoError(f"Cell calling '{cell_calling}' is not one of {', '.join(CELL_CALLING_CHOICES)}.")
    if umi_threshold is not None and not umi_threshold > 0:
        raise ScelmoError(f"The UMI threshold must be a positive number of UMIs; got {umi_threshold}.")
    if umi_threshold is not None and cell_calling == "off":
        raise ScelmoError("A UMI threshold was given but cell calling is off; turn cell calling on or auto to use it.")
    if expected_cells is not None and not expected_cells >= 1:
        raise ScelmoError(f"The expected number of cells must be at least 1; got {expected_cells}.")


def _calling_reason(path: Path, read: sample_io.SampleRead, cell_calling: str) -> str | None:
    """Why cells are called in this sample, or None when they are not."""
    if cell_calling == "on":
        return "asked for"
    if cell_calling == "off" or not read.cellranger:
        return None
    if any(raw in part for part in path.parts[-4:] for raw in _RAW_NAMES):
        return "Cell Ranger's raw (unfiltered) matrix"
    if looks_unfiltered(read.adata):
        return "most barcodes are empty droplets (unfiltered matrix)"
    return None


def _call(path: Path, adata, umi_threshold, expected_cells) -> tuple[object, CellCall]:
    counts = adata.X
    if counts is None or (counts.shape[0] and not is_raw_counts(counts)):
        raise ScelmoError(
            f"{path}: cell calling needs raw UMI counts, but X holds non-integer values; turn cell calling off for "
            "normalised data."
        )
    call = call_cells(counts, expected_cells, umi_threshold=umi_threshold)
    if call.n_cells == 0:
        most = float(call.totals.max()) if call.totals.size else 0.0
        raise ScelmoError(
            f"{path}: cell calling found no cells among {call.n_barcodes:,} barcodes (the most UMIs on one barcode: "
            f"{most:,.0f}; a cell needs at least {call.umi_threshold:,.0f}). Check that this is the Gene Expression "
            "matrix of a run that captured cells, or set a lower UMI threshold."
        )
    return adata[call.mask].copy(), call


def open_data(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    sample_names: Sequence[str] | None = None,
    genome: str | None = None,
    cell_calling: str = "auto",
    umi_threshold: float | None = None,
    expected_cells: int | None = None,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> IntakeResult:
    """Open one or several data paths as one AnnData (module docstring): read, call cells where the matrix is
    unfiltered, join samples, and record it all in ``uns['scelmo']['intake']``.

    ``sample_names``: one per path (default: from each path, see :func:`~scelmo_desktop.core.data.samples.sample_name`);
    ``genome``: the genome to keep from a barnyard run; ``cell_calling``: ``auto`` / ``on`` / ``off``;
    ``umi_threshold``: a UMI threshold replacing the calling rule; ``expected_cells``: the N of the ordmag rule
    (estimated when None)."""
    paths = _as_paths(paths)
    _check_options(cell_calling, umi_threshold, expected_cells)
    names = sample_io.sample_names(paths, sample_names)
    adatas, records, calls = {}, {}, {}
    for index, (name, path) in enumerate(zip(names, paths)):
        check_cancel(cancel)
        progress("open data", index, len(paths), f"reading {name}")
        footprint.check_fits(footprint.footprint(path))  # a read that cannot fit is refused, not crashed into
        read = sample_io.read_sample(path, genome=genome)
        adata, record = read.adata, dict(read.record)
        reason = _calling_reason(path, read, cell_calling)
        if reason is not None:
            adata, call = _call(path, adata, umi_threshold, expected_cells)
            calls[name] = call
            record["cell_calling"] = {"done": True, "reason": reason, **call.record()}
        else:
            why = (
                "off" if cell_calling == "off" else ("filtered matrix" if read.cellranger else "not Cell Ranger output")
            )
            record["cell_calling"] = {"done": False, "reason": why}
        record["cells"] = int(adata.n_obs)
        adatas[name], records[name] = adata, record
    progress("open data", len(paths), len(paths), "joining samples" if len(paths) > 1 else "done")
    merge = None
    if len(paths) > 1:
        adata, merge = sample_io.merge_samples(adatas, {n: str(p) for n, p in zip(names, paths)})
    else:
        adata = adatas[names[0]]
        if records[names[0]]["format"] not in ("h5ad", "csv"):
            adata.obs[sample_io.SAMPLE_KEY] = pd.Categorical([names[0]] * adata.n_obs)
    settings = {
        "genome": genome,
        "cell_calling": cell_calling,
        "umi_threshold": umi_threshold,
        "expected_cells": expected_cells,
    }
    add_record(
        adata,
        RECORD_NAME,
        h5ad_safe(
            {
                "created_at": now_iso(),
                "samples": records,
                "merge": merge,
                "settings": settings,
                "n_cells": int(adata.n_obs),
                "n_genes": int(adata.n_vars),
            }
        ),
    )
    at_once = max(largest_part(record["cells"]) for record in records.values())
    memory = footprint.run_warning(adata.n_obs, at_once)
    warnings = [memory] if memory else []
    return IntakeResult(adata=adata, records=records, calls=calls, merge=merge, warnings=warnings)
