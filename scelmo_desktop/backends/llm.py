"""The LLM protocol: ``generate(prompt, params) -> Generation`` and ``info() -> dict``.

Any backend (llama.cpp in process, later a local OpenAI-compatible server, or a fake in a fast unit test)
fits behind it, so the description step, the CLI and the GUI all use the same objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol


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
    def generate(self, prompt: str, params: GenerationParams, cancel=None) -> Generation:
        """``cancel`` (optional, anything with ``is_set()``): stop mid-answer by raising ``Cancelled``."""
        ...

    def info(self) -> dict:
        """At least ``name``, ``sha256`` (of the model file) and ``chat_format``."""
        ...
