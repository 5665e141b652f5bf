"""Import precomputed gene-embedding tables (GenePT / scELMo pickles, .npz, .csv/.tsv, .parquet) and keep them
in the user's tables folder, so they work everywhere a generated table does.

Pickles are read with a restricted unpickler: only dicts, lists, tuples, strings, numbers and numpy arrays are
accepted. A pickle naming any other class (the way malicious pickles run code) is refused before anything in it
is constructed.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.paths import user_data_dir
from scelmo_desktop.core._infra.provenance import now_iso, sha256_file
from scelmo_desktop.core._infra.safe_pickle import safe_unpickle
from scelmo_desktop.core.embedding.gene_table import GeneTable, load_gene_table, save_gene_table

NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,80}$")


def _from_mapping(mapping, path: Path) -> GeneTable:
    if not isinstance(mapping, dict) or not mapping:
        raise ScelmoError(f"{path}: expected a non-empty dict of gene symbol -> vector, got {type(mapping).__name__}.")
    symbols = [str(k) for k in mapping]
    try:
        vectors = np.stack([np.asarray(v, dtype=np.float32).ravel() for v in mapping.values()])
    except ValueError as exc:
        raise ScelmoError(f"{path}: the vectors do not all have the same length ({exc}).") from exc
    return GeneTable(symbols=symbols, vectors=vectors)


def _from_frame(frame: pd.DataFrame, path: Path) -> GeneTable:
    if frame.shape[1] < 2:
        raise ScelmoError(f"{path}: expected a symbol column followed by numeric columns.")
    values = frame.iloc[:, 1:].apply(pd.to_numeric, errors="coerce")
    if values.isna().any().any():
        raise ScelmoError(f"{path}: non-numeric or missing values in the vector columns (first column = symbol).")
    return GeneTable(symbols=frame.iloc[:, 0].astype(str).tolist(), vectors=values.to_numpy(np.float32))


def read_table_file(path: str | Path) -> GeneTable:
    """A gene table from .pkl/.pickle (symbol → vector dict), .npz, .csv/.tsv/.txt or .parquet (symbol column,
    then the vector columns); refuses duplicated symbols and NaN or infinite values."""
    path = Path(path)
    if not path.is_file():
        raise ScelmoError(f"Table file not found: {path}.")
    suffix = path.suffix.lower()
    if suffix in (".pkl", ".pickle"):
        try:
            try:
                mapping = safe_unpickle(path.read_bytes())
            except ScelmoError as exc:
                raise ScelmoError(f"{path}: {exc}") from exc
            table = _from_mapping(mapping, path)
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
            raise ScelmoError(f"{path} is not a readable pickle ({exc}).") from exc
    elif suffix == ".npz":
        table = load_gene_table(path)
    elif suffix in (".csv", ".tsv", ".txt"):
        table = _from_frame(pd.read_csv(path, sep="\t" if suffix != ".csv" else ","), path)
    elif suffix == ".parquet":
        try:
            frame = pd.read_parquet(path)
            if not isinstance(frame.index, pd.RangeIndex):  # symbols stored as the index: make them the first column
                frame = frame.reset_index()
            table = _from_frame(frame, path)
        except ImportError as exc:
            raise ScelmoError("Reading .parquet needs pyarrow; convert the table to .csv or .npz.") from exc
    else:
        raise ScelmoError(f"{path}: unsupported table type '{suffix}'. Use .pkl/.pickle, .npz, .csv, .tsv or .parquet.")
    if len(set(table.symbols)) != len(table.symbols):
        raise ScelmoError(f"{path}: duplicated gene symbols; each gene must appear once.")
    if not np.isfinite(table.vectors).all():
        raise ScelmoError(f"{path}: the table contains NaN or infinite values.")
    return table


def tables_dir() -> Path:
    """The folder of stored gene tables: ``tables/`` in the user data folder."""
    return user_data_dir() / "tables"


def import_table(path: str | Path, name: str | None = None) -> tuple[str, GeneTable]:
    """Read ``path``, record where it came from, and store it as ``<tables folder>/<name>.npz``."""
    path = Path(path)
    table = read_table_file(path)
    name = name or path.stem
    if not NAME_PATTERN.match(name):
        raise ScelmoError(f"Table name '{name}' may use letters, digits, '.', '_' and '-' only (1–80 characters).")
    table.provenance = {
        **table.provenance,
        "imported_from": str(path),
        "source_sha256": sha256_file(path),
        "imported_at": now_iso(),
        "name": name,
    }
    save_gene_table(table, tables_dir() / f"{name}.npz")
    return name, table


def list_tables() -> list[dict]:
    """One row per stored table, by name: name, gene count, dimension, path, and where it was imported from."""
    rows = []
    for file in sorted(tables_dir().glob("*.npz")):
        table = load_gene_table(file)
        rows.append(
            {
                "name": file.stem,
                "genes": len(table.symbols),
                "dim": table.dim,
                "path": str(file),
                "imported_from": table.provenance.get("imported_from", "generated"),
            }
        )
    return rows


def resolve_table(name_or_path: str | Path) -> GeneTable:
    """A stored table by name, or a table file by path."""
    stored = tables_dir() / f"{name_or_path}.npz"
    if NAME_PATTERN.match(str(name_or_path)) and stored.is_file():
        return load_gene_table(stored)
    if Path(name_or_path).is_file():
        return read_table_file(name_or_path)
    raise ScelmoError(f"Gene table '{name_or_path}' is neither a stored table (see the stored tables) nor a file.")
