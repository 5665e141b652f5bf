"""What a data file costs in memory, read from its header before the file itself.

Users of every single-cell viewer ask for a warning before trouble rather than a crash (``shared/PEERS.md``, ask
5): a file read into too little memory ends the app through the operating system, with no message and nothing
saved. So intake reads each file's size first (:func:`footprint`: barcodes, genes and stored values, from the
HDF5 datasets' shapes or the Matrix Market header, without reading the values) and refuses a file whose read
would not fit in the memory free now (:func:`check_fits`), with one line that says what it holds, what it needs
and what to do; and it says, before a run starts, when the run's peak may not fit (:func:`run_warning`).

The costs per stored value and per cell are measured (``benchmarks/memory_footprint.py``; figures in
``docs/benchmarks.md``, "Memory"): reading holds the file's arrays and their converted copy at once; the run's
peak adds the normalised copy, the dense scaled gene set and the neighbour graph.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from scelmo_desktop.core._infra.errors import ScelmoError

# bytes at the read's peak per stored value, by how the values are stored (measured; module docstring)
READ_BYTES_PER_VALUE = {"hdf5": 16.0, "mtx": 22.0, "dense": 8.0}
# the default run's peak (measured): every step but Scrublet holds a fixed part (the libraries and the embedder)
# and a cost per cell (at 100,000 cells, integrating the samples holds the most); Scrublet, sample by sample, holds
# less of both but adds a cost per cell it scores at once (its dense matrices of observed and simulated cells), so
# the largest sample (or part of one) sets its peak
RUN_BASE_BYTES, RUN_BYTES_PER_CELL = 1.32e9, 30e3
DOUBLETS_BASE_BYTES, DOUBLETS_BYTES_PER_CELL, DOUBLETS_BYTES_PER_SAMPLE_CELL = 0.39e9, 15e3, 201e3
# a run is said to be at risk when its estimated peak is above this share of the memory free now
RUN_WARNING_SHARE = 0.8
GIB = 2**30


@dataclass(frozen=True)
class Footprint:
    """One data file's size as its header declares it."""

    path: Path
    barcodes: int  # rows read: cells, or every barcode of an unfiltered matrix
    genes: int
    stored: int  # values stored: non-zero entries of a sparse matrix, every entry of a dense one, all matrices
    storage: str  # "hdf5" (sparse), "dense" or "mtx": what reading costs per value, READ_BYTES_PER_VALUE

    @property
    def read_bytes(self) -> int:
        """Memory the read holds at its peak."""
        return int(self.stored * READ_BYTES_PER_VALUE[self.storage])

    def describe(self) -> str:
        return f"{self.barcodes:,} barcodes x {self.genes:,} genes, {self.stored:,} stored values"


def _hdf5_matrix_values(node) -> tuple[tuple[int, int] | None, int]:
    """(shape, stored values) of one matrix in an HDF5 file: a dense dataset or a sparse group (``data``)."""
    import h5py

    if isinstance(node, h5py.Dataset):
        shape = tuple(int(v) for v in node.shape)
        return (shape if len(shape) == 2 else None), int(node.size)
    if isinstance(node, h5py.Group) and "data" in node:
        shape = tuple(int(v) for v in node.attrs["shape"]) if "shape" in node.attrs else None
        if shape is None and "shape" in node:  # Cell Ranger keeps the shape as a dataset (features x barcodes)
            features, barcodes = (int(v) for v in node["shape"][()])
            shape = (barcodes, features)
        return shape, int(node["data"].shape[0])
    return None, 0


