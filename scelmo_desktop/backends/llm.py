"""The LLM protocol: ``generate(prompt, params) -> Generation`` and ``info() -> dict``.

Any backend (llama.cpp in process, later a local OpenAI-compatible server, or a fake in a fast unit test)
fits behind it, so the description step, the CLI and the GUI all use the same objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from collections.abc import Iterator
from typing import Protocol

DEFAULT_LLM_BATCH = 8  # sequences decoded together in process (benchmarks/bench_llm_batch.py: the curve's knee)
DEFAULT_SERVER_PARALLEL = 4  # concurrent requests to a server


@dataclass(frozen=True)
class GenerationParams:
    """Decoding settings. Deterministic by default: greedy decoding (temperature 0) with a fixed seed."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 40
    repeat_penalty: float = 1.1
    seed: int = 0
    max_tokens: int = 160
    stop: tuple[str, ...] = field(default=("\n\n", "<end_of_turn>"))

    def as_dict(self) -> dict:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data


@dataclass(frozen=True)
class Generation:
    text: str
    n_tokens: int
    seconds: float


class LLMBackend(Protocol):
    parallel: int  # answers produced together (batch size in process, concurrent requests for a server)

    def generate(self, prompt: str, params: GenerationParams, cancel=None) -> Generation:
        """``cancel`` (optional, anything with ``is_set()``): stop mid-answer by raising ``Cancelled``."""
        ...

    def generate_many(self, prompts: list[str], params: GenerationParams,
                      cancel=None) -> Iterator[tuple[int, Generation]]:
        """``(index into prompts, answer)`` as each answer ends, in any order, ``parallel`` at a time."""
        ...

    def info(self) -> dict:
        """At least ``name``, ``sha256`` (of the model file) and ``chat_format``."""
        ...
