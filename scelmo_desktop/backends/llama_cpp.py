"""llama.cpp in process (llama-cpp-python), reading a local GGUF file. Nothing is downloaded.

The chat template is read from the GGUF metadata (``tokenizer.chat_template``). Files without one (the
embedded Gemma 3 270M is a base model) get a format guessed from ``general.architecture``; a per-model
override (manifest ``chat_format`` or ``--chat-format``) wins over both.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.hardware import default_threads
from scelmo_desktop.core._infra.jobs import check_cancel
from scelmo_desktop.core.protocols import Generation, GenerationParams

GGUF_MAGIC = b"GGUF"

# Chat formats known to llama-cpp-python, by GGUF architecture, for files that carry no template.
ARCHITECTURE_CHAT_FORMATS = {
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "llama": "llama-3",
    "mistral": "mistral-instruct",
    "qwen2": "chatml",
    "qwen3": "chatml",
    "phi3": "chatml",
}
FALLBACK_CHAT_FORMAT = "chatml"


SUPPORTED_GGUF_VERSIONS = (2, 3)


def check_gguf(path: Path) -> None:
    if not path.is_file():
        raise ScelmoError(f"Model file not found: {path}. Run 'scelmo models' to see the models folder contents.")
    with open(path, "rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise ScelmoError(f"{path} is not a GGUF model file (wrong magic bytes). Use a llama.cpp .gguf file.")
        version = int.from_bytes(handle.read(4), "little")
    if version not in SUPPORTED_GGUF_VERSIONS:
        raise ScelmoError(
            f"{path} is GGUF version {version}; this llama.cpp reads versions "
            f"{', '.join(map(str, SUPPORTED_GGUF_VERSIONS))}. The file is corrupt or from an unsupported tool."
        )


def resolve_chat_format(metadata: dict, override: str | None) -> str | None:
    """The chat format to use: the override, else ``None`` (the file's own template), else a guess."""
    if override:
        return override
    if metadata.get("tokenizer.chat_template"):
        return None
    architecture = str(metadata.get("general.architecture", "")).lower()
    return ARCHITECTURE_CHAT_FORMATS.get(architecture, FALLBACK_CHAT_FORMAT)


@contextlib.contextmanager
def _captured_native_stderr(enabled: bool):
    """Capture what llama.cpp's C code writes to fd 2 while loading (it ignores Python's logging there).

    Yields a list that receives the captured text, so a failed load can quote llama.cpp's own reason.
    """
    captured: list[str] = []
    if not enabled:
        yield captured
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", errors="replace"))


class LlamaCppBackend:
    """A GGUF model loaded once and used for many prompts."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        sha256: str,
        chat_format: str | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        name: str | None = None,
        verbose: bool = False,
        parallel: int = 1,
    ):
        from llama_cpp import Llama

        self.path = Path(model_path)
        check_gguf(self.path)
        self.sha256 = sha256
        self.name = name or self.path.name
        self.n_threads = n_threads or default_threads()
        self.n_gpu_layers = n_gpu_layers
        if parallel < 1:
            raise ScelmoError(f"The LLM batch size must be at least 1 (got {parallel}).")
        self.parallel = parallel
        try:
            with _captured_native_stderr(not verbose) as native_log:
                self._llm = Llama(
                    model_path=str(self.path),
                    n_ctx=n_ctx,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    n_gpu_layers=n_gpu_layers,
                    verbose=verbose,
                )
        except (ValueError, RuntimeError) as exc:
            reason = " ".join("".join(native_log).split())[-300:]
            raise ScelmoError(
                f"llama.cpp could not load {self.path}: {exc} {reason}. The file may be truncated or of "
                "an architecture this llama.cpp build does not know."
            ) from exc
        resolved = resolve_chat_format(self._llm.metadata, chat_format)
        if resolved is not None:
            # Drop the handler llama-cpp-python guessed at load time so the resolved format is used.
            self._llm.chat_handler = None
            self._llm.chat_format = resolved
        self.chat_format = resolved or "gguf-template"
        self.n_ctx = n_ctx

    def generate(self, prompt: str, params: GenerationParams, cancel=None) -> Generation:
        """One answer. With a ``cancel`` flag the answer is streamed token by token and generation stops as soon
        as the flag is set (raising ``Cancelled``; nothing partial is returned), so Cancel in the app takes
        effect within a token, not after a whole description."""
        started = time.perf_counter()
        arguments = dict(
            messages=[{"role": "user", "content": prompt}],
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            repeat_penalty=params.repeat_penalty,
            max_tokens=params.max_tokens,
            stop=list(params.stop),
            seed=params.seed,
        )
        if cancel is None:
            result = self._llm.create_chat_completion(**arguments)
            text = (result["choices"][0]["message"]["content"] or "").strip()
            n_tokens = int(result["usage"]["completion_tokens"])
        else:
            pieces, n_tokens = [], 0
            for chunk in self._llm.create_chat_completion(**arguments, stream=True):
                check_cancel(cancel)
                content = chunk["choices"][0]["delta"].get("content")
                if content:
                    pieces.append(content)
                    n_tokens += 1
            text = "".join(pieces).strip()
        return Generation(text=text, n_tokens=n_tokens, seconds=time.perf_counter() - started)

    def generate_many(self, prompts: list[str], params: GenerationParams, cancel=None):
        """Yield ``(index, Generation)`` per prompt, ``parallel`` sequences decoded together
        (:mod:`scelmo_desktop.backends.llama_batch`), answers arriving as they end."""
        from scelmo_desktop.backends.llama_batch import BatchedGenerator

        yield from BatchedGenerator(self._llm, n_parallel=self.parallel).generate(prompts, params, cancel=cancel)

    def info(self) -> dict:
        return {
            "backend": "llama.cpp",
            "name": self.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "chat_format": self.chat_format,
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "n_gpu_layers": self.n_gpu_layers,
            "parallel": self.parallel,
            "architecture": self._llm.metadata.get("general.architecture"),
        }

    def close(self) -> None:
        self._llm.close()
