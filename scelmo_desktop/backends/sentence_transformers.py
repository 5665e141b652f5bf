"""sentence-transformers loaded from a local folder (never from a hub)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from scelmo_desktop.backends.registry import embedder_id
from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.hardware import torch_device

REQUIRED_FILES = ("config.json", "modules.json")
# Texts per forward pass. encode() sorts texts by length, so small batches pad little and, on a CPU, a small
# batch is faster than larger ones on description-length texts (benchmarks/bench_embedder.py compares sizes).
DEFAULT_BATCH_SIZE = 8
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def check_sentence_transformers_folder(path: Path) -> Path:
    """Return the weights file; raise a clear error when the folder is not a complete model."""
    if not path.is_dir():
        raise ScelmoError(f"Embedder folder not found: {path}. Give a sentence-transformers model folder.")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    weights = [path / name for name in WEIGHT_FILES if (path / name).is_file()]
    if missing or not weights:
        missing += [] if weights else ["model.safetensors (or pytorch_model.bin)"]
        raise ScelmoError(f"{path} is not a complete sentence-transformers folder: missing {', '.join(missing)}.")
    return weights[0]


class SentenceTransformersEmbedder:
    def __init__(self, folder: str | Path, *, sha256: str, device: str = "auto", name: str | None = None):
        import torch  # noqa: F401  (torch before anything Qt, for Windows; see ANCHORS B#11)
        from sentence_transformers import SentenceTransformer

        self.folder = Path(folder)
        check_sentence_transformers_folder(self.folder)
        self.device = torch_device(device)
        self.name = name or self.folder.name
        self.sha256 = sha256
        self.id = embedder_id(self.name, sha256)
        try:
            self._model = SentenceTransformer(str(self.folder), device=self.device, local_files_only=True)
        except Exception as exc:
            raise ScelmoError(f"sentence-transformers could not load {self.folder}: {exc}") from exc
        dimension = (
            getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        )
        self.dim = int(dimension())
        self.max_seq_length = int(self._model.max_seq_length)

    def embed(self, texts: list[str], *, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """One vector per text. A text longer than the model's window is embedded in sentence chunks that fit,
        and the chunk vectors are averaged (instead of silently truncating it)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        pieces, owners = [], []
        for index, text in enumerate(texts):
            chunks = self.chunks(text)
            pieces += chunks
            owners += [index] * len(chunks)
        vectors = np.asarray(
            self._model.encode(pieces, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False),
            dtype=np.float32,
        )
        if len(pieces) == len(texts):
            return vectors
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        np.add.at(out, owners, vectors)
        out /= np.bincount(owners, minlength=len(texts))[:, None]
        if np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3):  # the model normalises: keep unit length
            out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    def chunks(self, text: str) -> list[str]:
        """``text`` itself when it fits the window, else consecutive groups of sentences that each fit."""
        limit = self.max_seq_length - 2  # room for the [CLS]/[SEP] special tokens
        if self.count_tokens(text) <= self.max_seq_length:
            return [text]
        groups, current = [], []
        for sentence in re.split(r"(?<=[.;!?])\s+", text):
            words = sentence.split()
            while words:  # a single sentence longer than the window is cut by words
                take = len(words)
                while take > 1 and self.count_tokens(" ".join(words[:take]), special=False) > limit:
                    take = max(1, take * 2 // 3)
                piece = " ".join(words[:take])
                words = words[take:]
                if current and self.count_tokens(" ".join([*current, piece]), special=False) > limit:
                    groups.append(" ".join(current))
                    current = []
                current.append(piece)
        if current:
            groups.append(" ".join(current))
        return groups

    def count_tokens(self, text: str, *, special: bool = True) -> int:
        return len(self._model.tokenizer(text, add_special_tokens=special)["input_ids"])

    def info(self) -> dict:
        return {
            "backend": "sentence-transformers",
            "name": self.name,
            "path": str(self.folder),
            "id": self.id,
            "sha256": self.sha256,
            "dim": self.dim,
            "max_seq_length": self.max_seq_length,
            "device": self.device,
        }
