"""The ``scelmo`` command as a user runs it: help, model listing, a run twice, and clear one-line errors."""

import json

import numpy as np
import pytest
from cli_inprocess import run_cli

from scelmo_desktop.core.embedding.gene_table import GeneTable, save_gene_table


def scelmo(*args, home=None, check=False):
    """``scelmo *args`` in process (the command's behaviour, not the process start, is what these tests check)."""
    env = {"OMP_NUM_THREADS": "1", "SCELMO_THREADS": "1"}
    if home:
        env["SCELMO_HOME"] = str(home)
    result = run_cli(*args, env=env)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def small_h5ad(tmp_path_factory, pbmc):
    path = tmp_path_factory.mktemp("data") / "pbmc_small.h5ad"
    pbmc[:300].copy().write_h5ad(path)
    return path


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    "command", ["describe", "embed", "cluster", "run", "demo", "models", "tables", "packs", "edit"]
)
def test_every_command_has_help(command):
    result = scelmo(command, "--help", check=True)
    assert "usage: scelmo " + command in result.stdout


def test_models_lists_both_defaults_with_hashes():
    rows = json.loads(scelmo("models", "--json", check=True).stdout)
    kinds = {row["kind"]: row for row in rows if row["default"]}
    assert set(kinds) == {"gguf", "sentence-transformers"}
    assert kinds["gguf"]["chat_format"] == "gemma" and kinds["gguf"]["verified"] is True
    assert all(len(row["sha256"]) == 64 and row["size_bytes"] > 1e7 for row in rows)


def test_missing_file(tmp_path):
    assert_one_line_error(
        scelmo("run", tmp_path / "nope.h5ad", "--out", tmp_path / "o"), "Data file not found", "nope.h5ad"
    )


def test_non_h5ad_file(tmp_path):
    fake = tmp_path / "table.h5ad"
    fake.write_text("gene,cell1\nCD3E,1\n")
    assert_one_line_error(scelmo("run", fake, "--out", tmp_path / "o"), "not an HDF5 file", "table.h5ad")
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    assert_one_line_error(scelmo("embed", other, "--out", tmp_path / "o"), "unsupported file type '.txt'")


def test_no_overlapping_genes(tmp_path, small_h5ad):
    table = tmp_path / "mouse_table.npz"
    save_gene_table(GeneTable(symbols=["Zfp001", "Zfp002"], vectors=np.ones((2, 8), np.float32)), table)
    result = scelmo("embed", small_h5ad, "--out", tmp_path / "o", "--gene-table", table)
    assert_one_line_error(result, "None of the 765 genes", "--symbol-column")
    assert not (tmp_path / "o" / "scelmo_embedded.h5ad").exists()  # nothing half-written


def test_wrong_label_key_and_layer(tmp_path, small_h5ad):
    assert_one_line_error(
        scelmo("run", small_h5ad, "--out", tmp_path / "o", "--label-key", "celltype"),
        "Label column 'celltype'",
        "bulk_labels",
    )
    assert_one_line_error(
        scelmo("run", small_h5ad, "--out", tmp_path / "o", "--layer", "counts"), "Layer 'counts' not found", "raw"
    )


def test_run_twice_second_time_from_the_store(tmp_path, small_h5ad):
    args = (
        "run",
        small_h5ad,
        "--out",
        tmp_path / "out",
        "--label-key",
        "bulk_labels",
        "--max-genes",
        "3",
        "--max-tokens",
        "16",
        "--mode",
        "grounded",
    )  # the LLM path: auto is facts here
    first = scelmo(*args, home=tmp_path / "home", check=True)
    assert "LLM calls: 3 (cached: 0)" in first.stdout
    assert "scELMo" in first.stdout and "nmi" in first.stdout and "PCA" not in first.stdout  # lean by default
    second = scelmo(*args, home=tmp_path / "home", check=True)
    assert "LLM calls: 0 (cached: 3)" in second.stdout
    assert (tmp_path / "out" / "report.html").is_file() and (tmp_path / "out" / "scelmo_result.h5ad").is_file()
    clustered = scelmo(
        "cluster",
        tmp_path / "out" / "scelmo_result.h5ad",
        "--out",
        tmp_path / "c",
        "--label-key",
        "bulk_labels",
        check=True,
    )
    assert "X_scelmo" in clustered.stdout and (tmp_path / "c" / "metrics.csv").is_file()


def test_the_report_says_why_samples_were_not_integrated_and_claims_no_sweep_without_labels(tmp_path, pbmc):
    data = pbmc[:300].copy()
    data.obs["sample"] = np.where(np.arange(data.n_obs) < 60, "small", "large")  # 60 cells: under the floor
    data.write_h5ad(tmp_path / "two_samples.h5ad")
    result = scelmo("run", tmp_path / "two_samples.h5ad", "--out", tmp_path / "out", home=tmp_path / "home", check=True)
    assert "samples integrated: no" in result.stdout
    report = (tmp_path / "out" / "report.html").read_text()
    integration = report[report.index("<h2>Samples integrated</h2>") :]
    assert "No: 1 of the 2 samples" in integration and "fewer than 100 cells" in integration
    assert "Leiden sweep" not in report and "Baselines" not in report  # no labels, no --compare
    assert "no label column was given" in report


