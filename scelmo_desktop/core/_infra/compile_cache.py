"""Numba's compiled machine code, kept between runs.

UMAP and pynndescent (under scanpy's neighbours, UMAP and Scrublet) declare their numba functions without
``cache=True``, so every new process compiles them again: seconds of every first result, paid by each
``scelmo run`` and each app start (``docs/benchmarks.md`` has the measurement). Numba can keep the compiled code
on disk, keyed by the source file's time and size and the CPU, so a changed library or another machine
recompiles instead of loading stale code; it only has to be asked. :func:`enable_compile_cache` asks for every
function decorated after it runs, in the user's cache folder, seeded from the copy set-up made
(:func:`warm_install_compile_cache`) so that a fresh install's first run is already warm.

Only the doors (CLI, app, self-test) call it: importing ``scelmo_desktop`` as a library changes no global
numba behaviour in a user's own Python session.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

from scelmo_desktop.core._infra.paths import cache_dir, install_cache_dir

CACHE_ENV = "NUMBA_CACHE_DIR"  # numba's own variable: a user or IT department that sets it keeps its choice
FOLDER = "numba"
WARM_UP_MODULE = "scelmo_desktop.core.workflows.compile_warm_up"


def compile_cache_dir() -> Path:
    """Where this user's compiled code goes: ``NUMBA_CACHE_DIR`` when set, else ``<cache>/numba``."""
    return Path(os.environ[CACHE_ENV]).expanduser() if os.environ.get(CACHE_ENV) else cache_dir() / FOLDER


def enable_compile_cache(directory: Path | None = None) -> Path | None:
    """Make numba keep what it compiles in ``directory`` (default :func:`compile_cache_dir`) for every function
    decorated from now on, and return the folder; None when it cannot be written (nothing changes then).

    Call it before scanpy, UMAP or pynndescent are imported: functions they decorated earlier are not cached.
    """
    directory = Path(directory) if directory is not None else compile_cache_dir()
    _seed_from_install(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    os.environ[CACHE_ENV] = str(directory)  # read by numba when first imported, and by child processes
    import numba
    from numba.core import config, decorators

    config.CACHE_DIR = str(directory)  # numba may have been imported already; its locator reads this each time
    if not getattr(decorators.jit, "_scelmo_caches", False):
        decorators.jit = _caching(decorators.jit)  # numba.njit calls decorators.jit: both now cache
        numba.jit = decorators.jit
    # functions that close over dynamic objects cannot be cached; numba says so and compiles them as before
    warnings.filterwarnings("ignore", message=r"Cannot cache compiled function", category=numba.NumbaWarning)
    return directory


def _caching(jit):
    """``numba.jit`` with ``cache=True`` as the default; a function numba cannot cache (no source file, as in a
    frozen bundle) is compiled without, as it would have been."""

    @functools.wraps(jit)
    def jit_with_cache(*args, **kwargs):
        if "cache" in kwargs:
            return jit(*args, **kwargs)
        try:
            made = jit(*args, cache=True, **kwargs)
        except RuntimeError:  # jit(function): numba found no place to cache it
            return jit(*args, **kwargs)
        from numba.core.dispatcher import Dispatcher

        if isinstance(made, Dispatcher) or not callable(made):
            return made

        def decorate(function):  # jit(signature) or jit(): the decorator comes back first
            try:
                return made(function)
            except RuntimeError:
                return jit(*args, **kwargs)(function)

        return decorate

    jit_with_cache._scelmo_caches = True
    return jit_with_cache


def _seed_from_install(directory: Path) -> None:
    """Copy into the user's folder the functions set-up compiled that the folder lacks (a few MB, once; later
    starts copy nothing). A function is numba's index file (``.nbi``) with its data files, copied whole or not at
    all, never mixed with the user's own entries for it; numba's checks reject any of it that does not match this
    machine's libraries or CPU."""
    seed = install_cache_dir() / FOLDER
    if directory.resolve() == seed.resolve() or not seed.is_dir():
        return
    for folder in [seed, *(p for p in seed.rglob("*") if p.is_dir())]:
        target = directory / folder.relative_to(seed)
        have = [p.name for p in _files(target)]
        files = _files(folder)
        for index in (p for p in files if p.name.endswith(".nbi")):
            function = index.name[: -len(".nbi")]
            if any(name.startswith(function + ".") for name in have):  # the user's own entries: left alone
                continue
            try:
                target.mkdir(parents=True, exist_ok=True)
                for data in files:
                    if data.name.startswith(function + ".") and data.name.endswith(".nbc"):
                        shutil.copyfile(data, target / data.name)
                shutil.copyfile(index, target / index.name)  # last: an index never points at a data file not there
            except OSError:
                return  # a read-only or full disk: runs compile what is missing, as without the seed


def _files(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_file()]
    except OSError:
        return []


def warm_install_compile_cache(timeout: float = 600) -> Path | None:
    """Compile the neighbours, UMAP, Leiden, Scrublet and marker code once into the install's cache folder
    (``scelmo models install-defaults`` calls this, which set-up runs; a frozen bundle's installer does not), in a
    child process so that numba starts with that folder. Returns the folder,
    or None when it cannot be written or the warm-up failed (runs are then only slower the first time)."""
    if getattr(sys, "frozen", False):  # a frozen bundle has no source files for numba to key its cache on
        return None
    target = install_cache_dir() / FOLDER
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    env = {**os.environ, CACHE_ENV: str(target)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", WARM_UP_MODULE], env=env, capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    for path in target.rglob("*"):  # an all-users install: every account reads it
        try:
            path.chmod(0o755 if path.is_dir() else 0o644)
        except OSError:
            pass
    return target
