"""Trust on first use for model files the manifest does not list.

A GGUF dropped into the models folder has no expected sha256. The first time it is loaded its hash is recorded
in ``<user data>/known_models.json``; if the same path later holds a different file, loading is refused until
the user confirms the change with ``scelmo models trust NAME`` (a swapped model silently changes every
description and result).
"""

from __future__ import annotations

import json

from scelmo_desktop.core._infra.atomic import write_text_atomic
from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.paths import user_data_dir
from scelmo_desktop.core._infra.provenance import now_iso


def _path():
    return user_data_dir() / "known_models.json"


def _known() -> dict:
    path = _path()
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ScelmoError(
            f"{path} is not valid JSON ({exc}); delete it to start recording model hashes again."
        ) from exc


def record(info) -> None:
    known = _known()
    known[str(info.path)] = {"sha256": info.sha256, "name": info.name, "recorded_at": now_iso()}
    write_text_atomic(_path(), json.dumps(known, indent=2))


def check_first_use(info) -> str:
    """'manifest' (hash checked elsewhere), 'recorded' (first use, hash stored) or 'known' (same as before)."""
    if info.expected_sha256:
        return "manifest"
    seen = _known().get(str(info.path))
    if seen is None:
        record(info)
        return "recorded"
    if seen["sha256"] != info.sha256:
        raise ScelmoError(
            f"{info.path} has changed since it was first used on {seen['recorded_at']} (sha256 {seen['sha256'][:12]}… "
            f"then, {info.sha256[:12]}… now). If you replaced the model on purpose, run 'scelmo models trust "
            f"{info.name}'; otherwise restore the original file."
        )
    return "known"
