"""Read Cell Ranger output as it comes: HDF5 v3 and v2, matrix folders v3 and v2, gzipped or not.

Formats (the names recorded per sample):

- ``cellranger-h5-v3``: ``matrix/{barcodes,data,indices,indptr,shape}`` with ``matrix/features/{id,name,
  feature_type,genome}`` (Cell Ranger 3 and later, ``filtered_feature_bc_matrix.h5``);
- ``cellranger-h5-v2``: one group per genome holding ``barcodes, data, indices, indptr, shape, genes,
  gene_names`` (Cell Ranger 2, ``filtered_gene_bc_matrices_h5.h5``);
- ``cellranger-mtx-v3``: a folder with ``matrix.mtx``, ``features.tsv`` (id, name, type[, more]) and
  ``barcodes.tsv``, each optionally ``.gz``;
- ``cellranger-mtx-v2``: a folder with ``matrix.mtx``, ``genes.tsv`` (id, name) and ``barcodes.tsv``; Cell
  Ranger 2 nests it one level down, under the genome (``filtered_gene_bc_matrices/hg19/``), and either folder
  may be given.

What the AnnData holds (``X``: barcodes x genes, float32 CSR raw counts, as scanpy's readers give):

- ``var['gene_ids']``: the feature id of the file (the Ensembl id): the identity of a gene, used to match
  samples; ``var['gene_symbols']``: the symbol as written in the file; ``var['feature_types']`` and
  ``var['genome']``.
- ``var_names`` (display names) follow one rule, :func:`display_names`: the symbol; where a symbol repeats
  (references carry several Ensembl genes under one symbol), its first occurrence in file order keeps the bare
  symbol, as scanpy's and Seurat's readers do, and each later one becomes ``symbol-<Ensembl id>`` (a name that
  says which gene it is, stable across files of the same reference). An empty symbol is replaced by the id.
  Repeated symbols never stop a run; they are counted and reported.
- Only ``Gene Expression`` features are the genes. ``Antibody Capture`` counts go to
  ``obsm['protein_expression']`` (a DataFrame, one column per antibody, named by the same rule); every other
  type (CRISPR Guide Capture, Custom, Peaks, ...) is set aside. What was set aside is counted per type. A file
  with no Gene Expression features is refused.
- Genomes: a barnyard run holds genes of several genomes; one must be chosen (``genome=``), else the error lists
  them. Barnyard references prefix ids and symbols with the genome (``GRCh38_``); once one genome is chosen the
  prefix is removed, so ids and symbols are the plain ones. Matrix folders have no genome column: there the
  genome is read from that prefix.

Every problem a user can fix is a :class:`ScelmoError` naming the file and what to do.
"""

from __future__ import annotations

import csv
import gzip
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scelmo_desktop.core._infra.errors import ScelmoError

H5_V3, H5_V2, MTX_V3, MTX_V2 = "cellranger-h5-v3", "cellranger-h5-v2", "cellranger-mtx-v3", "cellranger-mtx-v2"
FORMATS = (H5_V3, H5_V2, MTX_V3, MTX_V2)
GENE_EXPRESSION, ANTIBODY_CAPTURE = "Gene Expression", "Antibody Capture"
PROTEIN_KEY = "protein_expression"
MAX_DIMENSION = 2**31 - 1  # beyond this a declared size is corrupt (and would overflow 32-bit sparse indices)
_V2_DATASETS = ("barcodes", "data", "indices", "indptr", "shape", "genes")
_GENOME_PREFIX = re.compile(r"^(?P<genome>[A-Za-z0-9.\-]+?)_+(?P<rest>\S+)$")


