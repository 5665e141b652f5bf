"""The protocols core computes against, owned by the layer that uses them (magicgui keeps its backend protocols
the same way): an LLM (``generate``/``generate_many``/``info``), a text embedder (``embed``/``info``) and the
:class:`LLMSource` that names an LLM now and loads it only when a description is missing.

Implementations live in the backends package (llama.cpp in process, an OpenAI-compatible server,
sentence-transformers); a test may pass any object with these methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

# decoding parameters and the LLM's parallelism are settings; the backends take them from here too
from scelmo_desktop.core.settings import DEFAULT_LLM_BATCH, DEFAULT_SERVER_PARALLEL, GenerationParams  # noqa: E402,F401


@dataclass(frozen=True)
class Generation:
    """One LLM answer: its text, the number of tokens generated and the seconds it took."""

    text: str
    n_tokens: int
    seconds: float


class LLMBackend(Protocol):
    """An LLM as core uses it: one answer, a batch of answers as they end, and the model's identity."""

    parallel: int  # answers produced together (batch size in process, concurrent requests for a server)

    def generate(self, prompt: str, params: GenerationParams, cancel=None) -> Generation:
        """``cancel`` (optional, anything with ``is_set()``): stop mid-answer by raising ``Cancelled``."""
        ...

    def generate_many(
        self, prompts: list[str], params: GenerationParams, cancel=None
    ) -> Iterator[tuple[int, Generation]]:
        """``(index into prompts, answer)`` as each answer ends, in any order, ``parallel`` at a time."""
        ...

    def info(self) -> dict:
        """At least ``name``, ``sha256`` (of the model file) and ``chat_format``."""
        ...


class Embedder(Protocol):
    """A text embedder: ``embed`` turns texts into (n, ``dim``) vectors; ``id`` keys the embedding cache."""

    id: str  # stable identity of the model weights; part of every embedding cache key
    dim: int

    def embed(self, texts: list[str], *, batch_size: int = 8) -> np.ndarray: ...

    def info(self) -> dict: ...


@dataclass
class LLMSource:
    """The LLM as the pipeline needs it: identity now, the loaded model only if something is missing."""

    name: str
    sha256: str
    factory: Callable[[], LLMBackend]
    info: dict = field(default_factory=dict)

    def describe(self) -> dict:
        """Identity plus, when the model was loaded in this run, the backend's own report (threads, layers…)."""
        loaded = getattr(self.factory, "backend", None)
        return {**self.info, **(loaded.info() if loaded is not None else {}), "name": self.name, "sha256": self.sha256}
