"""Read and validate user data; write AnnData atomically.

Every problem a user can fix is raised as :class:`ScelmoError` naming the file, the field and what to do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from scelmo_desktop.core.atomic import write_atomic
from scelmo_desktop.core.errors import ScelmoError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
SUPPORTED = ".h5ad (AnnData), .h5 (10x Genomics), .csv (cells x genes) or a 10x matrix folder"


def read_data(path: str | os.PathLike):
    """Read a single-cell data file into AnnData, with a clear error for anything unreadable."""
    import anndata as ad
    import scanpy as sc

    path = Path(path)
    if not path.exists():
        raise ScelmoError(f"Data file not found: {path}. Check the path (expected {SUPPORTED}).")
    if path.is_dir():
        if not any((path / name).exists() for name in ("matrix.mtx", "matrix.mtx.gz")):
            raise ScelmoError(f"{path} is a folder without matrix.mtx(.gz); give a 10x matrix folder or a file ({SUPPORTED}).")
        return _guarded(path, lambda: sc.read_10x_mtx(path))
    suffix = path.suffix.lower()
    if suffix in (".h5ad", ".h5"):
        with open(path, "rb") as handle:
            head = handle.read(8)
        if head != HDF5_SIGNATURE:
            raise ScelmoError(
                f"{path} is not an HDF5 file (it does not start with the HDF5 signature), so it is not a valid "
                f"{suffix} file. Re-export it from scanpy/Seurat with write_h5ad, or check that the download completed."
            )
        reader = ad.read_h5ad if suffix == ".h5ad" else sc.read_10x_h5
        adata = _guarded(path, lambda: reader(path))
    elif suffix == ".csv":
        adata = _guarded(path, lambda: sc.read_csv(path))
    else:
        raise ScelmoError(f"{path}: unsupported file type '{suffix or '(none)'}'. Give {SUPPORTED}.")
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise ScelmoError(f"{path} holds {adata.n_obs} cells x {adata.n_vars} genes; an empty matrix cannot be embedded.")
    return adata


def _guarded(path: Path, read):
    try:
        return read()
    except ScelmoError:
        raise
    except Exception as exc:  # any library error while parsing becomes one clear line
        raise ScelmoError(f"Could not read {path}: {type(exc).__name__}: {exc}. The file may be truncated or corrupt.") from exc


@dataclass
class Expression:
    """The matrix that feeds the embedding, with the gene names of its columns."""

    matrix: sp.csr_matrix | np.ndarray
    var_names: list[str]
    layer: str
    var: object  # the pandas DataFrame describing the columns (symbol columns live here)


def select_expression(adata, layer: str = "auto", *, require_nonnegative: bool = True) -> Expression:
    """Pick the input matrix explicitly: ``X``, ``raw`` or a layer name; ``auto`` prefers ``raw`` when present.

    ``wa`` divides by each cell's total, which is only meaningful for non-negative values (counts or
    log-normalised data); scaled data (``pbmc68k_reduced.X``) has negatives and is refused with a hint.
    """
    if layer == "auto":
        layer = "raw" if adata.raw is not None else "X"
    if layer == "X":
        matrix, var = adata.X, adata.var
    elif layer == "raw":
        if adata.raw is None:
            raise ScelmoError("--layer raw was asked for but the file has no .raw; use --layer X or a layer name.")
        matrix, var = adata.raw.X, adata.raw.var
    elif layer in adata.layers:
        matrix, var = adata.layers[layer], adata.var
    else:
        available = ["X"] + (["raw"] if adata.raw is not None else []) + list(adata.layers.keys())
        raise ScelmoError(f"Layer '{layer}' not found. Available: {', '.join(available)}.")
    if matrix is None:
        raise ScelmoError(f"The '{layer}' matrix is empty (None); choose another --layer.")
    matrix = sp.csr_matrix(matrix, dtype=np.float32) if sp.issparse(matrix) else np.asarray(matrix, dtype=np.float32)
    values = matrix.data if sp.issparse(matrix) else matrix
    if not np.isfinite(values).all():
        raise ScelmoError(f"The '{layer}' matrix contains NaN or infinite values; clean or re-normalise the data first.")
    if require_nonnegative and values.size and values.min() < 0:
        raise ScelmoError(
            f"The '{layer}' matrix has negative values (minimum {values.min():.3g}), so it looks scaled. "
            "The weighted average needs counts or log-normalised values: use --layer raw or a counts layer."
        )
    return Expression(matrix=matrix, var_names=[str(v) for v in var.index], layer=layer, var=var)


def write_h5ad(adata, path: str | os.PathLike) -> Path:
    """Write AnnData atomically (temporary file in the same folder, then rename)."""
    return write_atomic(path, lambda tmp: adata.write_h5ad(tmp))
