"""Shared fixtures: the real embedded models (loaded once per session) and the shipped pbmc68k data."""

import os

# Before anything imports numpy/torch/llama: one thread (2 threads are slower and erratic on 2 vCPUs here).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["SCELMO_THREADS"] = os.environ.get("SCELMO_THREADS", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

pytest_plugins = ["gui_support"]  # the app's window fixture, for the GUI tests

import scelmo_desktop  # noqa: E402,F401  (sets the offline switches)
from scelmo_desktop.backends import registry  # noqa: E402
from scelmo_desktop.core.protocols import GenerationParams  # noqa: E402

# Short answers keep the real-LLM tests quick; the code path is the same as with 160 tokens.
TEST_PARAMS = GenerationParams(max_tokens=24)


def _guard_network():
    """Fail loudly on any attempt to connect to a non-loopback address from the test process (the app must work
    air-gapped; subprocess runs are checked inside an empty network namespace in test_reliability)."""
    import ipaddress
    import socket

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def allowed(address) -> bool:
        if not isinstance(address, tuple):  # AF_UNIX paths
            return True
        try:
            return ipaddress.ip_address(address[0]).is_loopback
        except ValueError:
            return address[0] == "localhost"

    def connect(self, address):
        if not allowed(address):
            raise RuntimeError(f"network access attempted during tests: {address}")
        return real_connect(self, address)

    def connect_ex(self, address):
        if not allowed(address):
            raise RuntimeError(f"network access attempted during tests: {address}")
        return real_connect_ex(self, address)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex


_guard_network()


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Every test gets its own user data folder (store, settings)."""
    monkeypatch.setenv("SCELMO_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def llm_info():
    registry.install_defaults()
    return registry.find_model("gguf")


@pytest.fixture(scope="session")
def llm(llm_info):
    backend = registry.open_llm(llm_info, n_threads=1)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def embedder():
    return registry.open_embedder(registry.find_model("sentence-transformers"), device="cpu")


@pytest.fixture(scope="session")
def pbmc():
    import scanpy as sc

    return sc.datasets.pbmc68k_reduced()


@pytest.fixture
def llm_source(llm, llm_info):
    from scelmo_desktop.core.protocols import LLMSource

    calls = []

    def factory():
        calls.append(1)
        return llm

    source = LLMSource(name=llm_info.name, sha256=llm_info.sha256, factory=factory, info=llm.info())
    source.loads = calls  # lets tests check that a cached run never loads the model
    return source
