"""Builders of Cell Ranger-shaped files (HDF5 v3 and v2, matrix folders v3 and v2, gzipped or plain) from any
counts matrix, and of what real runs add: empty droplets (an unfiltered matrix), antibody and CRISPR features
(CITE-seq), several genomes (barnyard), repeated symbols.

Layouts follow Cell Ranger's documentation: the HDF5 matrix is stored features x barcodes as CSC, which is the
same three arrays as a barcodes x features CSR matrix.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp

GEX, ADT, CRISPR = "Gene Expression", "Antibody Capture", "CRISPR Guide Capture"


@dataclass
class Run:
    """A Cell Ranger-like run: barcodes x features counts and the feature table."""

    counts: sp.csr_matrix  # barcodes x features, integer counts
    barcodes: np.ndarray
    ids: np.ndarray
    names: np.ndarray
    types: np.ndarray
    genomes: np.ndarray

    @property
    def n_genes(self) -> int:
        return int(np.sum(self.types == GEX))


def run_from(counts, barcodes, ids, names, genome: str = "GRCh38") -> Run:
    """A gene-expression-only run."""
    n = len(ids)
    return Run(
        counts=sp.csr_matrix(counts).astype(np.int32),
        barcodes=np.asarray(barcodes, dtype=object),
        ids=np.asarray(ids, dtype=object),
        names=np.asarray(names, dtype=object),
        types=np.full(n, GEX, dtype=object),
        genomes=np.full(n, genome, dtype=object),
    )


def original_symbols(var_names) -> np.ndarray:
    """Undo scanpy's ``var_names_make_unique`` (``U1-1`` back to ``U1`` when ``U1`` is there too), giving the
    symbols as Cell Ranger's features file has them, repeats included."""
    names = [str(v) for v in var_names]
    present = set(names)
    out = []
    for name in names:
        match = re.fullmatch(r"(.+)-(\d+)", name)
        out.append(match.group(1) if match and match.group(1) in present else name)
    return np.array(out, dtype=object)


