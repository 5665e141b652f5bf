"""A corpus of malformed inputs, generated here, each with the message it must get: exit code 2, one readable
line naming the problem, no traceback, and no output written."""

import gzip
import pickle
import zipfile

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scelmo_desktop import cli


def _adata(X, genes=None, obs=None):
    X = np.asarray(X, dtype=np.float32)
    genes = genes or [f"G{i}" for i in range(X.shape[1])]
    return ad.AnnData(
        X=sp.csr_matrix(X),
        obs=obs if obs is not None else pd.DataFrame(index=[f"c{i}" for i in range(X.shape[0])]),
        var=pd.DataFrame(index=genes),
    )


def h5ad(tmp, name, adata):
    path = tmp / name
    adata.write_h5ad(path)
    return path


def _good(tmp):
    return h5ad(
        tmp,
        "good.h5ad",
        _adata(
            np.random.default_rng(0).poisson(1, (20, 6)),
            genes=["CD3E", "CD4", "CD8A", "MS4A1", "LYZ", "NKG7"],
            obs=pd.DataFrame({"cell_type": ["T", "B"] * 10}, index=[f"c{i}" for i in range(20)]),
        ),
    )


def _truncated(tmp):
    good = _good(tmp)
    path = tmp / "truncated.h5ad"
    path.write_bytes(good.read_bytes()[:600])
    return path


def _pickle_bomb(tmp):
    class Boom:
        def __reduce__(self):
            return (print, ("owned",))

    path = tmp / "table.pkl"
    path.write_bytes(pickle.dumps({"CD3E": Boom()}))
    return path


def _mtx_folder(tmp, header):
    folder = tmp / "tenx"
    folder.mkdir()
    (folder / "matrix.mtx").write_text(f"%%MatrixMarket matrix coordinate integer general\n{header}\n1 1 1\n")
    (folder / "features.tsv").write_text("ENSG0001\tCD3E\tGene Expression\n")
    (folder / "barcodes.tsv").write_text("AAAC-1\n")
    return folder


def _gguf(tmp, content: bytes):
    path = tmp / "model.gguf"
    path.write_bytes(content)
    return path


