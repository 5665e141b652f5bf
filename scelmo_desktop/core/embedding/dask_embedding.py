"""Cell embeddings for matrices that outgrow memory: a Dask array, chunked by cells, on a dask.distributed cluster.

Both scELMo embeddings are per-cell (``wa`` divides each cell by its own total, ``aa`` by the gene count), so
each block of cells is embedded on its own by
:func:`~scelmo_desktop.core.embedding.cell_embedding.average_gene_vectors`, the very function of the in-memory path: the numbers are the same, only where they are computed changes.

* The matrix comes lazily from an ``.h5ad``/``.zarr`` file (``anndata.experimental.read_elem_lazy``), or as any
  Dask array the caller built. Blocks are read by the workers, never by this process.
* The gene table is sent to each worker once; at most ``2 x workers`` blocks are in flight, so memory is bounded
  by the chunk size, whatever the number of cells.
* The cluster is a ``LocalCluster`` on loopback (no dashboard) by default, or the scheduler address the user
  gives (loopback or private networks only, see :mod:`scelmo_desktop.core._infra.network`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, check_cancel, no_progress
from scelmo_desktop.core._infra.network import check_address
from scelmo_desktop.core.embedding.cell_embedding import MODES, average_gene_vectors

DEFAULT_CHUNK_CELLS = 20_000


def _open_group(path: Path):
    if path.suffix == ".zarr" or path.is_dir():
        import zarr

        return zarr.open_group(str(path), mode="r")
    import h5py

    return h5py.File(path, "r")


def open_lazy(path: str | Path, layer: str = "X", *, chunk_cells: int = DEFAULT_CHUNK_CELLS):
    """``(matrix, obs, var)`` of an .h5ad or .zarr file: ``X``, ``raw`` (``raw/X``) or ``layers/<name>`` as a Dask
    array of ``chunk_cells``-row blocks (sparse stays sparse), with the obs and var tables. No block is read
    here; only the metadata is."""
    from anndata.experimental import read_elem_lazy
    from anndata.io import read_elem

    path = Path(path)
    if not path.exists():
        raise ScelmoError(f"Data file not found: {path}.")
    try:
        group = _open_group(path)
    except (OSError, ValueError) as exc:
        raise ScelmoError(
            f"{path.name} is not a readable .h5ad (HDF5) file or .zarr store ({exc}). Re-export it "
            "with anndata's write_h5ad or write_zarr."
        ) from exc
    element = {"X": "X", "raw": "raw/X"}.get(layer, f"layers/{layer}")
    if element not in group:
        raise ScelmoError(f"{path.name}: no matrix '{element}' (layer '{layer}'); give X, raw or a layer name.")
    node = group[element]
    shape = node.attrs["shape"] if "shape" in node.attrs else node.shape  # sparse groups keep it in attrs
    matrix = read_elem_lazy(node, chunks=(chunk_cells, int(shape[1])))
    var = read_elem(group["raw/var" if layer == "raw" else "var"])
    return matrix, read_elem(group["obs"]), var


@contextlib.contextmanager
def dask_client(
    scheduler: str | None = None,
    *,
    n_workers: int = 1,
    threads_per_worker: int = 1,
    memory_limit: str = "auto",
    allow_remote: bool = False,
):
    """A client to ``scheduler`` (checked: loopback/private only), or to a new loopback LocalCluster."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ScelmoError(
            "Dask's distributed package is not installed in this build; install 'distributed' "
            "(it is in requirements.lock) to embed out of memory."
        ) from exc

    if scheduler:
        check_address(
            scheduler,
            allow_remote=allow_remote,
            schemes=("tcp", "tls"),
            example="tcp://10.0.0.5:8786",
            what="Dask scheduler",
        )
        with Client(scheduler, timeout="30s") as client:
            yield client
        return
    import logging
    import warnings

    with warnings.catch_warnings():
        # the scheduler's HTTP API binds 8787 even without a dashboard and moves to a free port when another
        # program holds it, warning that it did: nothing for a user to act on
        warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            memory_limit=memory_limit,
            # workers log a heartbeat that races the cluster's own shutdown as an ERROR with a traceback; every
            # problem of ours comes back as a message or an exception (_embed_block), never through the log
            silence_logs=logging.CRITICAL,
        )
    with cluster, Client(cluster) as client:
        yield client


