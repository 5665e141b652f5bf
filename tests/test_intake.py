"""Every Cell Ranger output opens as it comes (issue 23, intake): HDF5 v3/v2 and matrix folders v3/v2, gzipped or
plain; repeated symbols never stop a run; non-gene features set aside (antibodies kept); one genome of a barnyard;
cells called in unfiltered matrices; several samples joined. Files are built by ``tests/cellranger_files.py``:
small synthetic ones for the fast tier, and from real PBMC 3k and Kang (``tests/real_files.py``) for the full one.
"""

import anndata as ad
import cellranger_files as cf
import h5py
import numpy as np
import pandas as pd
import pytest
import real_files
import scipy.sparse as sp

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.data import cellranger
from scelmo_desktop.core.data.cell_calling import call_cells, looks_unfiltered, write_barcode_rank_plot
from scelmo_desktop.core.data.io import read_data
from scelmo_desktop.core.data.samples import read_samples, sample_name, sample_names
from scelmo_desktop.core.keys import UNS_KEY
from scelmo_desktop.core.workflows.intake import open_data

LAYOUTS = {
    # name: (writer(run, tmp) -> path given to the app, format recorded)
    "h5 v3": (
        lambda run, t: cf.write_h5_v3(run, t / "s1" / "outs" / "filtered_feature_bc_matrix.h5"),
        cellranger.H5_V3,
    ),
    "h5 v2": (
        lambda run, t: cf.write_h5_v2({"hg19": run}, t / "s1" / "filtered_gene_bc_matrices_h5.h5"),
        cellranger.H5_V2,
    ),
    "mtx v3 gz": (
        lambda run, t: cf.write_mtx(run, t / "s1" / "outs" / "filtered_feature_bc_matrix"),
        cellranger.MTX_V3,
    ),
    "mtx v3 plain": (
        lambda run, t: cf.write_mtx(run, t / "s1" / "filtered_feature_bc_matrix", gz=False),
        cellranger.MTX_V3,
    ),
    "mtx v2 gz": (lambda run, t: cf.write_mtx(run, t / "s1" / "matrix", version=2), cellranger.MTX_V2),
    "mtx v2 plain, genome folder": (
        lambda run, t: cf.write_mtx(run, t / "s1" / "filtered_gene_bc_matrices" / "hg19", version=2, gz=False).parent,
        cellranger.MTX_V2,
    ),
}


def _records(adata) -> dict:
    return adata.uns[UNS_KEY]["intake"]["samples"]


def _assert_opens_as(result, run, fmt):
    """The AnnData holds exactly the run's cells and genes, ids kept, repeated symbols counted."""
    adata = result.adata
    genes = run.types == cf.GEX
    assert list(adata.obs_names) == list(run.barcodes)
    assert adata.var["gene_ids"].tolist() == list(run.ids[genes])
    assert adata.var["gene_symbols"].tolist() == list(run.names[genes])
    assert adata.var_names.is_unique
    assert (abs(adata.X - run.counts[:, np.flatnonzero(genes)]) > 0).nnz == 0
    (record,) = result.records.values()
    assert record["format"] == fmt
    assert record["repeated_symbols"] == len(cf.repeated(run.names[genes]))
    assert record["cells"] == record["barcodes"] == len(run.barcodes)
    assert _records(adata)[next(iter(result.records))]["format"] == fmt


# ------------------------------------------------------------------------------------------------ fast tier


@pytest.fixture
def small_run():
    run = cf.synthetic_run(300, 200, seed=0)
    run.names = cf.repeat_symbols(run.names, 6, seed=1)
    return run


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_cellranger_layout_opens_with_its_cells_genes_and_ids(layout, small_run, tmp_path):
    write, fmt = LAYOUTS[layout]
    path = write(small_run, tmp_path)
    result = open_data(path)
    _assert_opens_as(result, small_run, fmt)
    assert result.adata.obs["sample"].unique().tolist() == ["s1"]
    plain = read_data(path)  # the old door gives the same matrix and names, without cell calling
    assert plain.var_names.equals(result.adata.var_names) and plain.shape == result.adata.shape


