"""CellTypist baseline for the annotation benchmarks (benchmark-only: never installed into the app's ``.venv``).

``ensure_celltypist()`` installs ``celltypist==1.7.1`` with ``pip install --no-deps --target benchmarks/.bench-deps``
(plus the few of its declared runtime dependencies that ``.venv`` lacks, pinned, also ``--no-deps``) and appends
that folder at the END of ``sys.path``, so every package the app already has (numpy, scanpy, scikit-learn, ...)
keeps winning over anything in the folder.

``celltypist_annotate()`` follows CellTypist's documented custom-model route: log1p-normalise both sets to 10,000
counts per cell (on all genes, as CellTypist asks), restrict both to the shared genes, ``celltypist.train`` on the
reference and ``celltypist.annotate`` the query with the trained ``Model`` object (best match, no majority voting).

Network: CellTypist only downloads when asked for a named/default model (``Model.load`` -> ``get_all_models`` ->
``download_if_required``); passing the trained ``Model`` object to ``annotate`` skips ``Model.load`` entirely, and
nothing is fetched at import. Its only environment knob is ``CELLTYPIST_FOLDER`` (where it creates
``data/models`` at import); it is pointed inside ``benchmarks/.bench-deps`` so nothing is written to ``~``. There
is no env var to disable downloads; as a belt-and-braces guard, the download helpers are replaced by functions
that raise.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/celltypist_baseline.py`` (PBMC 3k -> Kang control).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEPS_DIR = Path(__file__).resolve().parent / ".bench-deps"
CELLTYPIST_VERSION = "1.7.1"
# celltypist 1.7.1 Requires-Dist: numpy, pandas, scikit-learn, openpyxl, click, requests, scanpy, leidenalg.
# The app's .venv provides numpy/pandas/scikit-learn/scanpy/leidenalg/click but NOT requests (which
# ``celltypist.models`` imports at import time, for its model downloads) nor openpyxl (xlsx export only).
# These pins (distribution, version, import name), with requests' and openpyxl's own dependencies, are each
# installed --no-deps into DEPS_DIR only when .venv cannot import them; click and idna are fallbacks.
EXTRA_PINS: tuple[tuple[str, str, str], ...] = (
    ("requests", "2.32.5", "requests"),
    ("urllib3", "2.5.0", "urllib3"),
    ("charset-normalizer", "3.4.3", "charset_normalizer"),
    ("certifi", "2025.8.3", "certifi"),
    ("idna", "3.10", "idna"),
    ("openpyxl", "3.1.5", "openpyxl"),
    ("et-xmlfile", "2.0.0", "et_xmlfile"),
    ("click", "8.1.8", "click"),
)
# CellTypist's recommended custom-model setting (README "Two-pass data training incorporating feature selection"
# and the official tutorial's ``celltypist.train(adata_2000, labels='cell_type', feature_selection=True)``):
# an SGD pass picks the top 300 genes (|coef|) per cell type, then the classifier is retrained on their union.
FEATURE_SELECTION = True
TOP_GENES = 300
_ENSURED = False


def _venv_python() -> str:
    candidate = REPO / ".venv" / "bin" / "python"
    return str(candidate) if candidate.is_file() else sys.executable


def _dist_info(name: str, version: str) -> bool:
    stem = name.replace("-", "_").lower()
    return any(p.name.lower() == f"{stem}-{version}.dist-info" for p in DEPS_DIR.glob("*.dist-info"))


def _missing_in_venv(import_names: list[str]) -> set[str]:
    """The import names the app's .venv cannot import by itself (checked in a clean .venv interpreter)."""
    code = (
        "import importlib.util, sys\n"
        "for name in sys.argv[1:]:\n"
        "    if importlib.util.find_spec(name) is None: print(name)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [_venv_python(), "-c", code, *import_names],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(REPO / "benchmarks"),
    )
    if done.returncode != 0:
        raise RuntimeError(f"could not inspect {_venv_python()}: {done.stderr.strip()[-1000:]}")
    return set(done.stdout.split())


def _pip_target(requirements: list[str]) -> None:
    if not requirements:
        return
    DEPS_DIR.mkdir(parents=True, exist_ok=True)
    command = [
        _venv_python(),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-compile",
        "--target",
        str(DEPS_DIR),
        *requirements,
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"pip install --target {DEPS_DIR} {' '.join(requirements)} failed:\n{done.stderr.strip()[-2000:]}"
        )


def ensure_celltypist() -> Path:
    """Install celltypist (+ missing pinned runtime deps) into ``benchmarks/.bench-deps`` once; put it last on
    ``sys.path``; return the folder. Idempotent: already-present pinned dist-infos are not reinstalled."""
    global _ENSURED
    if _ENSURED and str(DEPS_DIR) in sys.path:
        return DEPS_DIR
    wanted: list[str] = []
    if not _dist_info("celltypist", CELLTYPIST_VERSION):
        wanted.append(f"celltypist=={CELLTYPIST_VERSION}")
    not_in_target = [pin for pin in EXTRA_PINS if not _dist_info(pin[0], pin[1])]
    if not_in_target:
        missing = _missing_in_venv([pin[2] for pin in not_in_target])
        wanted += [f"{name}=={version}" for name, version, import_name in not_in_target if import_name in missing]
    _pip_target(wanted)
    folder = str(DEPS_DIR)
    if folder not in sys.path:
        sys.path.append(folder)  # last: the app's own packages win every name clash
    importlib.invalidate_caches()
    _ENSURED = True
    return DEPS_DIR