@dataclass
class CellRangerRead:
    """One Cell Ranger output read: the AnnData (genes of one genome, display names unique) and what was done to
    get there, for the intake record."""

    adata: object
    path: Path
    format: str
    genome: str | None
    barcodes: int
    set_aside: dict[str, int] = field(default_factory=dict)  # feature type -> number of features not used as genes
    repeated_symbols: list[str] = field(default_factory=list)  # symbols carried by more than one gene
    renamed: int = 0  # genes whose display name is ``symbol-<id>``
    proteins: int = 0  # antibodies kept in obsm['protein_expression']

    def record(self) -> dict:
        """The facts of this read, for the intake record (h5ad-safe values)."""
        return {
            "file": str(self.path),
            "format": self.format,
            "genome": self.genome or "none",
            "barcodes": int(self.barcodes),
            "genes": int(self.adata.n_vars),
            "features_set_aside": {k: int(v) for k, v in self.set_aside.items()},
            "proteins": int(self.proteins),
            "repeated_symbols": len(self.repeated_symbols),
            "repeated_symbol_examples": list(self.repeated_symbols[:10]),
            "renamed_genes": int(self.renamed),
        }


def display_names(symbols, ids) -> tuple[list[str], list[str]]:
    """Unique display names for genes: the symbol; a symbol that repeats keeps its first occurrence bare and
    each later one becomes ``symbol-<id>``; an empty symbol becomes the id. Returns ``(names, repeated)``,
    ``repeated`` being the symbols carried by more than one gene (sorted)."""
    symbols = [str(s).strip() or str(i) for s, i in zip(symbols, ids)]
    counts = Counter(symbols)
    seen: set[str] = set()
    names = []
    for symbol, gene_id in zip(symbols, ids):
        names.append(f"{symbol}-{gene_id}" if symbol in seen else symbol)
        seen.add(symbol)
    if len(set(names)) < len(names):  # a symbol equal to another's "symbol-id": fall back to numbered suffixes
        import anndata as ad

        names = list(ad.utils.make_index_unique(pd.Index(names)))
    return names, sorted(s for s, n in counts.items() if n > 1)


def hdf5_layout(path: str | os.PathLike) -> str:
    """What an HDF5 file holds: :data:`H5_V3`, :data:`H5_V2` or ``"anndata"``; anything else is refused."""
    import h5py

    path = Path(path)
    with open(path, "rb") as handle:
        if handle.read(8) != b"\x89HDF\r\n\x1a\n":
            raise ScelmoError(
                f"{path} is not an HDF5 file (it does not start with the HDF5 signature); give Cell Ranger's .h5 "
                "file as it was written, or check that the download completed."
            )
    try:
        with h5py.File(path, "r") as handle:
            keys = set(handle.keys())
            if isinstance(handle.get("matrix"), h5py.Group) and "features" in handle["matrix"]:
                return H5_V3
            if "X" in keys or handle.attrs.get("encoding-type") == "anndata":
                return "anndata"
            if _v2_genomes(handle):
                return H5_V2
            incomplete = _incomplete_v2_genome(handle)
    except OSError as exc:
        raise ScelmoError(f"Could not read {path}: {exc}. The file may be truncated or corrupt.") from exc
    if incomplete:
        genome, missing = incomplete
        raise ScelmoError(
            f"{path}: a Cell Ranger v2 file without {genome}/{missing}; the file is incomplete. "
            "Copy it again from the Cell Ranger outs folder."
        )
    raise ScelmoError(
        f"{path} is an HDF5 file but neither a Cell Ranger matrix (no 'matrix' group with 'features', no genome "
        f"group with 'genes') nor an AnnData file (no 'X'); it holds: {', '.join(sorted(keys)) or 'nothing'}. "
        "Give Cell Ranger's filtered_feature_bc_matrix.h5 or an .h5ad file."
    )


