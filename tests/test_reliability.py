"""No network, no lost work: kill -9 mid-generation, two instances on one store, an empty network namespace,
a full disk, a chat template that tries to escape its sandbox, property tests of the cell embedding."""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from scelmo_desktop.core.embedding.cell_embedding import average_gene_vectors

SCELMO = str(Path(sys.executable).parent / "scelmo")
GENES = ["CD3E", "CD4", "CD8A", "MS4A1", "LYZ", "NKG7", "GNLY", "CD14"]


def _env(home):
    return {**os.environ, "OMP_NUM_THREADS": "1", "SCELMO_THREADS": "1", "SCELMO_HOME": str(home)}


def _store(home) -> Path:
    return Path(home) / "store.sqlite"


def _rows(home) -> int:
    with sqlite3.connect(_store(home)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return db.execute("SELECT COUNT(*) FROM descriptions").fetchone()[0]


@pytest.mark.slow  # a real process killed with SIGKILL, then a second run
def test_kill_9_mid_generation_loses_nothing_and_resumes(tmp_path):
    home = tmp_path / "home"
    # batched decoding, 2 genes at a time: answers land in pairs, so the kill finds pairs still in flight
    argv = [
        SCELMO,
        "describe",
        "--genes",
        ",".join(GENES),
        "--mode",
        "llm",
        "--max-tokens",
        "48",
        "--llm-parallel",
        "2",
    ]
    process = subprocess.Popen(argv, env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if _store(home).exists():
            try:
                if _rows(home) >= 2:
                    break
            except sqlite3.OperationalError:
                pass  # table not created yet
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    kept = _rows(home)  # integrity_check inside
    assert 2 <= kept < len(GENES)
    again = subprocess.run(argv, env=_env(home), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"LLM calls: {len(GENES) - kept} (cached: {kept})" in again.stdout
    assert _rows(home) == len(GENES)


@pytest.mark.slow  # two real processes writing one store
def test_two_instances_on_one_store(tmp_path):
    home = tmp_path / "home"
    argv = [SCELMO, "describe", "--mode", "llm", "--max-tokens", "16", "--genes"]
    first = subprocess.Popen(
        argv + [",".join(GENES[:4])], env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    second = subprocess.Popen(
        argv + [",".join(GENES[4:])], env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    for process in (first, second):
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err.decode()[-1500:]
    assert _rows(home) == len(GENES)


@pytest.mark.slow  # the installed `scelmo demo` in a fresh interpreter without a network
@pytest.mark.skipif(
    shutil.which("unshare") is None or os.geteuid() != 0, reason="an empty network namespace needs unshare and root"
)
def test_demo_runs_in_an_empty_network_namespace(tmp_path):
    probe = subprocess.run(
        [
            "unshare",
            "-n",
            sys.executable,
            "-c",
            "import socket; s = socket.socket(); s.settimeout(2); print(s.connect_ex(('1.1.1.1', 80)))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0 and probe.stdout.strip() not in ("0", "")  # the namespace really has no route
    run = subprocess.run(
        [
            "unshare",
            "-n",
            SCELMO,
            "demo",
            "--max-genes",
            "6",
            "--max-tokens",
            "24",
            "--mode",
            "grounded",
            "--out",
            str(tmp_path / "demo"),
        ],
        env=_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "demo" / "report.html").exists() and "LLM calls: 6" in run.stdout


@pytest.mark.slow  # the installed `scelmo-desktop --screenshots` (all nine panels) without a network
@pytest.mark.skipif(
    shutil.which("unshare") is None or os.geteuid() != 0, reason="an empty network namespace needs unshare and root"
)
def test_desktop_flow_runs_in_an_empty_network_namespace(tmp_path):
    app = str(Path(sys.executable).parent / "scelmo-desktop")
    run = subprocess.run(
        ["unshare", "-n", app, "--screenshots", str(tmp_path / "shots"), "--mode", "facts", "--max-genes", "40"],
        env={**_env(tmp_path / "home"), "QT_QPA_PLATFORM": "offscreen"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    from scelmo_desktop.gui.main_window import PANELS

    assert len(list((tmp_path / "shots").glob("*.png"))) == len(PANELS)  # one per panel
    assert "failed" not in run.stdout


def test_full_disk_leaves_no_partial_file(tmp_path):
    import errno

    from scelmo_desktop.core._infra.atomic import write_atomic
    from scelmo_desktop.core._infra.errors import ScelmoError

    target = tmp_path / "report.html"
    target.write_text("the previous report")

    def writer(tmp):
        tmp.write_text("half of the new")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(ScelmoError, match="No space left on device.*free disk space"):
        write_atomic(target, writer)
    assert target.read_text() == "the previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left behind


def test_output_folder_that_cannot_exist_is_a_clear_error(tmp_path, capsys):
    from scelmo_desktop import cli

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code = cli.main(["simulate-batches", "--out", str(blocker / "sub" / "b.h5ad")])
    assert code == 2 and "Cannot write to folder" in capsys.readouterr().err


def test_chat_template_cannot_reach_python_internals():
    from jinja2.exceptions import SecurityError
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    hostile = "{{ ''.__class__.__mro__[1].__subclasses__() }}{% for m in messages %}{{ m.content }}{% endfor %}"
    formatter = Jinja2ChatFormatter(template=hostile, eos_token="</s>", bos_token="<s>")
    with pytest.raises(SecurityError):
        formatter(messages=[{"role": "user", "content": "hi"}])


def test_adaptor_checkpoints_load_weights_only(tmp_path):
    import pickle

    from scelmo_desktop.core._infra.errors import ScelmoError
    from scelmo_desktop.core.tasks.adaptor import load_adaptor

    class Boom:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    path = tmp_path / "adaptor.pt"
    path.write_bytes(pickle.dumps({"state_dict": Boom()}))
    with pytest.raises(ScelmoError, match="not a readable scELMo adaptor"):
        load_adaptor(path, table_dim=4)


# no subnormal values: scaling one by 0.01 underflows to zero and changes the data itself, so scale invariance
# cannot hold for it; denormal totals are tested on their own (tests/test_cell_embedding.py)
matrices = arrays(
    np.float32,
    st.tuples(st.integers(1, 12), st.integers(1, 10)),
    elements=st.floats(0, 50, width=32, allow_subnormal=False),
)


@settings(max_examples=60, deadline=None)
@given(X=matrices, seed=st.integers(0, 2**16), scale=st.floats(0.01, 100))
def test_wa_shapes_finiteness_and_scale_invariance(X, seed, scale):
    E = np.random.default_rng(seed).standard_normal((X.shape[1], 5)).astype(np.float32)
    wa = average_gene_vectors(sp.csr_matrix(X), E, mode="wa")
    assert wa.shape == (X.shape[0], 5) and np.isfinite(wa).all()
    scaled = average_gene_vectors(sp.csr_matrix(X * np.float32(scale)), E, mode="wa")
    np.testing.assert_allclose(scaled, wa, rtol=1e-3, atol=1e-4)  # wa divides by each cell's total
    empty = X.sum(axis=1) == 0
    assert np.all(wa[empty] == 0)  # a cell with no expression embeds at the origin, never NaN


@settings(max_examples=60, deadline=None)
@given(X=matrices, seed=st.integers(0, 2**16))
def test_aa_is_linear_and_dense_equals_sparse(X, seed):
    E = np.random.default_rng(seed).standard_normal((X.shape[1], 3)).astype(np.float32)
    aa = average_gene_vectors(sp.csr_matrix(X), E, mode="aa")
    assert np.isfinite(aa).all()
    np.testing.assert_allclose(average_gene_vectors(X, E, mode="aa"), aa, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(average_gene_vectors(sp.csr_matrix(2 * X), E, mode="aa"), 2 * aa, rtol=1e-3, atol=1e-3)


def test_audit_trail_records_inputs_models_and_outcome(tmp_path, capsys):
    import json

    import anndata as ad
    import pandas as pd

    from scelmo_desktop import cli
    from scelmo_desktop.core._infra.audit import read_entries
    from scelmo_desktop.core._infra.provenance import sha256_file

    data = tmp_path / "cells.h5ad"
    ad.AnnData(X=sp.csr_matrix(np.ones((4, 3), np.float32)), var=pd.DataFrame(index=["CD3E", "CD4", "LYZ"])).write_h5ad(
        data
    )
    assert cli.main(["describe", str(data), "--mode", "facts", "--max-genes", "all"]) == 0
    assert cli.main(["embed", str(tmp_path / "missing.h5ad"), "--out", str(tmp_path / "o")]) == 2
    ok, failed = read_entries()[-2:]
    assert ok["operation"] == "scelmo describe" and ok["status"] == "ok"
    assert ok["inputs"][0]["sha256"] == sha256_file(data) and ok["user"]
    assert failed["status"] == "error" and "not found" in failed["message"]
    assert {m["kind"] for m in failed["models"]} == {"gguf", "sentence-transformers"}
    assert all(len(m["sha256"]) == 64 for m in failed["models"])
    capsys.readouterr()
    assert cli.main(["audit", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2  # listing the trail is not itself audited


def test_a_store_held_by_another_writer_gives_a_clear_busy_message(tmp_path):
    from scelmo_desktop.core._infra.errors import ScelmoError
    from scelmo_desktop.core.text.store import Store

    path = tmp_path / "store.sqlite"
    Store(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        with Store(path, timeout_s=0.5) as store:
            with pytest.raises(ScelmoError, match="is busy: another scELMo process"):
                store.put_edit("gene", "CD3E", "text")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with Store(path) as store:  # once released, writing works and nothing half-written is there
        assert store.latest_edits("gene", ["CD3E"]) == {}
        store.put_edit("gene", "CD3E", "text")