def _embed_block(block, E: np.ndarray, modes: tuple[str, ...]) -> list[np.ndarray] | str:
    """Runs on a worker: read one block of cells (the worker reads it itself, nothing passes through the client)
    and embed it in every mode, so each block is read once. A problem with the data comes back as a message (a
    raised error would also be logged by the worker with a traceback)."""
    import warnings

    from scelmo_desktop.core.embedding.cell_embedding import ZeroExpressionWarning

    matrix = block.compute(scheduler="synchronous") if hasattr(block, "compute") else block
    if "wa" in modes and matrix.shape[0] and matrix.min() < 0:
        return (
            f"The matrix has negative values (minimum {float(matrix.min()):.3g}), so it looks scaled. The "
            "weighted average needs counts or log-normalised values: choose the raw matrix or a counts layer as the input matrix (layer setting)."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ZeroExpressionWarning)  # zero-total cells stay zero vectors, as in memory
        return [average_gene_vectors(matrix, E, mode=mode) for mode in modes]


def average_gene_vectors_dask(
    X,
    E: np.ndarray,
    *,
    client,
    modes: tuple[str, ...] = MODES,
    chunk_cells: int | None = None,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> dict[str, np.ndarray]:
    """``{mode: (n_cells, d) embedding}`` of the Dask array ``X`` (cells x genes), block by block on ``client``.

    Equal to ``average_gene_vectors(X.compute(), E, mode=mode)`` for each mode. ``chunk_cells`` re-chunks ``X`` by
    cells first (genes are always one chunk: a cell's total needs all its genes). On cancel, blocks not yet started
    are dropped and nothing is returned.
    """
    from distributed import as_completed

    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"modes must be among {MODES}, not {unknown}")
    E = np.asarray(E, dtype=np.float32)
    if E.shape[0] != X.shape[1]:
        raise ScelmoError(f"The gene table has {E.shape[0]} rows but the matrix has {X.shape[1]} genes.")
    X = X.rechunk({0: chunk_cells or X.chunks[0][0], 1: -1})
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])])
    pending = list(enumerate(X.to_delayed().ravel()))[::-1]
    table = client.scatter(E, broadcast=True)
    out = {mode: np.empty((X.shape[0], E.shape[1]), dtype=np.float32) for mode in modes}
    in_flight = max(2, 2 * len(client.scheduler_info().get("workers", {})))
    block_of = {}

    def submit():
        index, block = pending.pop()
        future = client.submit(_embed_block, block, table, tuple(modes), pure=False)
        block_of[future.key] = index
        return future

    running = as_completed([submit() for _ in range(min(in_flight, len(pending)))])
    done_cells = 0
    try:
        for future in running:
            check_cancel(cancel)
            index = block_of.pop(future.key)
            result = future.result()
            if isinstance(result, str):
                raise ScelmoError(result)
            for mode, vectors in zip(modes, result):
                out[mode][starts[index] : starts[index + 1]] = vectors
            done_cells += int(starts[index + 1] - starts[index])
            progress(done_cells, X.shape[0], "/".join(modes) + " embedding (Dask)")
            if pending:
                running.add(submit())
    finally:  # on cancel or error: blocks still queued on the cluster are dropped
        with running.lock:
            leftover = list(running.futures)
        client.cancel(leftover)
    return out


def embed_file_dask(
    path: str | Path,
    table,
    *,
    client,
    layer: str = "X",
    symbol_column: str | None = None,
    chunk_cells: int = DEFAULT_CHUNK_CELLS,
    progress=None,
    cancel: CancelFlag | None = None,
):
    """An AnnData with the file's obs and var (no matrix) and ``obsm`` ``X_scelmo_wa``/``X_scelmo_aa`` computed
    on ``client``; the expression matrix never enters this process. Also returns the gene coverage report."""
    import functools

    import anndata as ad

    from scelmo_desktop.core.data.io import Expression
    from scelmo_desktop.core.embedding.alignment import gene_alignment
    from scelmo_desktop.core.keys import AA_KEY, GENE_EMBEDDING_KEY, WA_KEY

    matrix, obs, var = open_lazy(path, layer, chunk_cells=chunk_cells)
    expression = Expression(matrix=matrix, var_names=[str(g) for g in var.index], layer=layer, var=var)
    alignment, coverage = gene_alignment(expression, table, symbol_column=symbol_column)
    result = ad.AnnData(obs=obs, var=var)
    stage = functools.partial(progress, "embed (Dask)") if progress else no_progress
    vectors = average_gene_vectors_dask(matrix, alignment.matrix, client=client, progress=stage, cancel=cancel)
    result.obsm[WA_KEY], result.obsm[AA_KEY] = vectors["wa"], vectors["aa"]
    result.varm[GENE_EMBEDDING_KEY] = alignment.matrix
    return result, coverage