def test_a_repeated_symbol_keeps_its_first_gene_bare_and_names_the_others_by_id():
    names, repeated = cellranger.display_names(
        ["TBCE", "CD3E", "TBCE", "", "TBCE"], ["ENSG1", "ENSG2", "ENSG3", "ENSG4", "ENSG5"]
    )
    assert names == ["TBCE", "CD3E", "TBCE-ENSG3", "ENSG4", "TBCE-ENSG5"]
    assert repeated == ["TBCE"]


def test_antibodies_go_to_obsm_and_other_features_are_set_aside(small_run, tmp_path):
    run = cf.add_features(small_run, cf.ADT, ["CD3_TotalSeqB", "CD4_TotalSeqB", "CD19_TotalSeqB"])
    run = cf.add_features(run, cf.CRISPR, ["guide1", "guide2"], seed=1)
    result = open_data(cf.write_h5_v3(run, tmp_path / "cite.h5"))
    _assert_opens_as(result, run, cellranger.H5_V3)
    proteins = result.adata.obsm["protein_expression"]
    assert list(proteins.columns) == ["CD3_TotalSeqB", "CD4_TotalSeqB", "CD19_TotalSeqB"]
    assert np.array_equal(proteins.to_numpy(), run.counts[:, run.types == cf.ADT].toarray())
    record = result.records["cite"]
    assert record["features_set_aside"] == {cf.ADT: 3, cf.CRISPR: 2} and record["proteins"] == 3
    result.adata.write_h5ad(tmp_path / "out.h5ad")  # the record and the DataFrame are h5ad-safe
    assert ad.read_h5ad(tmp_path / "out.h5ad").obsm["protein_expression"].shape == (300, 3)


@pytest.mark.parametrize("writer", ["h5 v3", "mtx v3", "h5 v2"])
def test_a_barnyard_run_needs_a_genome_and_keeps_only_its_genes(writer, small_run, tmp_path):
    mouse = cf.synthetic_run(300, 150, seed=2, genome="mm10")
    mouse.barcodes = small_run.barcodes
    if writer == "h5 v2":
        path = cf.write_h5_v2({"hg19": small_run, "mm10": mouse}, tmp_path / "barnyard.h5")
    else:
        both = cf.barnyard(small_run, mouse)
        path = (
            cf.write_h5_v3(both, tmp_path / "barnyard.h5") if writer == "h5 v3" else cf.write_mtx(both, tmp_path / "by")
        )
    with pytest.raises(ScelmoError, match=r"several genomes \((GRCh38|hg19), mm10\).*genome setting"):
        open_data(path)
    result = open_data(path, genome="mm10")
    assert result.adata.var["gene_ids"].tolist() == list(mouse.ids)  # the genome prefix is gone
    assert result.adata.var_names.tolist() == list(mouse.names)
    assert (abs(result.adata.X - mouse.counts) > 0).nnz == 0
    assert result.records["barnyard" if writer != "mtx v3" else "by"]["genome"] == "mm10"
    with pytest.raises(ScelmoError, match="no genome 'GRCh99'; it holds"):
        open_data(path, genome="GRCh99")


def test_cells_are_called_in_an_unfiltered_matrix_and_a_threshold_overrides(small_run, tmp_path):
    raw, is_cell = cf.add_empty_droplets(small_run, 6000, seed=3)
    path = cf.write_h5_v3(raw, tmp_path / "s1" / "outs" / "raw_feature_bc_matrix.h5")
    unfiltered = read_data(path)
    assert looks_unfiltered(unfiltered) and not looks_unfiltered(unfiltered[is_cell])
    result = open_data(path)
    assert set(result.adata.obs_names) == set(small_run.barcodes)
    calling = result.records["s1"]["cell_calling"]
    assert calling["done"] and calling["cells"] == 300 and calling["barcodes"] == 6300
    assert result.write_barcode_rank_plots(tmp_path)["s1"].read_bytes()[:4] == b"\x89PNG"
    low = open_data(path, umi_threshold=40)  # the user's threshold replaces the rule
    assert low.records["s1"]["cell_calling"]["method"] == "user threshold"
    assert low.adata.n_obs == int(np.sum(np.asarray(raw.counts.sum(axis=1)).ravel() >= 40)) > 300
    assert open_data(path, cell_calling="off").adata.n_obs == 6300
    assert open_data(cf.write_h5_v3(small_run, tmp_path / "f.h5")).records["f"]["cell_calling"]["done"] is False


