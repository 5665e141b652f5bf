"""Opening models for any door: the CLI, the desktop app, the napari plugin, the self-test and ``scelmo.models``.

A door fills a :class:`~scelmo_desktop.core.settings.ModelSettings` (from flags, a settings panel or keyword arguments) and asks a
:class:`ModelSession` for the description mode, the LLM source and the embedder. The session keeps loaded
models between jobs (the app runs many) and loads the LLM lazily: a fully cached run never loads it. The
SQLite store is opened per job with :func:`open_store`, in the thread that uses it (a SQLite connection belongs
to one thread). Nothing here prints or draws: progress and messages belong to the door.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from scelmo_desktop.backends import registry
from scelmo_desktop.core.protocols import DEFAULT_LLM_BATCH, DEFAULT_SERVER_PARALLEL, LLMSource
from scelmo_desktop.core.settings import ModelSettings
from scelmo_desktop.core.workflows.environment import ScelmoError, default_store_path
from scelmo_desktop.core.workflows.storage import Store

NO_LLM = "none (facts mode)"


def resolve_mode(requested: str, llm_info) -> str:
    """``auto``: the model's measured best mode, else ``grounded`` with the knowledge extra, else ``llm``.
    A fact-based mode without the knowledge extra falls back to ``llm`` (fact sheets would be empty)."""
    from scelmo_desktop.core.workflows.storage import catalog_available

    if requested != "auto":
        return requested
    knowledge = catalog_available()
    mode = (llm_info.default_mode if llm_info else None) or ("grounded" if knowledge else "llm")
    return mode if knowledge or mode == "llm" else "llm"


def server_llm_source(
    url: str, model: str, *, parallel: int, timeout: float, retries: int, allow_remote: bool = False
) -> tuple[LLMSource, registry.LazyLLM]:
    """An OpenAI-compatible server as the LLM; the address is checked now, before any data is read, and the
    server is contacted only when a description is missing."""
    from scelmo_desktop.backends.openai_server import OpenAIServerBackend, check_address, server_identity

    check_address(url, allow_remote=allow_remote)
    lazy = registry.LazyLLM(
        None,
        opener=lambda: OpenAIServerBackend(
            url, model, parallel=parallel, timeout=timeout, retries=retries, allow_remote=allow_remote
        ),
    )
    source = LLMSource(
        name=model,
        sha256=server_identity(url, model),
        factory=lazy,
        info={"backend": "openai-server", "server_url": url, "parallel": parallel},
    )
    return source, lazy


class ModelSession:
    """The models of one door, kept between its jobs; ``close()`` unloads them."""

    def __init__(self):
        self._llm_key = None
        self._lazy = None
        self._source = None
        self._embedder_key = None
        self._embedder = None

    def resolved_mode(self, choice: ModelSettings) -> str:
        if choice.mode == "facts":
            return "facts"
        return resolve_mode(choice.mode, None if choice.uses_server else self._llm_info(choice))

    def llm_source(self, choice: ModelSettings) -> LLMSource:
        """The LLM as the workflows need it (named now, loaded on first use); facts mode names no model."""
        if choice.mode == "facts":
            return LLMSource(NO_LLM, "", lambda: None)
        if choice.uses_server:
            parallel = choice.parallel or DEFAULT_SERVER_PARALLEL
            key = ("server", choice.server_url, choice.server_model, parallel, choice.timeout, choice.retries)
            if key != self._llm_key:
                self._replace_llm()
                self._source, self._lazy = server_llm_source(
                    choice.server_url,
                    choice.server_model or choice.llm or "default",
                    parallel=parallel,
                    timeout=choice.timeout,
                    retries=choice.retries,
                    allow_remote=choice.allow_remote,
                )
                self._llm_key = key
            return self._source
        info = self._llm_info(choice)
        parallel = choice.parallel or DEFAULT_LLM_BATCH
        key = (info.path, choice.chat_format, choice.threads, choice.gpu_layers, parallel)
        if key != self._llm_key:
            self._replace_llm()
            self._lazy = registry.LazyLLM(
                info,
                chat_format=choice.chat_format,
                n_threads=choice.threads,
                n_gpu_layers=choice.gpu_layers,
                parallel=parallel,
            )
            self._source = LLMSource(
                name=info.name,
                sha256=info.sha256,
                factory=self._lazy,
                info={
                    "path": info.path,
                    # a model whose measured best description mode is the fact sheets alone writes no text to trust
                    "trusted_for_text": info.default_mode != "facts",
                    "chat_format": choice.chat_format or info.chat_format or "from GGUF",
                    "n_gpu_layers": choice.gpu_layers,
                    "parallel": parallel,
                },
            )
            self._llm_key = key
        return self._source

    def explainer(self, choice: ModelSettings) -> LLMSource:
        """The chosen LLM for explaining cluster names, whatever the description mode (``facts`` describes genes
        without it); loaded on first use."""
        return self.llm_source(choice.replace(mode="llm") if choice.mode == "facts" else choice)

    def embedder(self, choice: ModelSettings):
        info = registry.find_model("sentence-transformers", choice.embedder, choice.models_dir)
        key = (info.path, choice.device)
        if key != self._embedder_key:
            self._embedder = registry.LazyEmbedder(info, device=choice.device)  # loaded on the first new text
            self._embedder_key = key
        return self._embedder

    def models_used(self, choice: ModelSettings, *, embedder: bool = True) -> list[dict]:
        """Name, kind and sha256 of each model a job uses (for the audit trail); hashes come from the cache.
        A model that cannot be found is left out: the job itself reports it."""
        used = []
        if choice.uses_server:
            from scelmo_desktop.backends.openai_server import server_identity

            model = choice.server_model or choice.llm or "default"
            used.append(
                {
                    "kind": "openai-server",
                    "name": model,
                    "url": choice.server_url,
                    "sha256": server_identity(choice.server_url, model),
                }
            )
        wanted = [] if choice.mode == "facts" or choice.uses_server else [("gguf", choice.llm)]
        wanted += [("sentence-transformers", choice.embedder)] if embedder else []
        for kind, name in wanted:
            try:
                info = registry.find_model(kind, name, choice.models_dir)
            except ScelmoError:
                continue
            used.append({"kind": kind, "name": info.name, "sha256": info.sha256, "path": info.path})
        return used

    def _llm_info(self, choice: ModelSettings):
        return registry.find_model("gguf", choice.llm, choice.models_dir)

    def _replace_llm(self) -> None:
        if self._lazy is not None:
            self._lazy.close()
        self._lazy = self._source = self._llm_key = None

    def close(self) -> None:
        self._replace_llm()


@contextlib.contextmanager
def open_store(path: str | Path | None = None):
    """The description store (SQLite), closed when the job ends."""
    with Store(path or default_store_path()) as store:
        yield store


def check_model(model) -> str:
    """Try to load a model; returns 'yes' or the one-line reason it does not load."""
    try:
        backend = registry.open_llm(model) if model.kind == "gguf" else registry.open_embedder(model)
    except ScelmoError as exc:
        return f"no ({exc})"
    if hasattr(backend, "close"):
        backend.close()
    return "yes"
