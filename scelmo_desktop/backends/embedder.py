"""The text-embedder protocol: ``embed(texts) -> float32 array (n, d)``, ``id`` and ``info()``."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Embedder(Protocol):
    id: str  # stable identity of the model weights; part of every embedding cache key
    dim: int

    def embed(self, texts: list[str], *, batch_size: int = 8) -> np.ndarray: ...

    def info(self) -> dict: ...