def test_two_samples_join_by_ensembl_id_keeping_genes_measured_in_both(small_run, tmp_path):
    other = cf.synthetic_run(120, 200, seed=0)  # the same reference: same ids and symbols
    other.barcodes = small_run.barcodes[:120]  # Cell Ranger reuses barcodes across runs
    keep = np.r_[np.arange(20, 200)][::-1]  # 20 genes missing and the order reversed
    other = cf.run_from(other.counts[:, keep], other.barcodes, other.ids[keep], other.names[keep])
    paths = [
        cf.write_h5_v3(small_run, tmp_path / "ctrl" / "outs" / "filtered_feature_bc_matrix.h5"),
        cf.write_mtx(other, tmp_path / "stim" / "outs" / "filtered_feature_bc_matrix"),
    ]
    result = open_data(paths)
    adata = result.adata
    assert adata.obs["sample"].value_counts().to_dict() == {"ctrl": 300, "stim": 120}
    assert adata.obs_names.is_unique and adata.obs_names[0] == f"{small_run.barcodes[0]}-ctrl"
    assert adata.n_vars == 180 and result.merge["genes_dropped_per_sample"] == {"ctrl": 20, "stim": 0}
    stim = adata[adata.obs["sample"] == "stim"]
    order = pd.Index(other.ids).get_indexer(stim.var["gene_ids"])
    assert (abs(stim.X - other.counts[:, order]) > 0).nnz == 0  # matched by id, not by position
    assert read_samples(paths).shape == adata.shape
    adata.write_h5ad(tmp_path / "joined.h5ad")  # the record is h5ad-safe
    assert ad.read_h5ad(tmp_path / "joined.h5ad").uns[UNS_KEY]["intake"]["merge"]["genes_kept"] == 180


def test_a_repeated_gene_id_joins_by_name_and_says_why(small_run, tmp_path):
    ids = small_run.ids.copy()
    ids[5] = ids[4]  # a hand-edited or re-annotated reference can repeat an Ensembl id
    edited = cf.run_from(small_run.counts, small_run.barcodes, ids, small_run.names)
    paths = [cf.write_h5_v3(small_run, tmp_path / "a.h5"), cf.write_h5_v3(edited, tmp_path / "b.h5")]
    result = open_data(paths)
    assert result.merge["matched_by"] == "var_names" and result.adata.n_vars == small_run.counts.shape[1]
    line = result.summary_lines()[-1]
    assert f"not by gene id because b repeats 1 gene id, e.g. {ids[4]}" in line


def test_a_single_h5ad_opens_as_read_data_gives_it(tmp_path):
    path = tmp_path / "cells.h5ad"
    ad.AnnData(
        X=sp.csr_matrix(np.arange(12, dtype=np.float32).reshape(4, 3)),
        obs=pd.DataFrame({"cell_type": list("abab")}, index=[f"c{i}" for i in range(4)]),
        var=pd.DataFrame(index=["CD3E", "LYZ", "MS4A1"]),
    ).write_h5ad(path)
    result, plain = open_data(path), read_data(path)
    assert result.adata.obs.equals(plain.obs) and result.adata.var.equals(plain.var)
    assert (result.adata.X != plain.X).nnz == 0
    assert result.records["cells"]["format"] == "h5ad"


def test_an_anndata_file_named_h5_opens_as_anndata_and_a_text_file_is_refused(tmp_path):
    path = tmp_path / "cells.h5"
    ad.AnnData(X=sp.csr_matrix(np.eye(3, dtype=np.float32)), var=pd.DataFrame(index=["A", "B", "C"])).write_h5ad(path)
    assert open_data(path).records["cells"]["format"] == "h5ad"
    (tmp_path / "notes.h5").write_text("hello")
    with pytest.raises(ScelmoError, match="notes.h5 is not an HDF5 file"):
        open_data(tmp_path / "notes.h5")
    with pytest.raises(ScelmoError, match="notes.h5 is not an HDF5 file"):
        read_data(tmp_path / "notes.h5")