def _corrupt_pack(tmp):
    path = tmp / "pack.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("manifest.json", "{not json")
    return path


def _cellranger(tmp, n_cells: int, seed: int = 0):
    """A Cell Ranger v3 .h5 of ``n_cells`` cells (its gene ids depend on ``seed``: two seeds share none)."""
    from cellranger_files import synthetic_run, write_h5_v3

    return write_h5_v3(synthetic_run(n_cells, 60, seed=seed), tmp / f"s{seed}" / "filtered_feature_bc_matrix.h5")


def _gz_text(tmp):
    path = tmp / "data.h5ad"
    path.write_bytes(gzip.compress(b"gene,cell\n"))
    return path


# (id, builder(tmp) -> argv, expected substring of the one-line error)
CASES = [
    ("missing file", lambda t: ["embed", t / "nope.h5ad"], "Data file not found"),
    ("Cell Ranger file with one cell", lambda t: ["run", _cellranger(t, 1), "--mode", "facts"], "1 cell(s)"),
    ("Cell Ranger file with two cells", lambda t: ["run", _cellranger(t, 2), "--mode", "facts"], "at least 10 cells"),
    (
        "two samples with no gene in common",
        lambda t: ["run", _cellranger(t, 30, seed=1), _cellranger(t, 30, seed=2), "--mode", "facts"],
        "no gene",
    ),
    (
        "text file named .h5ad",
        lambda t: ["embed", (t / "x.h5ad").write_text("hello") and t / "x.h5ad"],
        "not an HDF5 file",
    ),
    ("gzip named .h5ad", lambda t: ["embed", _gz_text(t)], "not an HDF5 file"),
    ("truncated h5ad", lambda t: ["embed", _truncated(t)], "truncated or corrupt"),
    (
        "unsupported suffix",
        lambda t: ["embed", (t / "x.xlsx").write_text("a") and t / "x.xlsx"],
        "unsupported file type",
    ),
    ("zero cells", lambda t: ["embed", h5ad(t, "e.h5ad", _adata(np.zeros((0, 3))))], "0 cells"),
    ("zero genes", lambda t: ["embed", h5ad(t, "e.h5ad", _adata(np.zeros((3, 0))))], "0 genes"),
    ("NaN values", lambda t: ["embed", h5ad(t, "n.h5ad", _adata([[1, np.nan], [0, 1]]))], "NaN or infinite"),
    ("infinite values", lambda t: ["embed", h5ad(t, "i.h5ad", _adata([[1, np.inf], [0, 1]]))], "NaN or infinite"),
    (
        "negative (scaled) values",
        lambda t: ["embed", h5ad(t, "s.h5ad", _adata([[1, -2.0], [0, 1]]))],
        "negative values",
    ),
    (
        "duplicated gene names",
        lambda t: ["embed", h5ad(t, "d.h5ad", _adata([[1, 2], [0, 1]], genes=["CD3E", "CD3E"]))],
        "occur more than once",
    ),
    (
        "empty gene name",
        lambda t: ["embed", h5ad(t, "g.h5ad", _adata([[1, 2], [0, 1]], genes=["CD3E", " "]))],
        "gene name(s) in var_names are empty",
    ),
    ("mtx header with impossible size", lambda t: ["embed", _mtx_folder(t, "99999999999 1 1")], "the file is corrupt"),
    ("mtx header unreadable", lambda t: ["embed", _mtx_folder(t, "rows cols")], "header"),
    ("folder without matrix", lambda t: ["embed", (t / "empty").mkdir() or t / "empty"], "without matrix.mtx"),
    ("missing layer", lambda t: ["embed", _good(t), "--layer", "counts"], "Layer 'counts' not found"),
    ("label column missing", lambda t: ["run", _good(t), "--label-key", "celltype"], "'celltype' is not in obs"),
    (
        "label column all NaN",
        lambda t: [
            "run",
            h5ad(
                t,
                "l.h5ad",
                _adata([[1, 2], [0, 1]], obs=pd.DataFrame({"cell_type": [np.nan, np.nan]}, index=["a", "b"])),
            ),
            "--label-key",
            "cell_type",
        ],
        "is empty",
    ),
    (
        "Ensembl ids with no mapping",
        lambda t: [
            "embed",
            h5ad(t, "ens.h5ad", _adata([[1, 2], [0, 1]], genes=["ENSG99999999901", "ENSG99999999902"])),
        ],
        "none of them could be mapped",
    ),
    (
        "reference and query share no gene",
        lambda t: [
            "annotate",
            "--query",
            h5ad(t, "q.h5ad", _adata([[1, 2], [0, 1]], genes=["CD3E", "CD4"])),
            "--reference",
            h5ad(
                t,
                "r.h5ad",
                _adata(
                    [[1, 2], [0, 1]],
                    genes=["LYZ", "NKG7"],
                    obs=pd.DataFrame({"cell_type": ["T", "B"]}, index=["a", "b"]),
                ),
            ),
            "--label-key",
            "cell_type",
        ],
        "share no described gene",
    ),
    (
        "non-GGUF model file",
        lambda t: ["describe", "--genes", "CD3E", "--mode", "llm", "--llm", _gguf(t, b"PK\x03\x04 not a model")],
        "not a GGUF model file",
    ),
    (
        "truncated GGUF",
        lambda t: ["describe", "--genes", "CD3E", "--mode", "llm", "--llm", _gguf(t, b"GGUF")],
        "GGUF version 0",
    ),
    (
        "GGUF from the future",
        lambda t: [
            "describe",
            "--genes",
            "CD3E",
            "--mode",
            "llm",
            "--llm",
            _gguf(t, b"GGUF" + (99).to_bytes(4, "little") + b"\0" * 64),
        ],
        "GGUF version 99",
    ),
    ("pickle that would run code", lambda t: ["tables", "import", _pickle_bomb(t)], "table.pkl: Refused to load"),
    ("corrupt description pack", lambda t: ["packs", "import", _corrupt_pack(t)], "pack"),
    (
        "batch column missing",
        lambda t: ["integrate", _good(t), "--batch-key", "donor", "--label-key", "cell_type", "--mode", "facts"],
        "batch column 'donor'",
    ),
    (
        "control condition absent",
        lambda t: [
            "treatment",
            _good(t),
            "--condition-key",
            "cell_type",
            "--control",
            "ctrl",
            "--disease",
            "T",
            "--mode",
            "facts",
        ],
        "No cell has condition 'ctrl'",
    ),
    (
        "perturbation control absent",
        lambda t: [
            "perturb",
            _good(t),
            "--perturbation-key",
            "cell_type",
            "--control",
            "non-targeting",
            "--mode",
            "facts",
        ],
        "control label 'non-targeting'",
    ),
    ("unknown gene table", lambda t: ["embed", _good(t), "--gene-table", "no-such-table"], "no-such-table"),
    (
        "all-zero matrix",
        lambda t: [
            "run",
            h5ad(t, "z.h5ad", _adata(np.zeros((20, 6)), genes=["CD3E", "CD4", "CD8A", "MS4A1", "LYZ", "NKG7"])),
            "--mode",
            "facts",
        ],
        "is all zeros",
    ),
    (
        "no gene is a human symbol",
        lambda t: [
            "run",
            h5ad(
                t,
                "x.h5ad",
                _adata(np.random.default_rng(0).poisson(1, (30, 40)), genes=[f"NOTAGENE{i}" for i in range(40)]),
            ),
            "--mode",
            "facts",
        ],
        "Only 0 of the 40 selected genes",
    ),
]


@pytest.mark.parametrize("name,build,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_line(name, build, expected, tmp_path, capsys):
    argv = [str(a) for a in build(tmp_path)]
    out = tmp_path / "out"
    if argv[0] in ("embed", "run", "integrate", "treatment", "perturb") or argv[0] == "annotate":
        argv += ["--out", str(out if argv[0] != "annotate" else out / "q.h5ad")]
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured
    errors = [line for line in captured.err.replace("\r", "\n").splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], captured.err  # one line (progress bars aside)
    assert "Traceback" not in captured.err + captured.out
    assert not out.exists() or not any(out.iterdir())  # nothing half-written


def test_corpus_is_at_least_25_cases():
    assert len(CASES) >= 25


def test_unknown_option_and_bad_values_are_argparse_errors(capsys):
    for argv, expected in (
        (["embed", "x.h5ad", "--out", "o", "--frobnicate"], "unrecognized arguments"),
        (
            ["embed", "x.h5ad", "--out", "o", "--max-genes", "0"],
            "--max-genes: takes a whole number at least 1, or 'all'",
        ),
    ):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 2 and expected in capsys.readouterr().err


def test_model_larger_than_free_memory_is_refused_before_loading(monkeypatch):
    import psutil

    from scelmo_desktop.backends import registry
    from scelmo_desktop.core._infra.errors import ScelmoError

    info = registry.find_model("gguf")
    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("M", (), {"available": 100_000_000})())
    with pytest.raises(ScelmoError, match="only 0.1 GB of memory is free"):
        registry.open_llm(info)


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="Data file not found"):
        cli.main(["--debug", "embed", str(tmp_path / "nope.h5ad"), "--out", str(tmp_path / "o")])