def is_matrix_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding a matrix.mtx(.gz), directly or in one genome subfolder (Cell Ranger 2)."""
    path = Path(path)
    return path.is_dir() and (mtx_file(path) is not None or bool(_genome_subfolders(path)))


def read_cellranger(path: str | os.PathLike, *, genome: str | None = None) -> CellRangerRead:
    """Read a Cell Ranger HDF5 file (v3 or v2) or matrix folder (v3 or v2) as described in the module docstring.

    ``genome`` picks one genome of a barnyard run; without it, a file of several genomes is refused with their
    names."""
    path = Path(path)
    if not path.exists():
        raise ScelmoError(f"Data file not found: {path}. Check the path.")
    if path.is_dir():
        return _read_folder(path, genome)
    layout = hdf5_layout(path)
    if layout == "anndata":
        raise ScelmoError(f"{path} is an AnnData file, not a Cell Ranger matrix; open it as .h5ad.")
    return _read_h5_v3(path, genome) if layout == H5_V3 else _read_h5_v2(path, genome)


# ---------------------------------------------------------------------------------------------------- HDF5


def _strings(dataset) -> np.ndarray:
    values = dataset[()]
    if values.dtype.kind == "S":
        try:
            return values.astype(str).astype(object)  # ASCII, as Cell Ranger writes: the fast path
        except UnicodeDecodeError:
            return np.char.decode(values, "utf-8").astype(object)
    if values.dtype.kind == "O":
        return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=object)
    return values.astype(str).astype(object)


def _v2_genomes(handle) -> list[str]:
    import h5py

    return sorted(
        name
        for name, group in handle.items()
        if isinstance(group, h5py.Group) and all(key in group for key in _V2_DATASETS)
    )


def _incomplete_v2_genome(handle) -> tuple[str, str] | None:
    """(genome, first missing dataset) of a group that holds some of a v2 genome's datasets but not all: a v2 file
    cut short, which deserves its own message rather than "not a Cell Ranger file"."""
    import h5py

    for name, group in sorted(handle.items()):
        if isinstance(group, h5py.Group):
            present = [key for key in _V2_DATASETS if key in group]
            if len(present) >= 2:
                return name, next(key for key in _V2_DATASETS if key not in group)
    return None


def _csc_to_csr(path: Path, group, n_features: int, n_barcodes: int) -> sp.csr_matrix:
    """Cell Ranger stores features x barcodes as CSC: the same arrays read as CSR are barcodes x features."""
    try:
        data, indices, indptr = group["data"][()], group["indices"][()], group["indptr"][()]
    except (KeyError, OSError) as exc:
        raise ScelmoError(f"Could not read the matrix of {path}: {exc}. The file may be truncated or corrupt.") from exc
    if (
        len(indptr) != n_barcodes + 1
        or len(data) != len(indices)
        or (len(indptr) and int(indptr[-1]) != len(data))
        or (len(indices) and int(indices.max()) >= n_features)
    ):
        raise ScelmoError(
            f"{path}: the matrix arrays disagree with its shape ({n_features} features x {n_barcodes} barcodes); "
            "the file is truncated or corrupt. Copy it again from the Cell Ranger outs folder."
        )
    return sp.csr_matrix((data.astype(np.float32), indices, indptr), shape=(n_barcodes, n_features))


def _shape(path: Path, group) -> tuple[int, int]:
    shape = tuple(int(v) for v in group["shape"][()])
    if len(shape) != 2 or any(v < 0 or v > MAX_DIMENSION for v in shape):
        raise ScelmoError(f"{path} declares a matrix of shape {shape}, which no real matrix has; the file is corrupt.")
    return shape


# what every v3 file holds (feature_type and genome may be absent in old or hand-made files)
V3_MEMBERS = tuple(
    f"matrix/{m}" if m else "matrix"
    for m in ("", "shape", "barcodes", "data", "indices", "indptr", "features", "features/id", "features/name")
)


def _first_missing(path: Path, members: tuple[str, ...]) -> str | None:
    """The first of ``members`` (paths inside the HDF5 file) that ``path`` lacks, or None."""
    import h5py

    with h5py.File(path, "r") as handle:
        return next((member for member in members if member not in handle), None)


def _read_h5_v3(path: Path, genome: str | None) -> CellRangerRead:
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            group = handle["matrix"]
            features = group["features"]
            n_features, n_barcodes = _shape(path, group)
            barcodes = _strings(group["barcodes"])
            ids, names = _strings(features["id"]), _strings(features["name"])
            n = len(ids)
            types = _strings(features["feature_type"]) if "feature_type" in features else _filled(GENE_EXPRESSION, n)
            genomes = _strings(features["genome"]) if "genome" in features else _filled("", n)
            if len(barcodes) != n_barcodes or not (len(names) == len(types) == len(genomes) == n == n_features):
                raise ScelmoError(
                    f"{path}: the matrix is {n_features} features x {n_barcodes} barcodes but the file lists {n} "
                    f"features and {len(barcodes)} barcodes; it is truncated or corrupt. Copy it again."
                )
            matrix = _csc_to_csr(path, group, n_features, n_barcodes)
    except KeyError as exc:
        missing = _first_missing(path, V3_MEMBERS) or str(exc)
        raise ScelmoError(
            f"{path}: a Cell Ranger v3 file without {missing}; the file is incomplete. Copy it again."
        ) from exc
    except OSError as exc:
        raise ScelmoError(f"Could not read {path}: {exc}. The file may be truncated or corrupt.") from exc
    return _assemble(path, H5_V3, barcodes, matrix, ids, names, types, genomes, genome)


def _read_h5_v2(path: Path, genome: str | None) -> CellRangerRead:
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            chosen = _choose_genome(path, _v2_genomes(handle), genome)
            group = handle[chosen]
            n_features, n_barcodes = _shape(path, group)
            barcodes = _strings(group["barcodes"])
            ids = _strings(group["genes"])
            names = _strings(group["gene_names"]) if "gene_names" in group else ids.copy()
            if len(barcodes) != n_barcodes or not (len(ids) == len(names) == n_features):
                raise ScelmoError(
                    f"{path}: genome '{chosen}' is {n_features} genes x {n_barcodes} barcodes but lists {len(ids)} "
                    f"genes and {len(barcodes)} barcodes; the file is truncated or corrupt. Copy it again."
                )
            matrix = _csc_to_csr(path, group, n_features, n_barcodes)
    except OSError as exc:
        raise ScelmoError(f"Could not read {path}: {exc}. The file may be truncated or corrupt.") from exc
    n = len(ids)
    return _assemble(path, H5_V2, barcodes, matrix, ids, names, _filled(GENE_EXPRESSION, n), _filled(chosen, n), chosen)


def _filled(value: str, n: int) -> np.ndarray:
    return np.full(n, value, dtype=object)


# ---------------------------------------------------------------------------------------------------- folders


def _first(folder: Path, *names: str) -> Path | None:
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def mtx_file(folder: Path) -> Path | None:
    """The folder's matrix.mtx (or .mtx.gz), or None."""
    return _first(folder, "matrix.mtx")


