"""Marker genes per cluster: scanpy's rank_genes_groups on the run's log-normalised matrix, the filtered table,
scanpy's own uns layout (so its plots read it), and the doors (scelmo run, scelmo markers)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.data.io import select_expression
from scelmo_desktop.core.tasks.markers import TABLE_COLUMNS, rank_markers
from scelmo_desktop.core.workflows.markers import find_markers


def planted(seed: int = 0) -> ad.AnnData:
    """Three groups of 80 cells over 60 genes of sparse Poisson noise (about a quarter of cells express each
    gene, as most genes in 10x data); G0-G2 are high in group 0 only, G3-G5 in group 1 only, group 2 has none."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(0.3, size=(240, 60)).astype(np.float32)
    counts[:80, 0:3] += rng.poisson(12.0, size=(80, 3))
    counts[80:160, 3:6] += rng.poisson(12.0, size=(80, 3))
    adata = ad.AnnData(sp.csr_matrix(counts))
    adata.var_names = [f"G{i}" for i in range(60)]
    adata.obs_names = [f"c{i}" for i in range(240)]
    adata.obs["scelmo_leiden"] = pd.Categorical(np.repeat(["0", "1", "2"], 80))
    return adata


def test_planted_markers_lead_their_groups_and_pass_the_filter():
    adata = planted()
    expression = select_expression(adata)
    markers = rank_markers(expression.matrix, expression.var_names, adata.obs["scelmo_leiden"])
    assert list(markers.table.columns) == [*TABLE_COLUMNS, "passes_filter"]
    top = markers.top(3)
    # 12x the background in every cell of the group: a rank test puts them first, far ahead of noise genes
    assert set(top["0"]) == {"G0", "G1", "G2"} and set(top["1"]) == {"G3", "G4", "G5"}
    g0 = markers.table[(markers.table["group"] == "0") & (markers.table["gene"] == "G0")].iloc[0]
    assert g0["log2_fold_change"] > 2 and g0["pct_in_group"] == 1.0 and g0["p_adjusted"] < 1e-10
    # every gene of every group is in the table, not only a top few
    assert len(markers.table) == 3 * 60
    # a noise gene never passes filter_rank_genes_groups' fold-change rule in group 0
    noise = markers.table[(markers.table["group"] == "0") & ~markers.table["gene"].isin(["G0", "G1", "G2"])]
    assert not noise["passes_filter"].any()


