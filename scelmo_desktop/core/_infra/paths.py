"""Where things live: the bundled resources, the models folder and the user's data folder.

Every location can be overridden by an environment variable so that tests, CI and IT departments can point
the app elsewhere without editing code.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[2]  # scelmo_desktop/
REPO_DIR = PACKAGE_DIR.parent
SHARE_DIR = Path(sys.prefix) / "share" / "scelmo-desktop"  # where a wheel install puts resources and manifest


def resources_dir() -> Path:
    """Prompt templates and icons: ``resources/`` beside the package (source checkout) or inside it (wheel)."""
    for candidate in (PACKAGE_DIR / "resources", REPO_DIR / "resources", SHARE_DIR / "resources"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("resources/ folder not found next to the scelmo_desktop package")


def docs_dir() -> Path:
    """The user guide and the other ``docs/*.md`` pages: ``docs/`` of a source checkout (or beside the package in
    a frozen bundle), else the copy a wheel install puts in ``<prefix>/share/scelmo-desktop/docs``."""
    for candidate in (REPO_DIR / "docs", PACKAGE_DIR / "docs", SHARE_DIR / "docs"):
        if (candidate / "guide.md").is_file():
            return candidate
    raise FileNotFoundError("docs/ folder (guide.md) not found next to the scelmo_desktop package")


def install_cache_dir() -> Path:
    """Derived data made once at install time (``<prefix>/share/scelmo-desktop/cache``, e.g. the gene catalog
    parsed from the knowledge packages), read when the user's :func:`cache_dir` has no copy yet: a fresh
    install's first run then does not pay for it."""
    return SHARE_DIR / "cache"


def user_data_dir() -> Path:
    """Per-user folder for the description store and settings (``SCELMO_HOME`` overrides)."""
    if os.environ.get("SCELMO_HOME"):
        return Path(os.environ["SCELMO_HOME"]).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
        return base / "scELMo Desktop"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "scELMo Desktop"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "scelmo-desktop"


def models_dir() -> Path:
    """The folder users drop GGUF files and sentence-transformers folders into.

    ``SCELMO_MODELS_DIR`` overrides; a source checkout uses its own ``models/`` (it holds the manifest);
    an installed app uses ``<user data>/models``.
    """
    if os.environ.get("SCELMO_MODELS_DIR"):
        return Path(os.environ["SCELMO_MODELS_DIR"]).expanduser()
    if (REPO_DIR / "models" / "manifest.json").is_file():
        return REPO_DIR / "models"
    return user_data_dir() / "models"


def shipped_manifest() -> Path | None:
    """The models manifest that ships with the app: the checkout's, or the installed copy."""
    for candidate in (REPO_DIR / "models" / "manifest.json", SHARE_DIR / "models" / "manifest.json"):
        if candidate.is_file():
            return candidate
    return None


def default_store_path() -> Path:
    """The description store: ``store.sqlite`` in the user data folder."""
    return user_data_dir() / "store.sqlite"


def cache_dir() -> Path:
    """Derived data that can be rebuilt at any time (``SCELMO_CACHE_DIR`` overrides). Kept apart from the user
    data folder so that several projects (and the test suite) share one copy."""
    if os.environ.get("SCELMO_CACHE_DIR"):
        return Path(os.environ["SCELMO_CACHE_DIR"]).expanduser()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "scELMo Desktop" / "cache"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "scelmo-desktop"
