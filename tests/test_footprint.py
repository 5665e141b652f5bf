"""Memory before trouble: a data file's size read from its header (every Cell Ranger layout and .h5ad), a read
that cannot fit refused with one line before any value is read, and a run that may not fit said at intake. The
memory free is passed in (or patched): the rules are tested, not this machine's memory."""

import anndata as ad
import cellranger_files as cf
import numpy as np
import pytest
import scipy.sparse as sp
from test_intake import LAYOUTS

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.data import footprint
from scelmo_desktop.core.data import samples as sample_io
from scelmo_desktop.core.workflows.intake import open_data

GIB = 2**30


@pytest.fixture
def run():
    return cf.synthetic_run(300, 200, seed=0)


@pytest.mark.parametrize("layout", [name for name in LAYOUTS if "genome folder" not in name])
def test_the_header_gives_the_size_of_every_cellranger_layout(layout, run, tmp_path):
    write, _ = LAYOUTS[layout]
    path = write(run, tmp_path)
    found = footprint.footprint(path)
    assert found is not None, layout
    assert (found.barcodes, found.genes, found.stored) == (300, 200, run.counts.nnz)
    assert found.read_bytes == int(run.counts.nnz * footprint.READ_BYTES_PER_VALUE[found.storage])


def test_an_h5ad_counts_its_layers_and_raw_and_a_csv_is_not_sized(tmp_path):
    counts = sp.random(50, 40, density=0.2, format="csr", random_state=0, dtype=np.float32)
    adata = ad.AnnData(counts.copy(), layers={"counts": counts.copy()})
    adata.raw = adata.copy()
    path = tmp_path / "a.h5ad"
    adata.write_h5ad(path)
    found = footprint.footprint(path)
    assert (found.barcodes, found.genes, found.stored) == (50, 40, 3 * counts.nnz)
    dense = tmp_path / "dense.h5ad"
    ad.AnnData(np.ones((7, 5), dtype=np.float32)).write_h5ad(dense)
    assert footprint.footprint(dense).stored == 35
    (tmp_path / "x.csv").write_text("g,a\nc,1\n")
    assert footprint.footprint(tmp_path / "x.csv") is None
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"\x89HDF\r\n\x1a\nnot really")
    assert footprint.footprint(broken) is None  # the read says what is wrong, in its own words


def test_a_read_that_cannot_fit_is_refused_with_one_line_before_reading(run, tmp_path, monkeypatch):
    path = cf.write_h5_v3(run, tmp_path / "patientA" / "outs" / "raw_feature_bc_matrix.h5")
    found = footprint.footprint(path)
    footprint.check_fits(found, available=found.read_bytes + 1)  # fits: nothing said
    with pytest.raises(ScelmoError) as refused:
        footprint.check_fits(found, available=found.read_bytes - 1)
    line = str(refused.value)
    assert str(path) in line and "300 barcodes x 200 genes" in line and "free" in line and "\n" not in line
    monkeypatch.setattr(footprint, "available_bytes", lambda: found.read_bytes // 2)
    reads = []
    monkeypatch.setattr(sample_io, "read_sample", lambda *a, **k: reads.append(a))
    with pytest.raises(ScelmoError, match="reading it needs about"):
        open_data(path)
    assert reads == []  # refused before any value was read


def test_a_run_that_may_not_fit_is_said_at_intake(run, tmp_path, monkeypatch):
    need = footprint.run_peak_bytes(300, 300)
    # more cells cost more, and one large sample more than the same cells in several (Scrublet runs per sample)
    one_file, eight_patients = footprint.run_peak_bytes(40_000, 40_000), footprint.run_peak_bytes(40_000, 5_000)
    assert one_file > eight_patients > footprint.run_peak_bytes(20_000, 5_000) > need >= footprint.RUN_BASE_BYTES
    assert footprint.run_warning(300, 300, available=10 * need) is None
    line = footprint.run_warning(300, 300, available=need)
    assert line is not None and "300 cells" in line and "GiB" in line and "\n" not in line
    path = cf.write_h5_v3(run, tmp_path / "s1.h5")
    monkeypatch.setattr(footprint, "available_bytes", lambda: 10 * need)
    assert not open_data(path).warnings
    monkeypatch.setattr(footprint, "available_bytes", lambda: int(need / 2))
    opened = open_data(path)
    assert opened.adata.n_obs == 300 and len(opened.warnings) == 1  # said, not refused: the estimate is rough
    assert opened.summary_lines()[-1] == opened.warnings[0]
    smaller = cf.run_from(run.counts[:100], run.barcodes[:100], run.ids, run.names)
    two = open_data([path, cf.write_h5_v3(smaller, tmp_path / "s2.h5")])
    assert "400 cells" in two.warnings[0] and "up to 300 cells at once" in two.warnings[0]
