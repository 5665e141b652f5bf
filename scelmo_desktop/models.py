"""``scelmo.models``: the local models the ``scelmo.tl`` functions use, opened once and kept.

    >>> import scelmo_desktop as scelmo
    >>> models = scelmo.models.load(mode="facts")            # no LLM: fact sheets only
    >>> models = scelmo.models.load(llm="my-8b.Q4_K_M.gguf", gpu_layers=-1)
    >>> scelmo.models.available()                             # what is installed, with hashes

Every ``scelmo.tl`` function takes ``models=``; without it the embedded defaults are used (the 270M GGUF,
described lazily, and all-MiniLM-L6-v2). Nothing is downloaded: models are files on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scelmo_desktop.app.session import ModelSession, ModelSettings

__all__ = ["Models", "available", "default", "load"]


@dataclass
class Models:
    """The LLM source, the embedder and the description store that ``scelmo.tl`` functions share."""

    choice: ModelSettings
    store_path: Path | None = None  # None: the user data folder
    session: ModelSession = field(default_factory=ModelSession)

    @property
    def mode(self) -> str:
        """The resolved description mode (``auto`` becomes the model's best, or grounded)."""
        return self.session.resolved_mode(self.choice)

    @property
    def llm(self):
        return self.session.llm_source(self.choice)

    @property
    def embedder(self):
        return self.session.embedder(self.choice)

    def close(self) -> None:
        """Unload the models (they are reloaded on next use)."""
        self.session.close()

    def __enter__(self) -> Models:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load(
    mode: str = "auto",
    *,
    llm: str | None = None,
    embedder: str | None = None,
    models_dir=None,
    server_url: str | None = None,
    server_model: str | None = None,
    threads: int | None = None,
    gpu_layers: int = 0,
    parallel: int | None = None,
    device: str = "auto",
    store=None,
) -> Models:
    """Choose the models: a GGUF by name or path (``llm``), or an OpenAI-compatible server on your network
    (``server_url``); a sentence-transformers ``embedder``; the description ``mode`` (auto, llm, grounded,
    facts); where the description ``store`` lives. Loading happens on first use."""
    choice = ModelSettings(
        mode=mode,
        llm=llm,
        embedder=embedder,
        models_dir=models_dir,
        server_url=server_url,
        server_model=server_model,
        threads=threads,
        gpu_layers=gpu_layers,
        parallel=parallel,
        device=device,
    )
    return Models(choice=choice, store_path=Path(store) if store is not None else None)


_DEFAULT: Models | None = None


def default() -> Models:
    """The embedded default models (mode auto), opened once per process."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load()
    return _DEFAULT


def available(models_dir=None) -> pd.DataFrame:
    """Installed models: name, kind, path, size, sha256, whether the hash matches the manifest, default."""
    from scelmo_desktop.backends import registry

    return pd.DataFrame([m.as_dict() for m in registry.list_models(models_dir)])
