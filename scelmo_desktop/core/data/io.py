"""Read and validate user data; write AnnData atomically.

Every problem a user can fix is raised as :class:`ScelmoError` naming the file, the field and what to do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from scelmo_desktop.core._infra.atomic import write_atomic
from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.data.input_kind import InputKind, detect_input_kind, prepare

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
MAX_DIMENSION = 2**31 - 1  # beyond this a declared size is corrupt (and would overflow 32-bit sparse indices)
SUPPORTED = ".h5ad (AnnData), .h5 (10x Genomics), .csv (cells x genes) or a 10x matrix folder"


def read_data(path: str | os.PathLike):
    """Read a single-cell data file into AnnData, with a clear error for anything unreadable.

    Cell Ranger output (.h5 v3/v2, matrix folders) goes through :func:`cellranger.read_cellranger`: gene expression
    only, Ensembl ids in ``var['gene_ids']``, unique display names; no cell calling (that is
    :func:`scelmo_desktop.core.workflows.intake.open_data`). .h5ad and .csv are read as they are."""
    import anndata as ad
    import scanpy as sc

    from scelmo_desktop.core.data.cellranger import hdf5_layout, read_cellranger

    path = Path(path)
    if not path.exists():
        raise ScelmoError(f"Data file not found: {path}. Check the path (expected {SUPPORTED}).")
    if path.is_dir():  # a Cell Ranger matrix folder (v3 or v2): gene expression only, display names unique
        return _checked(path, _guarded(path, lambda: read_cellranger(path).adata))
    suffix = path.suffix.lower()
    if suffix in (".h5ad", ".h5"):
        with open(path, "rb") as handle:
            head = handle.read(8)
        if head != HDF5_SIGNATURE:
            raise ScelmoError(
                f"{path} is not an HDF5 file (it does not start with the HDF5 signature), so it is not a valid "
                f"{suffix} file. Re-export it from scanpy/Seurat with write_h5ad, or check that the download completed."
            )
        if suffix == ".h5" and hdf5_layout(path) != "anndata":  # Cell Ranger v3 or v2 (anything else is refused)
            return _checked(path, _guarded(path, lambda: read_cellranger(path).adata))
        _check_h5ad_shape(path)
        adata = _guarded(path, lambda: ad.read_h5ad(path))
    elif suffix == ".csv":
        adata = _guarded(path, lambda: sc.read_csv(path))
    else:
        raise ScelmoError(f"{path}: unsupported file type '{suffix or '(none)'}'. Give {SUPPORTED}.")
    return _checked(path, adata)


def _checked(path: Path, adata):
    """Refuse what would embed silently wrong: no cells or genes, empty or duplicated gene names."""
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise ScelmoError(
            f"{path} holds {adata.n_obs} cells x {adata.n_vars} genes; an empty matrix cannot be embedded."
        )
    names = adata.var_names.astype(str)
    empty = int((names.str.strip() == "").sum())
    if empty:
        raise ScelmoError(
            f"{path}: {empty} gene name(s) in var_names are empty; every gene needs a name "
            "(fix var_names, or use a var column with symbols via the symbol column setting)."
        )
    duplicated = names[names.duplicated()].unique()
    if len(duplicated):
        raise ScelmoError(
            f"{path}: {len(duplicated)} gene name(s) occur more than once in var_names (e.g. "
            f"{', '.join(map(str, duplicated[:5]))}); run adata.var_names_make_unique() or sum the "
            "duplicates, then save again."
        )
    return adata


def _check_h5ad_shape(path: Path) -> None:
    """Read the declared shape before loading: a corrupt size would otherwise allocate without bound."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            X = handle.get("X")
            shape = None
            if isinstance(X, h5py.Dataset):
                shape = X.shape
            elif X is not None and "shape" in X.attrs:
                shape = tuple(int(v) for v in X.attrs["shape"])
    except OSError as exc:
        raise ScelmoError(f"Could not read {path}: {exc}. The file may be truncated or corrupt.") from exc
    if shape is not None and any(int(n) > MAX_DIMENSION for n in shape):
        raise ScelmoError(
            f"{path} declares a matrix of {shape[0]} x {shape[1]}, beyond what any file holds; "
            "the file is corrupt. Re-export it."
        )


def require_obs_column(adata, key: str, what: str) -> None:
    """Refuse a missing obs column, listing the ones there are (``what``: batch, condition, …)."""
    if key not in adata.obs.columns:
        raise ScelmoError(
            f"The {what} column '{key}' is not in obs; available: {', '.join(map(str, adata.obs.columns))}."
        )


def _guarded(path: Path, read):
    try:
        return read()
    except ScelmoError:
        raise
    except Exception as exc:  # any library error while parsing becomes one clear line
        raise ScelmoError(
            f"Could not read {path}: {type(exc).__name__}: {exc}. The file may be truncated or corrupt."
        ) from exc