def test_sample_names_come_from_the_path_and_are_made_unique(tmp_path):
    assert sample_name(tmp_path / "sampleA" / "outs" / "filtered_feature_bc_matrix.h5") == "sampleA"
    assert sample_name(tmp_path / "GSM1_donor2_filtered_feature_bc_matrix.h5") == "GSM1_donor2"
    multi = tmp_path / "run7" / "outs" / "per_sample_outs" / "B" / "count" / "sample_filtered_feature_bc_matrix.h5"
    assert sample_name(multi) == "B"
    (tmp_path / "p" / "filtered_gene_bc_matrices" / "hg19").mkdir(parents=True)
    assert sample_name(tmp_path / "p" / "filtered_gene_bc_matrices" / "hg19") == "p"
    paths = [tmp_path / "a" / "outs" / "filtered_feature_bc_matrix.h5", tmp_path / "b" / "a.h5ad"]
    assert sample_names(paths) == ["a", "a-2"]
    with pytest.raises(ScelmoError, match="unique"):
        sample_names(paths, ["x", "x"])


def _neither(tmp):
    path = tmp / "other.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("weights", data=np.zeros(3))
    return [path]


def _disagreeing_folder(tmp):
    run = cf.synthetic_run(40, 30, seed=4)
    folder = cf.write_mtx(run, tmp / "s1" / "outs" / "filtered_feature_bc_matrix", gz=False)
    lines = (folder / "barcodes.tsv").read_text().splitlines()
    (folder / "barcodes.tsv").write_text("\n".join(lines[:-3]) + "\n")  # three barcodes lost
    return [folder]


def _antibodies_only(tmp):
    run = cf.add_features(cf.synthetic_run(40, 30, seed=5), cf.ADT, ["CD3", "CD4"])
    keep = np.flatnonzero(run.types == cf.ADT)
    only = cf.Run(run.counts[:, keep], run.barcodes, run.ids[keep], run.names[keep], run.types[keep], run.genomes[keep])
    return [cf.write_h5_v3(only, tmp / "adt.h5")]


def _no_common_genes(tmp):
    human, mouse = cf.synthetic_run(40, 30, seed=6), cf.synthetic_run(40, 30, seed=7, genome="mm10")
    return [cf.write_h5_v3(human, tmp / "human.h5"), cf.write_h5_v3(mouse, tmp / "mouse.h5")]


def _only_empty_droplets(tmp):
    run = cf.synthetic_run(5, 30, seed=8)
    raw, is_cell = cf.add_empty_droplets(run, 3000, seed=9)
    keep = np.flatnonzero(~is_cell)
    empties = cf.Run(raw.counts[keep], raw.barcodes[keep], raw.ids, raw.names, raw.types, raw.genomes)
    return [cf.write_h5_v3(empties, tmp / "raw_feature_bc_matrix.h5")]


def _v3_without_feature_names(tmp):
    path = cf.write_h5_v3(cf.synthetic_run(40, 30, seed=10), tmp / "no_names.h5")
    with h5py.File(path, "a") as handle:
        del handle["matrix/features/name"]
    return [path]


def _v2_without_barcodes(tmp):
    path = cf.write_h5_v2({"GRCh38": cf.synthetic_run(40, 30, seed=12)}, tmp / "no_barcodes.h5")
    with h5py.File(path, "a") as handle:
        del handle["GRCh38/barcodes"]
    return [path]


def _same_run_twice(tmp):
    path = cf.write_h5_v3(cf.synthetic_run(40, 30, seed=11), tmp / "twice.h5")
    return [path, tmp / "." / "twice.h5"]


