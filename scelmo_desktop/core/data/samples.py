"""Read one or several samples and join them into one AnnData with ``obs['sample']``.

Sample names: from each path (:func:`sample_name`): the file or folder name, without its suffixes and without
Cell Ranger's generic parts, so ``.../sampleA/outs/filtered_feature_bc_matrix.h5`` is ``sampleA`` and
``GSM1_sampleB_filtered_feature_bc_matrix.h5`` is ``GSM1_sampleB``. A name given twice gets ``-2``, ``-3``, ...

Joining (:func:`merge_samples`):

- barcodes become ``<barcode>-<sample>`` (Cell Ranger reuses the same barcode list in every run);
- genes are matched by identity: ``var['gene_ids']`` (the Ensembl id) when every sample has unique ids, else by
  ``var_names``;
- only the genes measured in every sample are kept (the intersection). A gene missing from one sample was not
  measured there; filling it with zeros would make it look unexpressed and bias clusters, markers and
  integration. How many genes each sample lost is reported. Samples that share no gene are refused.
- ``var`` comes from the first sample; display names are made again from its symbols
  (:func:`~scelmo_desktop.core.data.cellranger.display_names`), since a symbol that repeated may no longer repeat;
- ``obsm['protein_expression']`` is kept when every sample has it, with the antibodies they all share;
- layers and obsm entries every sample has are kept; ``uns`` and ``raw`` of the inputs are not.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.data import cellranger

SAMPLE_KEY = "sample"
_GENERIC = (
    "sample_filtered_feature_bc_matrix",
    "sample_raw_feature_bc_matrix",
    "filtered_feature_bc_matrix",
    "raw_feature_bc_matrix",
    "filtered_gene_bc_matrices_h5",
    "raw_gene_bc_matrices_h5",
    "filtered_gene_bc_matrices",
    "raw_gene_bc_matrices",
    "filtered_matrix",
    "raw_matrix",
    "matrix",
    "outs",
    "count",
    "per_sample_outs",
)
_SUFFIXES = (".gz", ".h5ad", ".h5", ".csv", ".mtx", ".tsv", ".loom")
_GENERIC_TAIL = re.compile(rf"[_.\-]({'|'.join(_GENERIC)})$")


@dataclass
class SampleRead:
    """One sample as read: its AnnData, the intake facts about it, and whether it came from Cell Ranger."""

    adata: object
    record: dict
    cellranger: bool


def _stem(path: Path) -> str:
    name = path.name
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if name.lower().endswith(suffix) and len(name) > len(suffix):
                name, changed = name[: -len(suffix)], True
    return name


def sample_name(path: str | os.PathLike) -> str:
    """The sample a path belongs to: its name without suffixes or Cell Ranger's generic parts, climbing to the
    parent folder while the name is only generic (``outs``, ``filtered_feature_bc_matrix``, a Cell Ranger 2 genome
    folder, ...)."""
    path = Path(os.path.abspath(path))
    current = path
    while current.parent != current:
        stem = _stem(current)
        generic = stem in _GENERIC or (
            current.is_dir() and current.parent.name in _GENERIC and "gene_bc_matrices" in current.parent.name
        )
        if not generic:
            return _GENERIC_TAIL.sub("", stem) or stem
        current = current.parent
    return _stem(path) or "sample"


def sample_names(paths: Sequence[str | os.PathLike], names: Sequence[str] | None = None) -> list[str]:
    """One unique name per path: ``names`` when given (one per path, unique, not empty), else :func:`sample_name`
    of each, with ``-2``, ``-3``, ... added to repeats."""
    if names is not None:
        names = [str(n).strip() for n in names]
        if len(names) != len(paths):
            raise ScelmoError(f"{len(names)} sample names were given for {len(paths)} files; give one name per file.")
        if any(not n for n in names) or len(set(names)) != len(names):
            raise ScelmoError(f"Sample names must be unique and not empty; got: {', '.join(names)}.")
        return names
    chosen: list[str] = []
    for path in paths:
        base = sample_name(path)
        name, k = base, 1
        while name in chosen:
            k += 1
            name = f"{base}-{k}"
        chosen.append(name)
    return chosen


def input_format(path: str | os.PathLike) -> str:
    """The format of a data path: one of :data:`cellranger.FORMATS` for Cell Ranger output (HDF5 layouts are read
    from the file, folders from their files), ``h5ad``, ``csv`` or ``unknown``."""
    path = Path(path)
    if path.is_dir():
        return cellranger.MTX_V3 if _has_features_tsv(path) else cellranger.MTX_V2
    suffix = path.suffix.lower()
    if suffix == ".h5" and path.is_file():
        layout = cellranger.hdf5_layout(path)
        return "h5ad" if layout == "anndata" else layout
    return {".h5ad": "h5ad", ".csv": "csv"}.get(suffix, "unknown")


def _has_features_tsv(folder: Path) -> bool:
    folders = [folder, *(child for child in folder.iterdir() if child.is_dir())] if folder.is_dir() else []
    return any((f / "features.tsv").is_file() or (f / "features.tsv.gz").is_file() for f in folders)


def read_sample(path: str | os.PathLike, *, genome: str | None = None) -> SampleRead:
    """Read one path: Cell Ranger output through :func:`cellranger.read_cellranger` (``genome`` picks one of a
    barnyard run), anything else through :func:`~scelmo_desktop.core.data.io.read_data` as before."""
    from scelmo_desktop.core.data.io import read_data

    path = Path(path)
    if path.exists() and (cellranger.is_matrix_folder(path) or input_format(path) in cellranger.FORMATS):
        read = cellranger.read_cellranger(path, genome=genome)
        return SampleRead(read.adata, read.record(), True)
    adata = read_data(path)
    record = {
        "file": str(path),
        "format": input_format(path),
        "genome": "none",
        "barcodes": int(adata.n_obs),
        "genes": int(adata.n_vars),
    }
    return SampleRead(adata, record, False)


def merge_samples(samples: dict[str, object], files: dict[str, str] | None = None) -> tuple[object, dict]:
    """Join ``{sample name: AnnData}`` into one AnnData with ``obs['sample']`` (rules in the module docstring).
    ``files`` (sample name: path) only names the files in errors. Returns ``(adata, report)``; the report says how
    genes were matched and how many each sample lost."""
    import anndata as ad

    names = list(samples)
    adatas = [samples[n] for n in names]
    why_names = _why_not_by_ids(names, adatas)
    by_ids = why_names is None
    keys = [pd.Index(a.var["gene_ids"].astype(str) if by_ids else a.var_names.astype(str)) for a in adatas]
    common = keys[0]
    for other in keys[1:]:
        common = common[common.isin(other)]
    union = keys[0]
    for other in keys[1:]:
        union = union.union(other, sort=False)
    if len(common) == 0:
        files = files or {}
        listing = "; ".join(
            f"{n}{f' ({files[n]})' if n in files else ''}: {len(k)} genes, e.g. {', '.join(map(str, k[:2]))}"
            for n, k in zip(names, keys)
        )
        raise ScelmoError(
            f"The samples share no gene (matched by {'Ensembl id' if by_ids else 'gene name'}): {listing}. They come "
            "from different species or references; open them separately or align their genes first."
        )
    parts, proteins = [], []
    for name, adata, key in zip(names, adatas, keys):
        part = adata[:, key.get_indexer(common)].copy()
        part.var_names = common
        part.obs_names = [f"{barcode}-{name}" for barcode in adata.obs_names]
        part.obs[SAMPLE_KEY] = name
        proteins.append(part.obsm.pop(cellranger.PROTEIN_KEY, None))
        part.uns = {}
        parts.append(part)
    merged = ad.concat(parts, join="inner", merge=None, uns_merge=None)
    first = adatas[0]
    var = first.var.iloc[keys[0].get_indexer(common)].copy()
    if "gene_symbols" in var.columns:
        ids = var["gene_ids"].astype(str) if "gene_ids" in var.columns else pd.Series(var.index, index=var.index)
        display, repeated = cellranger.display_names(var["gene_symbols"].astype(str), ids)
    else:
        display, repeated = [str(v) for v in var.index], []
    var.index = pd.Index(display)
    merged.var = var
    merged.obs[SAMPLE_KEY] = pd.Categorical(merged.obs[SAMPLE_KEY].astype(str), categories=names)
    report = {
        "rule": "intersection",
        "matched_by": "gene_ids" if by_ids else "var_names",
        **({"matched_by_reason": why_names} if why_names else {}),
        "genes_union": int(len(union)),
        "genes_kept": int(len(common)),
        "genes_dropped_per_sample": {n: int(len(k) - len(common)) for n, k in zip(names, keys)},
        "repeated_symbols": len(repeated),
    }
    if all(p is not None for p in proteins):
        shared = [c for c in proteins[0].columns if all(c in p.columns for p in proteins[1:])]
        frame = pd.concat([p[shared] for p in proteins], axis=0)
        frame.index = merged.obs_names
        merged.obsm[cellranger.PROTEIN_KEY] = frame
        report["proteins_kept"] = len(shared)
    elif any(p is not None for p in proteins):
        report["proteins_kept"] = 0
        report["proteins_note"] = "antibody counts dropped: not every sample has them"
    return merged, report


def _why_not_by_ids(names: list[str], adatas: list) -> str | None:
    """Why genes cannot be matched by Ensembl id (a sample without ids, or one that repeats an id), or None."""
    for name, adata in zip(names, adatas):
        if "gene_ids" not in adata.var.columns:
            return f"{name} has no gene ids"
        ids = adata.var["gene_ids"].astype(str)
        repeats = ids[ids.duplicated()].unique()
        if len(repeats):
            return f"{name} repeats {len(repeats)} gene id{'s' if len(repeats) > 1 else ''}, e.g. {repeats[0]}"
    return None


def read_samples(
    paths: Sequence[str | os.PathLike], names: Sequence[str] | None = None, genome: str | None = None
) -> object:
    """Read several samples (any format :func:`read_sample` reads) and join them (:func:`merge_samples`) into one
    AnnData with ``obs['sample']``; no cell calling (see :func:`scelmo_desktop.core.workflows.intake.open_data`).
    Writes ``uns['scelmo']['intake']``: ``samples`` (one record per sample) and ``merge`` (the join report)."""
    from scelmo_desktop.core._infra.provenance import h5ad_safe
    from scelmo_desktop.core.keys import add_record

    paths = list(paths)
    if not paths:
        raise ScelmoError("No data files were given; give one or more files or matrix folders.")
    chosen = sample_names(paths, names)
    reads = {n: read_sample(p, genome=genome) for n, p in zip(chosen, paths)}
    merged, report = merge_samples({n: r.adata for n, r in reads.items()}, {n: str(p) for n, p in zip(chosen, paths)})
    add_record(merged, "intake", h5ad_safe({"samples": {n: r.record for n, r in reads.items()}, "merge": report}))
    return merged


def counts_per_sample(adata) -> dict[str, int]:
    """Cells per sample (``obs['sample']``), in sample order."""
    values = adata.obs[SAMPLE_KEY]
    order = values.cat.categories if hasattr(values, "cat") else pd.unique(values)
    return {str(k): int(np.sum(values == k)) for k in order}