def _import_celltypist():
    """Import celltypist offline, quietly, with its model folder inside DEPS_DIR."""
    ensure_celltypist()
    os.environ.setdefault("CELLTYPIST_FOLDER", str(DEPS_DIR / "celltypist-home"))
    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scanpy's deprecated __version__, read at import
        import celltypist
        from celltypist import models as ct_models

    # celltypist.logger calls logging.basicConfig(level=INFO) at import: undo that and silence its own logger
    for handler in list(root.handlers):
        if handler not in root_handlers:
            root.removeHandler(handler)
    root.setLevel(root_level)
    logging.getLogger("celltypist").setLevel(logging.ERROR)
    logging.getLogger("celltypist.logger").setLevel(logging.ERROR)

    def _no_network(*_args, **_kwargs):
        raise RuntimeError("celltypist_baseline: CellTypist tried to download models; this benchmark is offline")

    for name in ("download_models", "download_model_index", "download_if_required", "_requests_get"):
        setattr(ct_models, name, _no_network)
    return celltypist


def _log1p_cp10k(adata):
    import scanpy as sc

    out = adata.copy()
    out.X = out.X.astype(np.float32)
    sc.pp.normalize_total(out, target_sum=1e4)
    sc.pp.log1p(out)
    return out


def celltypist_annotate(reference, query, label_key: str, *, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Train CellTypist on ``reference`` (raw counts in ``.X``, labels in ``obs[label_key]``) and predict ``query``
    (raw counts). Returns (predicted labels as a str array in query cell order, settings/timing dict)."""
    import warnings

    celltypist = _import_celltypist()
    ref = _log1p_cp10k(reference)
    qry = _log1p_cp10k(query)
    ref.var_names_make_unique()
    qry.var_names_make_unique()
    shared = ref.var_names.intersection(qry.var_names)
    if len(shared) == 0:
        raise ValueError("reference and query share no gene names")
    ref = ref[:, shared].copy()
    qry = qry[:, shared].copy()
    labels = ref.obs[label_key].astype(str).to_numpy()

    settings = dict(
        use_SGD=True,
        feature_selection=FEATURE_SELECTION,
        top_genes=TOP_GENES,
        check_expression=False,
        n_jobs=1,
        random_state=seed,
    )
    np.random.seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        model = celltypist.train(ref, labels=labels, **settings)
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        result = celltypist.annotate(qry, model=model, majority_voting=False, mode="best match")
        annotate_s = time.perf_counter() - start
    predicted = result.predicted_labels["predicted_labels"].astype(str).reindex(qry.obs_names).to_numpy(dtype=str)
    info = {
        "celltypist_version": celltypist.__version__,
        "train": settings,
        "annotate": {"majority_voting": False, "mode": "best match"},
        "preprocessing": "normalize_total(target_sum=1e4) + log1p on all genes, then restrict to shared genes",
        "n_shared_genes": int(len(shared)),
        "n_model_features": int(len(model.features)),
        "train_seconds": round(train_s, 3),
        "annotate_seconds": round(annotate_s, 3),
        "deps_dir": str(DEPS_DIR),
    }
    return predicted, info


def main() -> None:
    from sklearn.metrics import accuracy_score, f1_score

    sys.path.insert(0, str(REPO / "tests"))
    import real_files as real_data

    start = time.perf_counter()
    pbmc = real_data.load("pbmc3k")
    kang = real_data.load("kang")
    reference = pbmc[pbmc.obs["label"].notna()].copy()
    query = kang[(kang.obs["condition"] == "control").to_numpy() & kang.obs["label"].notna().to_numpy()].copy()
    del pbmc, kang
    load_s = time.perf_counter() - start
    print(
        f"reference PBMC 3k: {reference.n_obs} cells x {reference.n_vars} genes; "
        f"query Kang control: {query.n_obs} cells x {query.n_vars} genes (loaded in {load_s:.1f} s)"
    )

    start = time.perf_counter()
    predicted, info = celltypist_annotate(reference, query, "label", seed=0)
    total_s = time.perf_counter() - start
    truth = query.obs["label"].astype(str).to_numpy()
    accuracy = accuracy_score(truth, predicted)
    macro_f1 = f1_score(truth, predicted, average="macro")
    print(
        f"CellTypist {info['celltypist_version']}  accuracy {accuracy:.3f}  macro-F1 {macro_f1:.3f}  "
        f"train {info['train_seconds']:.1f} s  annotate {info['annotate_seconds']:.1f} s  total {total_s:.1f} s"
    )
    print(f"settings: {info}")


if __name__ == "__main__":
    main()
