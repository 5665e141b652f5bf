"""Model packs: one zip that carries a model across the air gap with everything needed to trust it.

A pack holds the GGUF file (or the sentence-transformers folder) and ``scelmo-model-pack.json``: the model's
manifest entry (name, kind, licence, sha256, recommended settings such as the chat format and description mode)
and the sha256 of every file. Members are stored uncompressed (GGUF weights do not compress) and hashed while
streaming, so multi-GB models never sit in memory.

Import verifies every file before anything lands in the models folder: members are extracted into a temporary
folder inside the models folder, hashed, and only renamed into place when every hash matches; the entry then
joins ``imported.json`` beside the shipped ``manifest.json`` (so the model counts as verified from then on).
Member names are checked: nothing may escape the models folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from scelmo_desktop.core._infra.atomic import atomic_path, write_text_atomic
from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.provenance import now_iso

PACK_MANIFEST = "scelmo-model-pack.json"
IMPORTED = "imported.json"
CHUNK = 8 << 20


def _files_of(info) -> tuple[Path, list[Path]]:
    """The base folder and the files that make up the model."""
    path = Path(info.path)
    if info.kind == "gguf":
        return path.parent, [path]
    return path.parent, sorted(p for p in path.rglob("*") if p.is_file())


def export_model_pack(info, target: str | Path, *, license_text: str | None = None, notes: str = "") -> dict:
    base, files = _files_of(info)
    entry = {
        "name": info.name,
        "kind": info.kind,
        "file": Path(info.path).name,
        "license": license_text or info.license or "unknown: check before sharing",
        "chat_format": info.chat_format,
        "default_mode": info.default_mode,
        "notes": notes,
        "source": f"model pack exported {now_iso()} from {info.source}",
    }
    entry["sha256" if info.kind == "gguf" else "weights_sha256"] = info.sha256
    hashes = {}
    with atomic_path(target) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for file in files:
                name = file.relative_to(base).as_posix()
                digest = hashlib.sha256()
                with open(file, "rb") as source, archive.open(name, "w", force_zip64=True) as sink:
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        sink.write(chunk)
                hashes[name] = digest.hexdigest()
            manifest = {"format": "scelmo-model-pack", "version": 1, "model": entry, "files": hashes}
            archive.writestr(PACK_MANIFEST, json.dumps(manifest, indent=2))
    return manifest


def _safe_member(name: str) -> PurePosixPath:
    member = PurePosixPath(name)
    if member.is_absolute() or ".." in member.parts or not member.parts:
        raise ScelmoError(f"Refused model pack member '{name}': it would be written outside the models folder.")
    return member


def read_pack_manifest(archive: zipfile.ZipFile, path: Path) -> dict:
    try:
        manifest = json.loads(archive.read(PACK_MANIFEST))
    except KeyError:
        raise ScelmoError(f"{path} is not a scELMo model pack (no {PACK_MANIFEST}).") from None
    except ValueError as exc:
        raise ScelmoError(f"{path}: {PACK_MANIFEST} is not valid JSON ({exc}).") from exc
    if manifest.get("format") != "scelmo-model-pack" or not isinstance(manifest.get("files"), dict):
        raise ScelmoError(f"{path} is not a scELMo model pack (wrong format marker).")
    return manifest


def import_model_pack(path: str | Path, folder: str | Path) -> dict:
    """Verify and install a pack into ``folder``; returns the model's manifest entry."""
    path, folder = Path(path), Path(folder)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ScelmoError(f"{path} is not a readable model pack ({exc}).") from exc
    with archive:
        manifest = read_pack_manifest(archive, path)
        entry = manifest["model"]
        top = _safe_member(entry["file"]).parts[0]
        if (folder / top).exists():
            raise ScelmoError(f"{folder / top} already exists; remove it first to re-import this model.")
        members = {name: _safe_member(name) for name in manifest["files"]}
        present = set(archive.namelist()) - {PACK_MANIFEST}
        if present != set(members):
            raise ScelmoError(
                f"{path}: the files in the pack do not match its manifest "
                f"(extra: {sorted(present - set(members))[:3]}, missing: {sorted(set(members) - present)[:3]})."
            )
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".import-", dir=folder))
        try:
            for name, member in members.items():
                destination = staging.joinpath(*member.parts)
                destination.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with archive.open(name) as source, open(destination, "wb") as sink:
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        sink.write(chunk)
                if digest.hexdigest() != manifest["files"][name]:
                    raise ScelmoError(
                        f"{path}: '{name}' does not match its sha256 in the pack; the pack was altered "
                        "or damaged in transfer. Nothing was installed."
                    )
            (staging / top).rename(folder / top)
        except OSError as exc:
            raise ScelmoError(f"Could not install into {folder}: {exc}. Nothing was installed.") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    imported = load_imported(folder)
    imported = [e for e in imported if e.get("file") != entry["file"]] + [entry]
    write_text_atomic(folder / IMPORTED, json.dumps({"format": 1, "models": imported}, indent=2))
    return entry


def load_imported(folder: Path) -> list[dict]:
    path = Path(folder) / IMPORTED
    if not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text(encoding="utf-8")).get("models", []))
    except (ValueError, AttributeError) as exc:
        raise ScelmoError(f"{path} is not valid JSON ({exc}); fix or delete it.") from exc