@dataclass
class Expression:
    """The matrix that feeds every step: log-normalised values of the chosen input (see
    :mod:`scelmo_desktop.core.data.input_kind`), with the gene names of its columns."""

    matrix: sp.csr_matrix | np.ndarray
    var_names: list[str]
    layer: str
    var: object  # the pandas DataFrame describing the columns (symbol columns live here)
    input_kind: InputKind | None = None  # what the input held and how it was prepared (None: used as given)


COUNT_LAYERS = ("counts", "raw_counts", "count")


def _auto_layer(adata) -> str:
    """``raw`` when present; else ``X``, unless ``X`` is scaled and a counts layer exists."""
    if adata.raw is not None:
        return "raw"
    if adata.X is not None and adata.n_obs and detect_input_kind(adata.X)[0] == "scaled":
        for name in COUNT_LAYERS:
            if name in adata.layers:
                return name
    return "X"


def _other_matrices(adata, layer: str) -> str:
    """Where else ``adata`` holds values (``.raw``, layers) than ``layer``, in words, for a refused matrix."""
    others = (["raw"] if adata.raw is not None and layer != "raw" else []) + [
        name for name in adata.layers if name != layer
    ]
    if others:
        return f"Choose one that holds counts or log-normalised values with the layer setting: {', '.join(others)}."
    return (
        "The file holds no other matrix (no .raw, no layers) to fall back on: export the counts or the "
        "log-normalised values from the tool that made it."
    )


def select_expression(adata, layer: str = "auto", *, input_kind: str = "auto") -> Expression:
    """Pick the input matrix explicitly (``X``, ``raw`` or a layer name; ``auto``: :func:`_auto_layer`), detect
    what it holds and prepare it: counts and TPM/CPM are normalised and log-transformed, log values are used as
    they are, and scaled values (negatives) are refused with a hint. ``input_kind`` overrides the detection.
    """
    layer, matrix, var = chosen_matrix(adata, layer)
    matrix = sp.csr_matrix(matrix, dtype=np.float32) if sp.issparse(matrix) else np.asarray(matrix, dtype=np.float32)
    values = matrix.data if sp.issparse(matrix) else matrix
    if not np.isfinite(values).all():
        raise ScelmoError(
            f"The '{layer}' matrix contains NaN or infinite values; clean or re-normalise the data first."
        )
    if not values.size or not np.any(values):
        raise ScelmoError(
            f"The '{layer}' matrix ({matrix.shape[0]} cells x {matrix.shape[1]} genes) is all zeros: "
            "there is no expression to embed. Check that the file holds the measured values (another "
            "layer, or .raw), not an empty placeholder."
        )
    prepared, kind = prepare(
        matrix, input_kind, what=f"The '{layer}' matrix", scaled_hint=_other_matrices(adata, layer)
    )
    return Expression(matrix=prepared, var_names=[str(v) for v in var.index], layer=layer, var=var, input_kind=kind)


def chosen_matrix(adata, layer: str = "auto"):
    """``(layer name, matrix as stored, var)`` for ``X``, ``raw``, a layer name or ``auto``."""
    if layer == "auto":
        layer = _auto_layer(adata)
    if layer == "X":
        matrix, var = adata.X, adata.var
    elif layer == "raw":
        if adata.raw is None:
            raise ScelmoError("The input layer 'raw' was asked for but the file has no .raw; choose X or a layer name.")
        matrix, var = adata.raw.X, adata.raw.var
    elif layer in adata.layers:
        matrix, var = adata.layers[layer], adata.var
    else:
        available = ["X"] + (["raw"] if adata.raw is not None else []) + list(adata.layers.keys())
        raise ScelmoError(f"Layer '{layer}' not found. Available: {', '.join(available)}.")
    if matrix is None:
        raise ScelmoError(f"The '{layer}' matrix is empty (None); choose another input layer.")
    return layer, matrix, var


def write_h5ad(adata, path: str | os.PathLike) -> Path:
    """Write AnnData atomically (temporary file in the same folder, then rename)."""
    return write_atomic(path, lambda tmp: adata.write_h5ad(tmp))


def label_values(adata, label_key: str | None):
    """``obs[label_key]`` as strings (None without a key); refuses a missing column or any missing value."""
    if label_key is None:
        return None
    if label_key not in adata.obs.columns:
        raise ScelmoError(
            f"Label column '{label_key}' is not in obs; available: {', '.join(map(str, adata.obs.columns))}."
        )
    labels = adata.obs[label_key]
    if labels.isna().all():
        raise ScelmoError(f"Label column '{label_key}' is empty (all values missing); choose another label column.")
    if labels.isna().any():
        raise ScelmoError(
            f"Label column '{label_key}' has {int(labels.isna().sum())} missing values; fill or drop those cells."
        )
    return labels.astype(str).to_numpy()
