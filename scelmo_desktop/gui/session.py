"""Models and store for the app's jobs (Qt-free). The LLM loads lazily (only when a description is missing) and
both models are kept between jobs; the SQLite store is opened inside each job, in the worker thread that uses
it (SQLite connections belong to one thread)."""

from __future__ import annotations

import contextlib

from scelmo_desktop.backends import registry
from scelmo_desktop.core.paths import default_store_path
from scelmo_desktop.core.pipeline import LLMSource
from scelmo_desktop.core.store import Store


class ModelSession:
    def __init__(self):
        self._llm_key = None
        self._lazy = None
        self._server = None
        self._embedder_key = None
        self._embedder = None

    def resolved_mode(self, settings) -> str:
        from scelmo_desktop.cli_support import resolve_mode

        if settings.mode == "facts":
            return "facts"
        return resolve_mode(settings.mode, None if settings.llm_server else registry.find_model("gguf", settings.llm))

    def llm_source(self, settings) -> LLMSource:
        if settings.mode == "facts":
            return LLMSource("none (facts mode)", "", lambda: None)
        if settings.llm_server:
            return self._server_source(settings)
        info = registry.find_model("gguf", settings.llm)
        key = (info.path, settings.threads, settings.gpu_layers, settings.llm_batch)
        if key != self._llm_key:
            if self._lazy is not None:
                self._lazy.close()
            self._lazy = registry.LazyLLM(info, n_threads=settings.threads, n_gpu_layers=settings.gpu_layers,
                                          parallel=settings.llm_batch)
            self._llm_key = key
        return LLMSource(name=info.name, sha256=info.sha256, factory=self._lazy,
                         info={"path": info.path, "chat_format": info.chat_format or "from GGUF",
                               "n_gpu_layers": settings.gpu_layers, "parallel": settings.llm_batch})

    def _server_source(self, settings) -> LLMSource:
        from scelmo_desktop.cli_support import server_llm_source

        key = ("server", settings.llm_server, settings.llm_server_model, settings.llm_batch)
        if key != self._llm_key:
            if self._lazy is not None:
                self._lazy.close()
            source, self._lazy = server_llm_source(settings.llm_server, settings.llm_server_model or "default",
                                                   parallel=settings.llm_batch)
            self._llm_key, self._server = key, source
        return self._server

    def embedder(self, settings):
        info = registry.find_model("sentence-transformers", settings.embedder)
        key = (info.path, settings.device)
        if key != self._embedder_key:
            self._embedder = registry.open_embedder(info, device=settings.device)
            self._embedder_key = key
        return self._embedder

    @staticmethod
    @contextlib.contextmanager
    def store():
        with Store(default_store_path()) as store:
            yield store

    def close(self) -> None:
        if self._lazy is not None:
            self._lazy.close()
