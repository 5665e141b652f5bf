"""Numba's compiled code is kept between runs (scelmo_desktop.core._infra.compile_cache).

Each check runs in a fresh interpreter: enabling the cache changes numba for the whole process, and the point is
what a *second* process finds.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

# A library module as UMAP and pynndescent write theirs: numba functions with no cache=True, one declared with a
# signature (compiled at import), one lazily, and one that cannot be cached (made by exec, so it has no source
# file): that one must still compile and run.
LIBRARY = textwrap.dedent(
    """
    import numba
    import numpy as np

    @numba.njit("float64(float64[:])")
    def eager_sum(x):
        return x.sum()

    @numba.njit()
    def lazy_square(x):
        return x * x

    namespace = {"numba": numba}
    exec("@numba.njit\\ndef no_source(x):\\n    return x + 1", namespace)
    no_source = namespace["no_source"]
    """
)

CHECK = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from scelmo_desktop.core._infra.compile_cache import enable_compile_cache
    folder = enable_compile_cache()
    import fake_library as lib
    values = [lib.eager_sum(np.ones(3)), lib.lazy_square(3.0), lib.no_source(1)]
    hits = {name: getattr(lib, name).stats.cache_hits for name in ("eager_sum", "lazy_square", "no_source")}
    print(json.dumps({"folder": str(folder), "values": values, "hits": {k: sum(v.values()) for k, v in hits.items()}}))
    """
)


def _run_check(tmp_path, env_extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(PYTHONPATH=os.pathsep.join([str(tmp_path / "lib"), env.get("PYTHONPATH", "")]), **env_extra)
    done = subprocess.run(
        [sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def library(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "fake_library.py").write_text(LIBRARY)
    return tmp_path


def test_a_second_process_loads_what_the_first_compiled(library):
    env = {"SCELMO_CACHE_DIR": str(library / "cache")}
    first = _run_check(library, env)
    assert first["folder"] == str(library / "cache" / "numba")
    assert first["values"] == [3.0, 9.0, 2]
    assert first["hits"] == {"eager_sum": 0, "lazy_square": 0, "no_source": 0}
    written = {p.name.split(".")[0] for p in (library / "cache" / "numba").rglob("*.nbi")}
    assert {"fake_library"} <= {name.split("-")[0] for name in written}, written

    second = _run_check(library, env)
    assert second["values"] == first["values"]
    assert second["hits"]["eager_sum"] >= 1 and second["hits"]["lazy_square"] >= 1  # loaded, not compiled
    assert second["hits"]["no_source"] == 0  # compiled every time, as before: never an error


def test_numba_cache_dir_set_by_the_user_is_kept(library):
    chosen = library / "it-department-choice"
    result = _run_check(library, {"NUMBA_CACHE_DIR": str(chosen), "SCELMO_CACHE_DIR": str(library / "cache")})
    assert result["folder"] == str(chosen)
    assert list(chosen.rglob("*.nbi")) and not (library / "cache" / "numba").exists()


def test_a_fresh_users_first_run_starts_from_the_install_time_copy(library, monkeypatch):
    from scelmo_desktop.core._infra import compile_cache

    install = library / "install"
    seed_run = _run_check(library, {"NUMBA_CACHE_DIR": str(install / "numba")})  # what set-up leaves behind
    assert seed_run["hits"]["lazy_square"] == 0
    monkeypatch.setattr(compile_cache, "install_cache_dir", lambda: install)
    user = library / "user" / "numba"
    compile_cache._seed_from_install(user)
    seeded = sorted(p.relative_to(install / "numba") for p in (install / "numba").rglob("*.nb[ic]"))
    assert seeded and sorted(p.relative_to(user) for p in user.rglob("*.nb[ic]")) == seeded

    # a user folder that already holds its own entry for a function: that function is left alone, the rest seeded
    other = library / "other" / "numba"
    own = next(p for p in seeded if "lazy_square" in p.name and p.suffix == ".nbi")
    (other / own).parent.mkdir(parents=True)
    (other / own).write_text("the user's own index")
    compile_cache._seed_from_install(other)
    assert (other / own).read_text() == "the user's own index"
    assert not [p for p in other.rglob("*lazy_square*.nbc")]
    assert [p for p in other.rglob("*eager_sum*.nbc")] and [p for p in other.rglob("*eager_sum*.nbi")]


def test_the_install_warm_up_caches_the_default_runs_compiled_code(tmp_path, monkeypatch):
    """The real warm-up (QC with Scrublet, kNN above 4,096 cells, Leiden, UMAP, markers) into an install folder:
    UMAP's and pynndescent's code must be there, and readable by every account."""
    from scelmo_desktop.core._infra import compile_cache

    monkeypatch.setattr(compile_cache, "install_cache_dir", lambda: tmp_path / "install")
    folder = compile_cache.warm_install_compile_cache()
    assert folder == tmp_path / "install" / "numba"
    packages = {p.name.split("_")[0] for p in folder.iterdir()}
    assert {"umap", "pynndescent"} <= packages, packages
    assert all(p.stat().st_mode & 0o004 for p in folder.rglob("*"))