def _genome_subfolders(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {child.name: child for child in sorted(folder.iterdir()) if child.is_dir() and mtx_file(child)}


def _open_text(path: Path):
    return gzip.open(path, "rt") if path.suffix == ".gz" else open(path)


def mtx_header(path: Path) -> tuple[int, int, int]:
    """(rows, columns, entries) of a Matrix Market file's header, without reading its entries; a header no real
    matrix has is refused."""
    try:
        with _open_text(path) as handle:
            line = handle.readline()
            while line.startswith("%"):
                line = handle.readline()
            rows, cols, entries = (int(v) for v in line.split()[:3])
    except (OSError, ValueError, EOFError) as exc:
        raise ScelmoError(
            f"{path} has no readable 'rows columns entries' header; the file is corrupt ({exc})."
        ) from exc
    if max(rows, cols, entries) > MAX_DIMENSION or rows <= 0 or cols <= 0 or entries < 0:
        raise ScelmoError(
            f"{path} declares {rows} x {cols} with {entries} entries, which no real matrix has; the file is "
            "corrupt. Re-export it."
        )
    return rows, cols, entries


def _table(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(
            path, sep="\t", header=None, dtype=str, quoting=csv.QUOTE_NONE, keep_default_na=False, comment=None
        )
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (OSError, ValueError, EOFError) as exc:
        raise ScelmoError(f"Could not read {path}: {exc}. The file may be truncated or corrupt.") from exc


def _read_folder(folder: Path, genome: str | None) -> CellRangerRead:
    if mtx_file(folder) is None:
        subfolders = _genome_subfolders(folder)
        if not subfolders:
            raise ScelmoError(
                f"{folder} is a folder without matrix.mtx(.gz); give a 10x matrix folder (matrix.mtx, features.tsv "
                "or genes.tsv, barcodes.tsv) or a file."
            )
        folder = subfolders[_choose_genome(folder, list(subfolders), genome)]
    mtx = mtx_file(folder)
    features_file = _first(folder, "features.tsv", "genes.tsv")
    barcodes_file = _first(folder, "barcodes.tsv")
    wanted = {"features.tsv or genes.tsv": features_file, "barcodes.tsv": barcodes_file}
    missing = [name for name, file in wanted.items() if file is None]
    if missing:
        raise ScelmoError(
            f"{folder} has {mtx.name} but no {' and no '.join(missing)}; copy the three files of the run together."
        )
    rows, cols, _ = mtx_header(mtx)
    features, barcodes = _table(features_file), _table(barcodes_file)
    if len(features) != rows or len(barcodes) != cols:
        raise ScelmoError(
            f"{folder}: {mtx.name} is {rows} features x {cols} barcodes but {features_file.name} lists "
            f"{len(features)} features and {barcodes_file.name} {len(barcodes)} barcodes; the files come from "
            "different runs or one is truncated. Copy the three files of one run together."
        )
    if features.shape[1] < 1 or barcodes.shape[1] < 1:
        raise ScelmoError(f"{folder}: {features_file.name} or {barcodes_file.name} is empty; copy it again.")
    fmt = MTX_V3 if features_file.name.startswith("features") else MTX_V2
    ids = features[0].to_numpy(dtype=object)
    names = features[1].to_numpy(dtype=object) if features.shape[1] > 1 else ids.copy()
    types = features[2].to_numpy(dtype=object) if features.shape[1] > 2 else _filled(GENE_EXPRESSION, len(ids))
    matrix = _read_mtx(mtx, rows, cols)
    if fmt == MTX_V2 and folder.parent.name.endswith("gene_bc_matrices"):  # Cell Ranger 2 names it by genome
        genomes = _filled(folder.name, len(ids))
    else:
        genomes = _genomes_from_prefix(ids, types)
    return _assemble(folder, fmt, barcodes[0].to_numpy(dtype=object), matrix, ids, names, types, genomes, genome)


def _read_mtx(path: Path, rows: int, cols: int) -> sp.csr_matrix:
    import scipy.io

    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as handle:
            matrix = scipy.io.mmread(handle)
    except Exception as exc:  # any parser error becomes one clear line
        raise ScelmoError(
            f"Could not read {path}: {type(exc).__name__}: {exc}. The file may be truncated or corrupt."
        ) from exc
    if matrix.shape != (rows, cols):
        raise ScelmoError(f"{path}: the entries do not fit its header ({rows} x {cols}); the file is corrupt.")
    return sp.csr_matrix(matrix.T, dtype=np.float32)


def _genomes_from_prefix(ids: np.ndarray, types: np.ndarray) -> np.ndarray:
    """A barnyard folder's genome per feature, from its id prefix (``GRCh38_ENSG…``); empty when the gene ids do not
    all carry one of at least two prefixes (a single-genome reference)."""
    genomes = _filled("", len(ids))
    gene = np.flatnonzero(types == GENE_EXPRESSION)
    matches = [_GENOME_PREFIX.match(str(ids[i])) for i in gene]
    if gene.size and all(matches) and len({m["genome"] for m in matches}) > 1:
        genomes[gene] = [m["genome"] for m in matches]
    return genomes


# ---------------------------------------------------------------------------------------------------- assembly


def _choose_genome(path: Path, genomes: list[str], genome: str | None) -> str:
    if genome is not None:
        if genome not in genomes:
            raise ScelmoError(
                f"{path} has no genome '{genome}'; it holds: {', '.join(genomes)}. Set the genome to one of them."
            )
        return genome
    if len(genomes) > 1:
        raise ScelmoError(
            f"{path} holds genes of several genomes ({', '.join(genomes)}), as a barnyard run does; choose one with "
            "the genome setting."
        )
    return genomes[0]


def _strip_prefix(values: np.ndarray, genome: str) -> np.ndarray:
    pattern = re.compile(rf"^{re.escape(genome)}_+")
    stripped = np.array([pattern.sub("", str(v)) for v in values], dtype=object)
    return stripped if all(stripped) else values


def _assemble(path, fmt, barcodes, matrix, ids, names, types, genomes, genome) -> CellRangerRead:
    import anndata as ad

    types = np.asarray(types, dtype=object)
    gene = types == GENE_EXPRESSION
    set_aside = {str(k): int(v) for k, v in Counter(types[~gene]).items()}
    if not gene.any():
        found = ", ".join(f"{k}: {v}" for k, v in set_aside.items()) or "no features"
        raise ScelmoError(
            f"{path} holds no Gene Expression features (only {found}); scELMo needs gene expression. Give the "
            "matrix of this run's Gene Expression library (it holds the antibody counts too when there are any)."
        )
    known = sorted({str(g) for g in np.asarray(genomes, dtype=object)[gene] if str(g)})
    if known:
        genome = _choose_genome(path, known, genome)
        gene &= np.asarray(genomes, dtype=object) == genome
        if len(known) > 1:
            others = int((types == GENE_EXPRESSION).sum() - gene.sum())
            set_aside[f"Gene Expression of {', '.join(g for g in known if g != genome)}"] = others
    else:
        genome = None
    columns = np.flatnonzero(gene)
    gene_ids, symbols = np.asarray(ids, dtype=object)[columns], np.asarray(names, dtype=object)[columns]
    if len(known) > 1:
        gene_ids, symbols = _strip_prefix(gene_ids, genome), _strip_prefix(symbols, genome)
    var_names, repeated = display_names(symbols, gene_ids)
    barcodes = pd.Index([str(b) for b in barcodes])
    if barcodes.has_duplicates:  # never in Cell Ranger output; keep every barcode distinct anyway
        barcodes = ad.utils.make_index_unique(barcodes)
    var = pd.DataFrame(
        {
            "gene_ids": gene_ids.astype(str),
            "gene_symbols": symbols.astype(str),
            "feature_types": GENE_EXPRESSION,
            "genome": genome or "",
        },
        index=pd.Index(var_names),
    )
    X = matrix if columns.size == matrix.shape[1] else matrix[:, columns].tocsr()
    adata = ad.AnnData(X=X, obs=pd.DataFrame(index=barcodes), var=var)
    antibodies = np.flatnonzero(types == ANTIBODY_CAPTURE)
    if antibodies.size:
        labels, _ = display_names(
            np.asarray(names, dtype=object)[antibodies], np.asarray(ids, dtype=object)[antibodies]
        )
        values = matrix[:, antibodies].toarray().astype(np.int64)
        adata.obsm[PROTEIN_KEY] = pd.DataFrame(values, index=adata.obs_names, columns=labels)
    renamed = sum(1 for name, symbol in zip(var_names, var["gene_symbols"]) if name != (symbol.strip() or name))
    return CellRangerRead(
        adata=adata,
        path=Path(path),
        format=fmt,
        genome=genome,
        barcodes=int(matrix.shape[0]),
        set_aside=set_aside,
        repeated_symbols=repeated,
        renamed=renamed,
        proteins=int(antibodies.size),
    )