def repeat_symbols(names: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Copy of ``names`` where ``n`` genes take the symbol of another gene (repeats made on purpose)."""
    rng = np.random.default_rng(seed)
    names = names.copy()
    picks = rng.choice(len(names), size=2 * n, replace=False)
    for target, source in zip(picks[:n], picks[n:]):
        names[target] = names[source]
    return names


def repeated(names) -> set[str]:
    """The symbols carried by more than one feature."""
    values, counts = np.unique(np.asarray(names, dtype=str), return_counts=True)
    return set(values[counts > 1])


def random_barcodes(n: int, length: int, seed: int, exclude=()) -> np.ndarray:
    """``n`` distinct random barcodes ``ACGT…-1`` not in ``exclude``."""
    rng = np.random.default_rng(seed)
    taken, out = set(exclude), []
    while len(out) < n:
        letters = rng.choice(list("ACGT"), size=(n, length))
        for row in letters:
            code = "".join(row) + "-1"
            if code not in taken:
                taken.add(code)
                out.append(code)
                if len(out) == n:
                    break
    return np.array(out, dtype=object)


def add_empty_droplets(
    run: Run, n_empty: int, *, min_umis: int = 1, max_umis: int = 60, seed: int = 0
) -> tuple[Run, np.ndarray]:
    """The run as an unfiltered matrix: ``n_empty`` extra barcodes with ``min_umis..max_umis`` UMIs each, drawn
    from the ambient profile (the pooled expression of the barcodes already there), shuffled among them. Returns
    ``(run, is_old)``: True for the barcodes that were in ``run``."""
    rng = np.random.default_rng(seed)
    gene = np.flatnonzero(run.types == GEX)
    pooled = np.asarray(run.counts[:, gene].sum(axis=0), dtype=np.float64).ravel()
    ambient = pooled / pooled.sum()
    totals = rng.integers(min_umis, max_umis + 1, size=n_empty)
    rows = np.repeat(np.arange(n_empty), totals)
    cols = gene[rng.choice(gene.size, size=int(totals.sum()), p=ambient)]
    empty = sp.csr_matrix((np.ones(rows.size, dtype=np.int32), (rows, cols)), shape=(n_empty, run.counts.shape[1]))
    empty.sum_duplicates()
    counts = sp.vstack([run.counts, empty]).tocsr()
    length = len(str(run.barcodes[0]).split("-")[0])
    barcodes = np.concatenate([run.barcodes, random_barcodes(n_empty, length, seed + 1, exclude=run.barcodes)])
    is_cell = np.r_[np.ones(run.counts.shape[0], bool), np.zeros(n_empty, bool)]
    order = rng.permutation(counts.shape[0])
    unfiltered = Run(counts[order], barcodes[order], run.ids, run.names, run.types, run.genomes)
    return unfiltered, is_cell[order]


def add_features(run: Run, kind: str, names: list[str], *, seed: int = 0) -> Run:
    """The run with extra features of type ``kind`` (Antibody Capture, CRISPR Guide Capture, Custom): Poisson
    counts whose mean scales with each barcode's total (antibodies are captured with the cell)."""
    rng = np.random.default_rng(seed)
    totals = np.asarray(run.counts.sum(axis=1), dtype=np.float64).ravel()
    means = totals[:, None] / max(np.median(totals), 1.0) * rng.uniform(5, 200, size=len(names))[None, :]
    extra = sp.csr_matrix(rng.poisson(means).astype(np.int32))
    ids = [f"{kind.split()[0][:3].upper()}_{name}" for name in names]
    return Run(
        counts=sp.hstack([run.counts, extra]).tocsr(),
        barcodes=run.barcodes,
        ids=np.r_[run.ids, np.array(ids, dtype=object)],
        names=np.r_[run.names, np.array(names, dtype=object)],
        types=np.r_[run.types, np.full(len(names), kind, dtype=object)],
        genomes=np.r_[run.genomes, np.full(len(names), "", dtype=object)],
    )


def barnyard(human: Run, mouse: Run) -> Run:
    """Two runs over the same barcodes as one barnyard run, ids and names prefixed with the genome."""

    def prefixed(run: Run, values):
        return np.array([f"{g}_{v}" for g, v in zip(run.genomes, values)], dtype=object)

    return Run(
        counts=sp.hstack([human.counts, mouse.counts]).tocsr(),
        barcodes=human.barcodes,
        ids=np.r_[prefixed(human, human.ids), prefixed(mouse, mouse.ids)],
        names=np.r_[prefixed(human, human.names), prefixed(mouse, mouse.names)],
        types=np.r_[human.types, mouse.types],
        genomes=np.r_[human.genomes, mouse.genomes],
    )


def _bytes(values) -> np.ndarray:
    return np.array([str(v).encode() for v in values], dtype="S")


def write_h5_v3(run: Run, path: Path) -> Path:
    """Cell Ranger 3+ ``filtered_feature_bc_matrix.h5``."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    counts = sp.csr_matrix(run.counts)
    with h5py.File(path, "w") as handle:
        group = handle.create_group("matrix")
        group.create_dataset("barcodes", data=_bytes(run.barcodes))
        group.create_dataset("data", data=counts.data.astype(np.int32), compression="gzip")
        group.create_dataset("indices", data=counts.indices.astype(np.int64), compression="gzip")
        group.create_dataset("indptr", data=counts.indptr.astype(np.int64))
        group.create_dataset("shape", data=np.array([counts.shape[1], counts.shape[0]], dtype=np.int32))
        features = group.create_group("features")
        features.create_dataset("_all_tag_keys", data=np.array([b"genome"]))
        features.create_dataset("id", data=_bytes(run.ids))
        features.create_dataset("name", data=_bytes(run.names))
        features.create_dataset("feature_type", data=_bytes(run.types))
        features.create_dataset("genome", data=_bytes(run.genomes))
    return path


def write_h5_v2(runs: dict[str, Run], path: Path) -> Path:
    """Cell Ranger 2 ``filtered_gene_bc_matrices_h5.h5``: one group per genome."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        for genome, run in runs.items():
            counts = sp.csr_matrix(run.counts)
            group = handle.create_group(genome)
            group.create_dataset("barcodes", data=_bytes(run.barcodes))
            group.create_dataset("data", data=counts.data.astype(np.int32), compression="gzip")
            group.create_dataset("indices", data=counts.indices.astype(np.int64), compression="gzip")
            group.create_dataset("indptr", data=counts.indptr.astype(np.int64))
            group.create_dataset("shape", data=np.array([counts.shape[1], counts.shape[0]], dtype=np.int32))
            group.create_dataset("genes", data=_bytes(run.ids))
            group.create_dataset("gene_names", data=_bytes(run.names))
    return path


def _write_text(path: Path, text: str, gz: bool) -> None:
    if gz:
        with gzip.open(f"{path}.gz", "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)


def write_mtx(run: Run, folder: Path, *, version: int = 3, gz: bool = True) -> Path:
    """A matrix folder: v3 (``features.tsv``: id, name, type) or v2 (``genes.tsv``: id, name), gzipped or not."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = sp.coo_matrix(run.counts.T)  # Cell Ranger writes features x barcodes
    target = folder / "matrix.mtx"
    if gz:
        with gzip.open(f"{target}.gz", "wb") as handle:
            scipy.io.mmwrite(handle, counts, field="integer")
    else:
        scipy.io.mmwrite(target, counts, field="integer")
    if version == 3:
        rows = (f"{i}\t{n}\t{t}" for i, n, t in zip(run.ids, run.names, run.types))
        _write_text(folder / "features.tsv", "\n".join(rows) + "\n", gz)
    else:
        _write_text(folder / "genes.tsv", "\n".join(f"{i}\t{n}" for i, n in zip(run.ids, run.names)) + "\n", gz)
    _write_text(folder / "barcodes.tsv", "\n".join(map(str, run.barcodes)) + "\n", gz)
    return folder


def synthetic_run(n_cells: int = 300, n_genes: int = 200, *, seed: int = 0, genome: str = "GRCh38") -> Run:
    """A small run of Poisson counts with Ensembl-like ids and symbols ``G0…``; cells carry 500-3000 UMIs."""
    rng = np.random.default_rng(seed)
    profile = rng.dirichlet(np.full(n_genes, 0.5))
    totals = rng.integers(500, 3000, size=n_cells)
    counts = np.vstack([rng.multinomial(t, profile) for t in totals])
    ids = [f"ENSG{seed:03d}{i:08d}" for i in range(n_genes)]
    names = [f"G{i}" for i in range(n_genes)]
    return run_from(counts, random_barcodes(n_cells, 16, seed), ids, names, genome)


def kang_as_two_runs(kang_path: Path, pbmc_var, folder: Path) -> tuple[list[Path], dict[str, str]]:
    """The Kang 2018 cells of ``kang_path`` as the sequencing core would deliver them: one Cell Ranger v3 .h5 per
    condition (``ctrl``, ``stim``), with Ensembl ids from PBMC 3k's ``pbmc_var`` (its ``gene_ids``). Returns the
    paths and each cell's type by the name the intake gives it (``<barcode>-<sample>``): labels only a test knows."""
    import anndata as ad

    kang = ad.read_h5ad(kang_path)
    to_id = dict(zip(pbmc_var.index, pbmc_var["gene_ids"]))
    ids = np.array([to_id.get(g, f"ENSGKANG{i:07d}") for i, g in enumerate(kang.var_names)], dtype=object)
    paths, cell_type = [], {}
    for condition, sample in (("control", "ctrl"), ("stimulated", "stim")):
        cells = kang[kang.obs["condition"] == condition]
        barcodes = [b.split(".")[0] + "-1" for b in cells.obs_names]  # both runs use the same barcode space
        cell_type |= {f"{b}-{sample}": t for b, t in zip(barcodes, cells.obs["cell_type"].astype(str))}
        run = run_from(sp.csr_matrix(cells.X), barcodes, ids, np.asarray(kang.var_names, dtype=object))
        paths.append(write_h5_v3(run, Path(folder) / sample / "outs" / "filtered_feature_bc_matrix.h5"))
    return paths, cell_type