def test_an_output_folder_that_is_a_file_is_refused_before_the_run(tmp_path, small_h5ad):
    (tmp_path / "taken").write_text("not a folder")
    result = scelmo("run", small_h5ad, "--out", tmp_path / "taken", home=tmp_path / "home")
    assert_one_line_error(result, "is an existing file, not a folder")
    assert str(small_h5ad) not in result.stderr  # the error is the output folder's, not the data file's
    assert (tmp_path / "taken").read_text() == "not a folder"  # and the file is left as it was


def test_describe_genes_and_cell_types_to_csv(tmp_path, small_h5ad, pbmc):
    import pandas as pd

    out = tmp_path / "descriptions.csv"
    result = scelmo(
        "describe",
        small_h5ad,
        "--max-genes",
        "2",
        "--max-tokens",
        "12",
        "--cell-types",
        "bulk_labels",
        "--mode",
        "grounded",
        "--out",
        out,
        home=tmp_path / "home",
        check=True,
    )
    n_labels = pbmc[:300].obs["bulk_labels"].nunique()
    assert f"LLM calls: {2 + n_labels} (cached: 0)" in result.stdout
    table = pd.read_csv(out)
    assert len(table) == 2 + n_labels
    assert set(table.loc[table["kind"] == "cell_type", "name"]) == set(pbmc[:300].obs["bulk_labels"].unique())
    assert table["text"].notna().all() and set(table["mode"]) == {"grounded"}
    assert "description mode: grounded" in result.stdout
    assert "quality flags:" in result.stdout
    # default mode 'auto': the embedded model's measured best (manifest), facts, when the knowledge extra is there
    auto = scelmo(
        "describe", small_h5ad, "--max-genes", "2", "--out", tmp_path / "auto.csv", home=tmp_path / "home", check=True
    )
    from scelmo_desktop.core.knowledge.genes import catalog_available

    expected = "facts" if catalog_available() else "llm"
    assert f"description mode: {expected}" in auto.stdout


def test_describe_gene_list_in_facts_mode_needs_no_llm(tmp_path):
    import pandas as pd

    out = tmp_path / "report.csv"
    # facts mode never touches the LLM, so not even a missing model file stops it
    result = scelmo(
        "describe",
        "--genes",
        "CD3E,MS4A1,NOTAGENE1",
        "--mode",
        "facts",
        "--report",
        out,
        "--llm",
        tmp_path / "missing.gguf",
        home=tmp_path / "home",
        check=True,
    )
    assert "LLM calls: 0 (cached: 0)" in result.stdout
    table = pd.read_csv(out).set_index("name")
    assert "CD3 epsilon subunit" in table.loc["CD3E", "text"] and table.loc["NOTAGENE1", "text"] == "Gene NOTAGENE1."
    both = scelmo("describe", tmp_path / "x.h5ad", "--genes", "CD3E", home=tmp_path / "home")
    assert_one_line_error(both, "either a data file")


def test_tables_import_list_and_run_with_it(tmp_path, small_h5ad, pbmc):
    import pickle

    rng = np.random.default_rng(1)
    (tmp_path / "genept.pickle").write_bytes(pickle.dumps({g: rng.normal(size=8) for g in pbmc.raw.var_names[:200]}))
    home = tmp_path / "home"
    imported = scelmo("tables", "import", tmp_path / "genept.pickle", "--name", "genept-v1", home=home, check=True)
    assert "imported 'genept-v1': 200 genes x 8 dimensions" in imported.stdout
    assert "genept-v1: 200 genes x 8" in scelmo("tables", "list", home=home, check=True).stdout
    run = scelmo(
        "run",
        small_h5ad,
        "--out",
        tmp_path / "out",
        "--gene-table",
        "genept-v1",
        "--label-key",
        "bulk_labels",
        home=home,
        check=True,
    )
    assert "LLM calls: 0 (cached: 0)" in run.stdout and "200 with a vector" in run.stdout


def test_pack_moves_descriptions_between_workstations(tmp_path):
    first, second = tmp_path / "ws1", tmp_path / "ws2"
    scelmo("describe", "--genes", "CD3E,LYZ", "--max-tokens", "12", "--mode", "grounded", home=first, check=True)
    exported = scelmo("packs", "export", tmp_path / "pack.zip", home=first, check=True)
    assert "exported 2 descriptions" in exported.stdout
    imported = scelmo("packs", "import", tmp_path / "pack.zip", home=second, check=True)
    assert "imported 2 new of 2 descriptions" in imported.stdout
    reused = scelmo(
        "describe", "--genes", "CD3E,LYZ", "--max-tokens", "12", "--mode", "grounded", home=second, check=True
    )
    assert "LLM calls: 0 (cached: 2)" in reused.stdout


def test_hand_edit_wins_and_is_versioned(tmp_path):
    import pandas as pd

    home = tmp_path / "home"
    first = scelmo(
        "edit",
        "LYZ",
        "LYZ encodes lysozyme, a bacteriolytic enzyme of monocytes.",
        "--author",
        "ana",
        home=home,
        check=True,
    )
    assert "edit #1" in first.stdout
    assert "edit #2" in scelmo("edit", "LYZ", "LYZ encodes lysozyme (curated).", home=home, check=True).stdout
    scelmo("describe", "--genes", "LYZ,CD3E", "--mode", "facts", "--report", tmp_path / "r.csv", home=home, check=True)
    table = pd.read_csv(tmp_path / "r.csv").set_index("name")
    assert table.loc["LYZ", "text"] == "LYZ encodes lysozyme (curated)." and bool(table.loc["LYZ", "edited"])
    assert not bool(table.loc["CD3E", "edited"])