def _hdf5_footprint(path: Path) -> Footprint | None:
    import h5py

    with h5py.File(path, "r") as handle:
        if "matrix" in handle and "features" in handle["matrix"]:  # Cell Ranger v3
            shape, stored = _hdf5_matrix_values(handle["matrix"])
        elif "X" in handle:  # AnnData: X, and every layer and .raw read with it
            shape, stored = _hdf5_matrix_values(handle["X"])
            others = [handle["layers"][k] for k in handle.get("layers", {})]
            if "raw" in handle and "X" in handle["raw"]:
                others.append(handle["raw"]["X"])
            stored += sum(_hdf5_matrix_values(node)[1] for node in others)
            if isinstance(handle["X"], h5py.Dataset) and not others:  # a dense X is read as stored, no index arrays
                return None if shape is None else Footprint(path, shape[0], shape[1], stored, "dense")
        else:  # Cell Ranger v2: one group per genome; the largest is what a read may hold
            genomes = [handle[k] for k in handle if isinstance(handle[k], h5py.Group) and "data" in handle[k]]
            if not genomes:
                return None
            shape, stored = max((_hdf5_matrix_values(g) for g in genomes), key=lambda found: found[1])
    if shape is None:
        return None
    return Footprint(path, shape[0], shape[1], stored, "hdf5")


def _mtx_footprint(folder: Path) -> Footprint | None:
    from scelmo_desktop.core.data.cellranger import mtx_file, mtx_header

    mtx = mtx_file(folder)
    if mtx is None:
        return None
    features, barcodes, entries = mtx_header(mtx)
    return Footprint(folder, barcodes, features, entries, "mtx")


def footprint(path: str | os.PathLike) -> Footprint | None:
    """The size of a data path from its header (Cell Ranger .h5 v3/v2, .h5ad, a matrix folder), or None where
    the header does not say (a .csv, a folder of genome subfolders, a file this cannot parse: the read itself then
    says what is wrong)."""
    path = Path(path)
    try:
        if path.is_dir():
            return _mtx_footprint(path)
        if path.suffix.lower() in (".h5", ".h5ad") and path.is_file():
            return _hdf5_footprint(path)
    except (OSError, KeyError, ValueError, TypeError, AttributeError, ScelmoError):
        return None  # a damaged header: the read reports it in its own words
    return None


def available_bytes() -> int:
    """Memory free for this process now (what the operating system can give without swapping)."""
    import psutil

    return int(psutil.virtual_memory().available)


def check_fits(found: Footprint | None, available: int | None = None) -> None:
    """Refuse, before reading, a file whose read would not fit in the memory free now."""
    if found is None:
        return
    available = available_bytes() if available is None else available
    if found.read_bytes > available:
        raise ScelmoError(
            f"{found.path} holds {found.describe()}; reading it needs about {found.read_bytes / GIB:.1f} GiB and "
            f"{available / GIB:.1f} GiB is free. Close other programs and try again, or open it on a machine with "
            "more memory (for an unfiltered matrix, the filtered one Cell Ranger wrote beside it is far smaller)."
        )


def run_peak_bytes(cells: int, scored_at_once: int) -> int:
    """The default run's estimated peak memory for ``cells`` cells in all, quality control's doublet scoring
    taking at most ``scored_at_once`` of them at once (the largest sample, or part of one): the larger of that
    step and every other step."""
    doublets = DOUBLETS_BASE_BYTES + DOUBLETS_BYTES_PER_CELL * cells + DOUBLETS_BYTES_PER_SAMPLE_CELL * scored_at_once
    return int(max(RUN_BASE_BYTES + RUN_BYTES_PER_CELL * cells, doublets))


def run_warning(cells: int, scored_at_once: int, available: int | None = None) -> str | None:
    """One line when a default run on these cells may not fit in the memory free now, else None."""
    available = available_bytes() if available is None else available
    need = run_peak_bytes(cells, scored_at_once)
    if need <= RUN_WARNING_SHARE * available:
        return None
    return (
        f"memory: a run on these {cells:,} cells needs about {need / GIB:.1f} GiB at its peak and "
        f"{available / GIB:.1f} GiB is free; close other programs first, or open fewer samples at a time "
        f"(quality control's doublet scoring costs most: it takes up to {scored_at_once:,} cells at once)"
    )
