"""Throughput paths with the real parts: batched llama.cpp decoding, a real llama-cpp-python server on loopback,
and Dask cell embeddings on a LocalCluster. Speeds are measured in benchmarks/, not here."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from dataclasses import replace

import numpy as np
import pytest
from conftest import TEST_PARAMS
from llama_server import free_port, start_llama_server

from scelmo_desktop.backends import openai_server
from scelmo_desktop.backends.llama_batch import BatchedGenerator, chat_request
from scelmo_desktop.backends.openai_server import OpenAIServerBackend
from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import Cancelled
from scelmo_desktop.core._infra.network import check_address
from scelmo_desktop.core.text.generation import describe_entities, load_template
from scelmo_desktop.core.text.store import Store

GENES = ["CD3E", "MS4A1", "LYZ", "NKG7", "PPBP", "HBB"]


def _describe(store, llm, llm_info, genes=GENES, **kwargs):
    return describe_entities(
        genes,
        kind="gene",
        model_sha256=llm_info.sha256,
        model_name=llm_info.name,
        llm_factory=lambda: llm,
        store=store,
        template=load_template("gene"),
        params=TEST_PARAMS,
        **kwargs,
    )


def _rows(store):
    rows, _ = store.export_rows()
    return {row["entity"]: row for row in rows}


# ---- batched generation (llama.cpp multi-sequence batches) ----------------------------------------------------


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_batch_of_one_reproduces_single_stream_exactly(llm, temperature):
    """Same chat request, sampler chain and stop rules as create_chat_completion: with one sequence per batch the
    matrix shapes are the single-stream ones too, so every token must agree. Greedy decoding takes the NumPy
    penalties+argmax path, sampling the llama.cpp chain seeded like the single-stream one."""
    params = replace(TEST_PARAMS, temperature=temperature, seed=3)
    prompts = [load_template("gene").render(g) for g in GENES[:3]]
    single = [llm.generate(p, params) for p in prompts]
    batched = dict(BatchedGenerator(llm._llm, n_parallel=1).generate(prompts, params))
    assert [batched[i].text for i in range(3)] == [g.text for g in single]
    assert [batched[i].n_tokens for i in range(3)] == [g.n_tokens for g in single]


def test_chat_request_uses_the_models_own_template_and_stops(llm):
    tokens, stops = chat_request(llm._llm, "Describe CD3E.", TEST_PARAMS)
    text = llm._llm.detokenize(tokens, special=True).decode()
    assert "Describe CD3E." in text and "<start_of_turn>" in text  # the gemma turn markers around the message
    assert set(TEST_PARAMS.stop) <= set(stops)


@pytest.mark.slow  # the real LLM over six genes, single-stream and batched
def test_batched_and_single_stream_store_the_same_entities_and_provenance(tmp_path, llm, llm_info, monkeypatch):
    with Store(tmp_path / "single.sqlite") as store:
        single = _describe(store, llm, llm_info)
        single_rows = _rows(store)
    monkeypatch.setattr(llm, "parallel", 4)
    seen = []
    with Store(tmp_path / "batched.sqlite") as store:
        batched = _describe(store, llm, llm_info, progress=lambda done, total, message: seen.append(done))
        batched_rows = _rows(store)
    assert batched.n_llm_calls == single.n_llm_calls == len(GENES)
    assert set(batched_rows) == set(single_rows) == set(GENES)
    assert seen[-1] == len(GENES) and seen == sorted(seen)  # progress counts every stored answer
    for gene in GENES:
        a, b = single_rows[gene], batched_rows[gene]
        # the same store key (model, template, decoding params) and prompt: a batched answer is a cache hit later
        assert (a["model_sha256"], a["template_sha256"], a["params_sha256"], a["prompt"]) == (
            b["model_sha256"],
            b["template_sha256"],
            b["params_sha256"],
            b["prompt"],
        )
        assert json.loads(a["params_json"])["batch_size"] == 1
        assert json.loads(b["params_json"])["batch_size"] == 4
        assert b["text"] and 0 < b["n_tokens"] <= TEST_PARAMS.max_tokens
    # Batched matrix products may change a token only through floating-point effects; most answers agree.
    agree = sum(single_rows[g]["text"] == batched_rows[g]["text"] for g in GENES)
    assert agree >= len(GENES) // 2, f"only {agree} of {len(GENES)} batched answers match single-stream"


def test_cancelled_batch_keeps_finished_answers_and_resumes(tmp_path, llm, llm_info, monkeypatch):
    monkeypatch.setattr(llm, "parallel", 2)
    cancel = threading.Event()

    def progress(done, total, message):
        if done >= 2:
            cancel.set()

    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(Cancelled):
            _describe(store, llm, llm_info, progress=progress, cancel=cancel)
        kept = _rows(store)
        assert 2 <= len(kept) < len(GENES)
        rerun = _describe(store, llm, llm_info)
        assert rerun.n_cached == len(kept) and rerun.n_llm_calls == len(GENES) - len(kept)
        assert {g: r["text"] for g, r in _rows(store).items() if g in kept} == {g: r["text"] for g, r in kept.items()}


# ---- OpenAI-compatible server backend, against llama-cpp-python's real server -----------------------------------


def start_server(model_path: str, port: int):
    return start_llama_server(model_path, port, alias="gemma-test")


@pytest.fixture
def server(llm_info):
    port = free_port()
    process = start_server(llm_info.path, port)
    yield process, f"http://127.0.0.1:{port}/v1"
    process.kill()
    process.wait()


@pytest.mark.slow  # starts a llama_cpp.server subprocess
def test_server_backend_gives_the_in_process_answers(tmp_path, server, llm, llm_info):
    _, url = server
    backend = OpenAIServerBackend(url, "gemma-test", parallel=3, timeout=60)
    with Store(tmp_path / "s.sqlite") as store:
        result = describe_entities(
            GENES[:4],
            kind="gene",
            model_sha256=backend.sha256,
            model_name=backend.name,
            llm_factory=lambda: backend,
            store=store,
            template=load_template("gene"),
            params=TEST_PARAMS,
        )
        rows = _rows(store)
    assert result.n_llm_calls == 4 and set(rows) == set(GENES[:4])
    assert all(json.loads(r["params_json"])["batch_size"] == 3 for r in rows.values())
    local = {g: llm.generate(load_template("gene").render(g), TEST_PARAMS).text for g in GENES[:4]}
    assert {g: r["text"] for g, r in rows.items()} == local  # same model, prompts and settings, same answers
    info = backend.info()
    assert info["server_url"] == url and info["name"] == "gemma-test" and info["parallel"] == 3
    assert info["model_hash_reported"] is None  # llama.cpp's server reports none; the identity is URL + name


@pytest.mark.slow  # starts a llama_cpp.server subprocess twice, kills it mid-run
def test_server_dying_mid_run_retries_then_fails_clearly_and_keeps_rows(tmp_path, server, llm_info, monkeypatch):
    process, url = server
    backend = OpenAIServerBackend(url, "gemma-test", parallel=1, timeout=20, retries=2, backoff=0.2)

    def kill_after_first(done, total, message):
        if done == 1:
            process.kill()

    waits = []  # the backoff, read from the waits asked for (not the clock: a busy machine stretches it)
    real_sleep = openai_server.time.sleep
    monkeypatch.setattr(openai_server.time, "sleep", lambda seconds: (waits.append(seconds), real_sleep(seconds)))
    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(ScelmoError, match="did not answer after 3 tries") as error:
            describe_entities(
                GENES,
                kind="gene",
                model_sha256=backend.sha256,
                model_name=backend.name,
                llm_factory=lambda: backend,
                store=store,
                template=load_template("gene"),
                params=TEST_PARAMS,
                progress=kill_after_first,
            )
        assert waits[:2] == [0.2, 0.4]  # it backed off, doubling, before giving up
        assert "answers already stored are kept" in str(error.value)
        assert len(_rows(store)) == 1

        port = int(url.rsplit(":", 1)[1].split("/")[0])
        revived = start_server(llm_info.path, port)
        try:
            again = describe_entities(
                GENES,
                kind="gene",
                model_sha256=backend.sha256,
                model_name=backend.name,
                llm_factory=lambda: backend,
                store=store,
                template=load_template("gene"),
                params=TEST_PARAMS,
            )
        finally:
            revived.kill()
            revived.wait()
        assert again.n_cached == 1 and again.n_llm_calls == len(GENES) - 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v1",
        "http://10.2.3.4/v1",
        "http://192.168.1.9:11434/v1",
        "http://[::1]:8000/v1",
        "https://172.20.0.5/v1",
    ],
)
def test_loopback_and_private_servers_are_accepted(url):
    check_address(url)


@pytest.mark.parametrize("url", ["http://8.8.8.8/v1", "https://1.1.1.1:443/v1", "http://[2001:4860:4860::8888]/v1"])
def test_public_servers_are_refused_unless_allowed(url):
    with pytest.raises(ScelmoError, match="public address"):
        check_address(url)
    check_address(url, allow_remote=True)


@pytest.mark.slow  # a llama_cpp.server subprocess and `python -m scelmo_desktop.cli` against it
def test_cli_describe_through_the_server(tmp_path, server):
    _, url = server
    store = tmp_path / "store.sqlite"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scelmo_desktop.cli",
            "describe",
            "--genes",
            "CD3E,LYZ",
            "--mode",
            "llm",
            "--llm-server",
            url,
            "--llm-server-model",
            "gemma-test",
            "--llm-parallel",
            "2",
            "--max-tokens",
            "16",
            "--store",
            str(store),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with Store(store) as opened:
        rows = _rows(opened)
    assert set(rows) == {"CD3E", "LYZ"} and all(r["model_name"] == "gemma-test" for r in rows.values())
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "scelmo_desktop.cli",
            "describe",
            "--genes",
            "CD3E",
            "--mode",
            "llm",
            "--llm-server",
            "http://8.8.8.8/v1",
            "--store",
            str(store),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2 and "public address" in refused.stderr and "Traceback" not in refused.stderr


# ---- Dask ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_cluster():
    from scelmo_desktop.core.embedding.dask_embedding import dask_client

    with dask_client(n_workers=1) as client:
        yield client


@pytest.mark.parametrize(("sparse", "suffix"), [(True, ".h5ad"), (False, ".h5ad"), (True, ".zarr")])
def test_dask_embedding_equals_in_memory(tmp_path, pbmc, dask_cluster, sparse, suffix):
    import anndata as ad
    import scipy.sparse as sp

    from scelmo_desktop.core.embedding.cell_embedding import average_gene_vectors
    from scelmo_desktop.core.embedding.dask_embedding import average_gene_vectors_dask, open_lazy

    X = pbmc.raw.X.toarray() if sp.issparse(pbmc.raw.X) else np.array(pbmc.raw.X)
    X = X.astype(np.float32)
    X[:3] = 0  # cells with no expression: zero vectors on both paths
    matrix = sp.csr_matrix(X) if sparse else X
    path = tmp_path / f"cells{suffix}"
    cells = ad.AnnData(X=matrix, obs=pbmc.obs[[]], var=pbmc.raw.var[[]])
    cells.write_h5ad(path) if suffix == ".h5ad" else cells.write_zarr(path)
    E = np.random.default_rng(0).normal(size=(X.shape[1], 32)).astype(np.float32)
    E[::5] = 0  # genes without a description
    lazy, obs, var = open_lazy(path, chunk_cells=128)
    assert len(obs) == pbmc.n_obs and list(var.index) == list(pbmc.raw.var_names)
    seen = []
    out = average_gene_vectors_dask(
        lazy, E, client=dask_cluster, chunk_cells=96, progress=lambda d, t, m: seen.append(d)
    )
    for mode in ("wa", "aa"):  # equal up to float32 rounding (BLAS blocks rows differently per chunk size)
        with pytest.warns(UserWarning, match="zero total") if mode == "wa" else contextlib.nullcontext():
            expected = average_gene_vectors(matrix, E, mode=mode)
        np.testing.assert_allclose(out[mode], expected, rtol=1e-5, atol=1e-7)
        assert not out[mode][:3].any()
    assert seen[-1] == pbmc.n_obs and len(seen) == -(-pbmc.n_obs // 96)


def test_dask_cancel_drops_the_rest(tmp_path, pbmc, dask_cluster):
    import anndata as ad
    import scipy.sparse as sp

    from scelmo_desktop.core.embedding.dask_embedding import average_gene_vectors_dask, open_lazy

    path = tmp_path / "cells.h5ad"
    ad.AnnData(X=sp.csr_matrix(pbmc.raw.X), obs=pbmc.obs[[]], var=pbmc.raw.var[[]]).write_h5ad(path)
    lazy, _, _ = open_lazy(path, chunk_cells=50)
    cancel = threading.Event()
    with pytest.raises(Cancelled):
        average_gene_vectors_dask(
            lazy,
            np.ones((pbmc.raw.n_vars, 4), np.float32),
            client=dask_cluster,
            cancel=cancel,
            progress=lambda d, t, m: cancel.set(),
        )


@pytest.mark.slow  # `python -m scelmo_desktop.cli embed --dask`: three fresh interpreters and a LocalCluster
def test_cli_embed_dask_matches_in_memory(tmp_path, pbmc):
    import anndata as ad
    import scipy.sparse as sp

    data = tmp_path / "cells.h5ad"
    ad.AnnData(X=sp.csr_matrix(pbmc.raw.X), obs=pbmc.obs[["bulk_labels"]], var=pbmc.raw.var[[]]).write_h5ad(data)
    common = [
        sys.executable,
        "-m",
        "scelmo_desktop.cli",
        "embed",
        str(data),
        "--mode",
        "facts",
        "--max-genes",
        "40",
        "--store",
        str(tmp_path / "s.sqlite"),
    ]
    memory = subprocess.run(common + ["--out", str(tmp_path / "mem")], capture_output=True, text=True, timeout=600)
    assert memory.returncode == 0, memory.stderr[-2000:]
    dask = subprocess.run(
        common
        + [
            "--out",
            str(tmp_path / "dask"),
            "--dask",
            "--chunk-cells",
            "150",
            "--gene-table",
            str(tmp_path / "mem" / "gene_table.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert dask.returncode == 0, dask.stderr[-2000:]
    a, b = (
        ad.read_h5ad(tmp_path / "mem" / "scelmo_embedded.h5ad"),
        ad.read_h5ad(tmp_path / "dask" / "scelmo_embedded.h5ad"),
    )
    for key in ("X_scelmo_wa", "X_scelmo_aa"):
        np.testing.assert_allclose(b.obsm[key], a.obsm[key], rtol=1e-6, atol=1e-7)
    assert list(b.obs["bulk_labels"]) == list(a.obs["bulk_labels"])
    assert b.uns["scelmo"]["embedding"]["dask"]["chunk_cells"] == 150
    refused = subprocess.run(
        common
        + [
            "--out",
            str(tmp_path / "x"),
            "--dask",
            "--scheduler",
            "tcp://8.8.8.8:8786",
            "--gene-table",
            str(tmp_path / "mem" / "gene_table.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2 and "public address" in refused.stderr


@pytest.mark.slow  # `python -m scelmo_desktop.cli embed --dask`: three fresh interpreters
def test_cli_embed_dask_bad_inputs_get_one_line_errors(tmp_path, pbmc):
    table = tmp_path / "table.npz"
    from scelmo_desktop.core.embedding.gene_table import GeneTable, save_gene_table

    symbols = list(pbmc.raw.var_names[:20])
    save_gene_table(GeneTable(symbols=symbols, vectors=np.ones((20, 8), np.float32)), table)
    scaled = tmp_path / "scaled.h5ad"
    pbmc.write_h5ad(scaled)  # .X is scaled (negative values); .raw holds the log-normalised matrix
    junk = tmp_path / "junk.h5ad"
    junk.write_text("not an h5ad")
    base = [sys.executable, "-m", "scelmo_desktop.cli", "embed", "--dask", "--gene-table", str(table)]
    for data, layer, message in ((scaled, "X", "negative values"), (junk, "X", "not a readable .h5ad")):
        done = subprocess.run(
            base + [str(data), "--layer", layer, "--out", str(tmp_path / "o")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr[-800:]
    fixed = subprocess.run(
        base + [str(scaled), "--layer", "raw", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert fixed.returncode == 0, fixed.stderr[-800:]