def test_find_markers_writes_scanpys_layout_that_its_plots_read(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import scanpy as sc

    adata = planted()
    markers = find_markers(adata, select_expression(adata))
    uns = adata.uns["rank_genes_groups"]
    assert uns["params"]["groupby"] == "scelmo_leiden" and uns["params"]["method"] == "wilcoxon"
    assert list(uns["names"].dtype.names) == ["0", "1", "2"]
    assert adata.uns["scelmo"]["markers"]["top"]["0"].startswith(tuple(["G0", "G1", "G2"]))
    # scanpy's own table and dot plot read what was written, after a round trip through h5ad
    adata.write_h5ad(tmp_path / "m.h5ad")
    back = ad.read_h5ad(tmp_path / "m.h5ad")
    frame = sc.get.rank_genes_groups_df(back, group="1")
    assert set(frame["names"].head(3)) == {"G3", "G4", "G5"}
    sc.pl.rank_genes_groups_dotplot(back, n_genes=2, show=False)
    assert markers.method == "wilcoxon"


def test_groups_that_cannot_be_tested_get_a_clear_error_or_are_skipped():
    adata = planted()
    expression = select_expression(adata)
    with pytest.raises(ScelmoError, match="no obs\\['nope'\\]"):
        find_markers(adata, expression, groupby="nope")
    adata.obs["one"] = pd.Categorical(["a"] * 240)
    with pytest.raises(ScelmoError, match="at least two groups"):
        find_markers(adata, expression, groupby="one")
    adata.obs["with_single"] = pd.Categorical(["a"] * 120 + ["b"] * 119 + ["lonely"])
    markers = find_markers(adata, expression, groupby="with_single", method="t-test")
    assert markers.skipped_groups == ["lonely"] and set(markers.table["group"].cat.categories) == {"a", "b"}


def test_scelmo_markers_command(tmp_path, capsys):
    from scelmo_desktop import cli

    adata = planted()
    adata.write_h5ad(tmp_path / "clustered.h5ad")
    code = cli.main(["markers", str(tmp_path / "clustered.h5ad"), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0 and "  0: G" in out and "markers.csv" in out
    table = pd.read_csv(tmp_path / "out" / "markers.csv")
    assert set(table["group"].astype(str)) == {"0", "1", "2"} and len(table) == 180
    assert "rank_genes_groups" in ad.read_h5ad(tmp_path / "out" / "scelmo_markers.h5ad").uns
    code = cli.main(["markers", str(tmp_path / "clustered.h5ad"), "--groupby", "nope", "--out", str(tmp_path / "o2")])
    captured = capsys.readouterr()
    assert code != 0 and "no obs['nope']" in captured.err + captured.out and "Traceback" not in captured.err


def test_the_python_face_writes_scanpys_key_and_returns_the_table():
    import scelmo_desktop as scelmo

    adata = planted()
    table = scelmo.tl.markers(adata, markers="t-test")
    assert adata.uns["rank_genes_groups"]["params"]["method"] == "t-test"
    assert set(table[table["group"] == "1"]["gene"].head(3)) == {"G3", "G4", "G5"}
    with pytest.raises(ValueError, match="markers\\(\\): the markers setting takes"):
        scelmo.tl.markers(adata, markers="magic")


def test_smaller_rank_chunks_give_scanpys_statistics(monkeypatch):
    """Ranking genes in smaller chunks (a lower memory peak) must not change one statistic: chunks of 7 genes
    against scanpy's default single chunk on the same data."""
    from scanpy.tools import _rank_genes_groups

    from scelmo_desktop.core.tasks import markers as module

    scanpys = _rank_genes_groups._CONST_MAX_SIZE
    adata = planted(seed=3)
    expression = select_expression(adata)
    default = rank_markers(expression.matrix, expression.var_names, adata.obs["scelmo_leiden"])
    monkeypatch.setattr(module, "RANK_CHUNK_DIVISOR", scanpys // (240 * 7))  # 7 genes per chunk
    chunked = rank_markers(expression.matrix, expression.var_names, adata.obs["scelmo_leiden"])
    pd.testing.assert_frame_equal(chunked.table, default.table)
    assert _rank_genes_groups._CONST_MAX_SIZE == scanpys  # scanpy's own value is restored


def test_compare_two_groups_in_every_door(tmp_path, capsys):
    """DE of one group against another (not the rest): planted group 1 expresses G3-G5, group 0 G0-G2."""
    import scelmo_desktop as scelmo
    from scelmo_desktop import cli

    adata = planted()
    table = scelmo.tl.compare(adata, groupby="scelmo_leiden", group="1", reference="0")
    up = table[(table["p_adjusted"] < 0.05) & (table["log2_fold_change"] > 1)]["gene"]
    down = table[(table["p_adjusted"] < 0.05) & (table["log2_fold_change"] < -1)]["gene"]
    assert {"G3", "G4", "G5"} <= set(up) and {"G0", "G1", "G2"} <= set(down)
    assert "rank_genes_groups" not in adata.uns  # a comparison writes no key
    figure = scelmo.pl.volcano(table, title="1 vs 0", path=tmp_path / "v.svg")
    assert figure.axes and "<svg" in (tmp_path / "v.svg").read_text()[:500]
    adata.obs["batch"] = pd.Categorical(np.tile(["a", "b"], adata.n_obs // 2))
    # G10 is up in group 1 in batch b only: the comparison within batch a must not see it
    in_b = (adata.obs["batch"] == "b").to_numpy() & (adata.obs["scelmo_leiden"] == "1").to_numpy()
    counts = adata.X.toarray()
    counts[in_b, 10] += 12
    adata.X = sp.csr_matrix(counts)
    everywhere = scelmo.tl.compare(adata, groupby="scelmo_leiden", group="1", reference="0")
    within = scelmo.tl.compare(adata, groupby="scelmo_leiden", group="1", reference="0", within=("batch", "a"))
    assert {"G3", "G4", "G5"} <= set(within["gene"].head(10))
    assert "G10" in set(everywhere["gene"].head(4)) and "G10" not in set(within["gene"].head(10))
    path = tmp_path / "clustered.h5ad"
    adata.write_h5ad(path)
    code = cli.main(["markers", str(path), "--compare", "1", "0", "--within", "batch=a", "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert code == 0 and "genes up" in out and (tmp_path / "o" / "volcano.png").stat().st_size > 5000
    assert set(pd.read_csv(tmp_path / "o" / "comparison.csv")["gene"]) == set(table["gene"])
    for bad, message in (
        (["--compare", "1", "1"], "two different groups"),
        (["--compare", "1", "9"], "has 0 cell"),
        (["--compare", "1", "0", "--within", "batch"], "COLUMN=VALUE"),
        (["--within", "batch=a"], "use it with --compare"),
    ):
        code = cli.main(["markers", str(path), *bad, "--out", str(tmp_path / "bad")])
        captured = capsys.readouterr()
        assert code != 0 and message in captured.err + captured.out and "Traceback" not in captured.err


def test_the_python_face_draws_scanpys_marker_plots(tmp_path):
    import scelmo_desktop as scelmo

    adata = planted()
    scelmo.tl.markers(adata)
    for kind in ("dotplot", "heatmap", "stacked_violin"):
        figure = scelmo.pl.markers(adata, kind=kind, path=tmp_path / f"{kind}.png")
        assert figure.axes and (tmp_path / f"{kind}.png").stat().st_size > 5000
    figure = scelmo.pl.markers(adata, kind="violin", gene="G3", path=tmp_path / "violin.pdf")
    assert (tmp_path / "violin.pdf").read_bytes()[:4] == b"%PDF"
    with pytest.raises(ScelmoError, match="no gene 'nope'"):
        scelmo.pl.markers(adata, kind="violin", gene="nope")


def test_marker_plots_draw_the_matrix_the_markers_were_found_on():
    """Markers found on a chosen layer are drawn from that layer, not from the default ('auto' picks .raw)."""
    from scelmo_desktop.core.workflows.markers import tested_expression

    adata = planted()
    adata.layers["counts"] = adata.X.copy()
    adata.raw = ad.AnnData(sp.csr_matrix(np.ones(adata.shape, dtype=np.float32)), var=adata.var)  # another matrix
    find_markers(adata, select_expression(adata, "counts"))
    used = tested_expression(adata)
    record = adata.uns["scelmo"]["markers"]
    assert (record["layer"], record["input_kind"]) == ("counts", "counts") and used.layer == "counts"
    expected = select_expression(adata, "counts").matrix
    assert np.allclose(used.matrix.toarray(), expected.toarray())
    assert select_expression(adata).layer == "raw"  # what the plot would have drawn before


def test_a_saved_marker_test_reads_back_from_the_file_and_not_once_its_groups_changed(tmp_path):
    """A written h5ad's markers come back as they were found (table, statistics, the filter rebuilt on the
    recorded matrix); once the clusters changed (cells moved to another group), the saved test no longer
    describes them and reading it back gives a note, never a stale table."""
    from scelmo_desktop.core.workflows.markers import saved_markers_and_names

    adata = planted()
    found = find_markers(adata, select_expression(adata))
    path = tmp_path / "result.h5ad"
    adata.write_h5ad(path)
    back = saved_markers_and_names(ad.read_h5ad(path))
    assert back.markers is not None and back.markers.groupby == "scelmo_leiden"
    pd.testing.assert_frame_equal(back.markers.table, found.table)
    assert back.naming is None and "no cell-type names" in back.notes["naming"]

    edited = ad.read_h5ad(path)
    groups = edited.obs["scelmo_leiden"].astype(str).to_numpy().copy()
    groups[:80] = "3"  # group 0 renamed: the saved test is of groups 0, 1, 2
    edited.obs["scelmo_leiden"] = pd.Categorical(groups)
    stale = saved_markers_and_names(edited)
    assert stale.markers is None and "could not be read back" in stale.notes["markers"], stale.notes
    # the same labels on other cells (a new clustering reuses 0, 1, 2): groups 0 and 2 swapped, or half the cells
    swapped = ad.read_h5ad(path)
    swapped.obs["scelmo_leiden"] = pd.Categorical(np.repeat(["2", "1", "0"], 80))
    halved = ad.read_h5ad(path)[::2].copy()
    for other in (swapped, halved):
        refused = saved_markers_and_names(other)
        assert refused.markers is None and "are not those tested" in refused.notes["markers"], refused.notes
    assert saved_markers_and_names(planted()).markers is None  # no test saved at all