BAD_INPUTS = [
    ("the same file twice", _same_run_twice, "twice.h5 was given twice"),
    (
        "v3 file without a field",
        _v3_without_feature_names,
        "no_names.h5: a Cell Ranger v3 file without matrix/features/name",
    ),
    (
        "v2 file without a field",
        _v2_without_barcodes,
        "no_barcodes.h5: a Cell Ranger v2 file without GRCh38/barcodes",
    ),
    ("HDF5 neither Cell Ranger nor AnnData", _neither, "other.h5 is an HDF5 file but neither a Cell Ranger matrix"),
    ("matrix folder counts disagree", _disagreeing_folder, "lists 30 features and barcodes.tsv 37 barcodes"),
    ("only antibody features", _antibodies_only, r"adt.h5 holds no Gene Expression features \(only Antibody Capture"),
    ("samples share no gene", _no_common_genes, r"share no gene .*human \(.*human.h5\): 30 genes.*mouse"),
    ("unfiltered file without cells", _only_empty_droplets, "raw_feature_bc_matrix.h5: cell calling found no cells"),
]


@pytest.mark.parametrize(("case", "build", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_each_bad_input_gets_one_clear_line_naming_the_file(case, build, message, tmp_path):
    paths = build(tmp_path)
    with pytest.raises(ScelmoError, match=message) as caught:
        open_data(paths)
    text = str(caught.value)
    assert "\n" not in text and "Traceback" not in text
    assert all(p.name in text for p in paths)


def test_the_barcode_rank_plot_is_written_for_any_call(tmp_path):
    totals = np.r_[np.full(50, 2000.0), np.arange(1, 150, dtype=float)]  # ordmag: 2000 / 10
    call = call_cells(totals, expected_cells=50)
    assert call.n_cells == 50 and call.umi_threshold == 200
    assert write_barcode_rank_plot(call, tmp_path / "rank.png").stat().st_size > 1000


# ------------------------------------------------------------------------------------------------ full tier


def _load(name):
    try:
        return real_files.load(name)
    except real_files.FetchError as exc:
        pytest.skip(f"real data could not be fetched: {exc}")


@pytest.fixture(scope="module")
def pbmc_run():
    """PBMC 3k as Cell Ranger wrote it: the symbols of its features file (the shipped names were made unique,
    which is undone) plus ten repeats made on purpose."""
    pbmc = _load("pbmc3k")
    names = cf.repeat_symbols(cf.original_symbols(pbmc.var_names), 10, seed=0)
    return cf.run_from(pbmc.X, pbmc.obs_names, pbmc.var["gene_ids"], names, "hg19")


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["h5 v3", "h5 v2", "mtx v3 gz", "mtx v2 plain, genome folder"])
def test_real_pbmc3k_opens_in_every_layout(layout, pbmc_run, tmp_path):
    write, fmt = LAYOUTS[layout]
    result = open_data(write(pbmc_run, tmp_path))
    _assert_opens_as(result, pbmc_run, fmt)
    assert result.adata.shape == (2700, 32738)
    assert result.records["s1"]["repeated_symbols"] > 10  # the reference's own repeats plus ours


@pytest.mark.slow
@pytest.mark.parametrize("n_empty", [20_000, 60_000])
def test_cell_calling_recovers_the_real_pbmc3k_cells(n_empty, pbmc_run, tmp_path):
    raw, is_cell = cf.add_empty_droplets(pbmc_run, n_empty, seed=n_empty)
    path = cf.write_h5_v3(raw, tmp_path / "pbmc3k" / "outs" / "raw_feature_bc_matrix.h5")
    result = open_data(path)
    called, truth = set(result.adata.obs_names), set(pbmc_run.barcodes)
    recall, precision = len(called & truth) / len(truth), len(called & truth) / len(called)
    # measured (benchmarks/cell_calling.py): the rule misses only the few cells under a tenth of a large cell's UMIs
    assert recall >= 0.99 and precision >= 0.999, (recall, precision)
    assert result.records["pbmc3k"]["barcodes"] == 2700 + n_empty


@pytest.mark.slow
def test_real_pbmc3k_cite_seq_layout(pbmc_run, tmp_path):
    run = cf.add_features(pbmc_run, cf.ADT, [f"{m}_TotalSeqB" for m in ("CD3", "CD4", "CD8a", "CD14", "CD19")])
    result = open_data(cf.write_mtx(run, tmp_path / "cite" / "outs" / "filtered_feature_bc_matrix"))
    assert result.adata.shape == (2700, 32738)
    assert result.adata.obsm["protein_expression"].shape == (2700, 5)
    assert result.records["cite"]["features_set_aside"] == {cf.ADT: 5}


@pytest.mark.slow
def test_kang_conditions_open_as_two_samples(tmp_path):
    kang, pbmc = _load("kang"), _load("pbmc3k")
    to_id = dict(zip(pbmc.var_names, pbmc.var["gene_ids"]))
    ids = np.array([to_id.get(g, f"ENSGKANG{i:07d}") for i, g in enumerate(kang.var_names)], dtype=object)
    runs = {}
    for condition in ("control", "stimulated"):
        cells = kang[kang.obs["condition"] == condition]
        barcodes = [b.split(".")[0] + "-1" for b in cells.obs_names]  # both runs use the same barcode space
        runs[condition] = cf.run_from(cells.X, barcodes, ids, np.asarray(kang.var_names, dtype=object))
    stim = runs["stimulated"]
    keep = np.random.default_rng(0).permutation(len(ids))[40:]  # 40 genes missing, the order shuffled
    stim = cf.run_from(stim.counts[:, keep], stim.barcodes, stim.ids[keep], stim.names[keep])
    paths = [
        cf.write_h5_v3(runs["control"], tmp_path / "ctrl" / "outs" / "filtered_feature_bc_matrix.h5"),
        cf.write_mtx(stim, tmp_path / "stim" / "outs" / "filtered_feature_bc_matrix"),
    ]
    result = open_data(paths)
    adata = result.adata
    assert adata.obs["sample"].value_counts().to_dict() == {"ctrl": 6359, "stim": 7217}
    assert adata.obs_names.is_unique and adata.n_vars == 14053 - 40
    assert result.merge["genes_dropped_per_sample"] == {"ctrl": 40, "stim": 0}
    part = adata[adata.obs["sample"] == "stim"]
    order = pd.Index(stim.ids).get_indexer(part.var["gene_ids"])
    assert (abs(part.X - stim.counts[:, order]) > 0).nnz == 0


def test_the_cells_table_gives_each_cell_its_own_cellranger_barcode_and_results(small_run, tmp_path):
    """cells.csv (``scelmo run``) and <stem>_cells.csv (the app's export): one row per cell with the barcode as the
    sample's own Cell Ranger files have it (intake suffixes it with the sample's name when it joins several), the
    run's columns and the UMAP coordinates, for a spreadsheet or a viewer of one sample."""
    from scelmo_desktop.core.keys import CLUSTER_KEY, NAME_KEY
    from scelmo_desktop.core.workflows.outputs import cells_table

    first = cf.write_h5_v3(small_run, tmp_path / "patientA" / "outs" / "filtered_feature_bc_matrix.h5")
    second = cf.write_mtx(small_run, tmp_path / "patientB" / "outs" / "filtered_feature_bc_matrix")
    adata = open_data([first, second]).adata
    adata.obs[CLUSTER_KEY] = pd.Categorical(np.arange(adata.n_obs) % 3)
    adata.obs[NAME_KEY] = adata.obs[CLUSTER_KEY].map({0: "B cell", 1: "T cell", 2: "monocyte"})
    adata.obsm["X_umap"] = np.random.default_rng(0).normal(size=(adata.n_obs, 2))
    table = cells_table(adata)
    assert len(table) == adata.n_obs == 600 and list(table["barcode"]) == list(adata.obs_names)
    assert list(table["sample"][:300]) == ["patientA"] * 300
    assert list(table["cellranger_barcode"][:300]) == list(small_run.barcodes)
    assert list(table["cellranger_barcode"][300:]) == list(small_run.barcodes)  # each sample's own barcodes
    assert list(table[NAME_KEY]) == list(adata.obs[NAME_KEY]) and "doublet_score" not in table  # no QC was run
    assert np.allclose(table[["UMAP_1", "UMAP_2"]].to_numpy(), adata.obsm["X_umap"])
    one = cells_table(open_data(first).adata)  # one sample: its barcodes are Cell Ranger's already
    assert "cellranger_barcode" not in one and list(one["barcode"]) == list(small_run.barcodes)
