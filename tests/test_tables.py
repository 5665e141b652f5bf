"""Importing precomputed gene tables: the restricted unpickler, other formats, and use in the pipeline."""

import os
import pickle

import numpy as np
import pandas as pd
import pytest

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.safe_pickle import safe_unpickle
from scelmo_desktop.core.embedding.tables import import_table, list_tables, read_table_file, resolve_table


class RunsCode:
    """Unpickling this calls os.system: exactly what a malicious table would do."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/scelmo_pwned",))


def test_genept_style_pickle_is_read(tmp_path):
    table = {"CD3E": np.arange(4, dtype=np.float64), "LYZ": [0.5, 0.25, 0.0, 1.0]}
    (tmp_path / "genept.pickle").write_bytes(pickle.dumps(table, protocol=4))
    loaded = read_table_file(tmp_path / "genept.pickle")
    assert loaded.symbols == ["CD3E", "LYZ"] and loaded.vectors.dtype == np.float32
    np.testing.assert_allclose(loaded.vectors[1], [0.5, 0.25, 0.0, 1.0])
    assert safe_unpickle(pickle.dumps({"A": np.ones(3)}, protocol=5))["A"].sum() == 3


def test_pickle_that_would_run_code_is_refused(tmp_path):
    marker = "/tmp/scelmo_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"CD3E": RunsCode()}))
    with pytest.raises(ScelmoError, match="Refused to load the pickle: it asks for 'posix.system'"):
        read_table_file(evil)
    assert not os.path.exists(marker)


def test_csv_import_list_and_resolve(tmp_path):
    frame = pd.DataFrame({"symbol": ["CD3E", "MS4A1"], "d0": [1.0, 0.0], "d1": [0.0, 1.0]})
    frame.to_csv(tmp_path / "mine.csv", index=False)
    name, table = import_table(tmp_path / "mine.csv", "my-table")
    assert name == "my-table" and table.dim == 2
    rows = list_tables()
    assert [(r["name"], r["genes"], r["dim"]) for r in rows] == [("my-table", 2, 2)]
    stored = resolve_table("my-table")
    assert stored.provenance["source_sha256"] and stored.provenance["imported_from"].endswith("mine.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("symbol,d0\nCD3E,abc\n")
    with pytest.raises(ScelmoError, match="non-numeric"):
        read_table_file(bad)
    with pytest.raises(ScelmoError, match="Table name"):
        import_table(tmp_path / "mine.csv", "../escape")


def test_imported_table_drives_the_pipeline(tmp_path, pbmc):
    from scelmo_desktop.core.protocols import LLMSource
    from scelmo_desktop.core.settings import PipelineSettings
    from scelmo_desktop.core.text.store import Store
    from scelmo_desktop.core.workflows.pipeline import run_pipeline

    rng = np.random.default_rng(0)
    genes = list(pbmc.raw.var_names[:300])
    (tmp_path / "t.pickle").write_bytes(pickle.dumps({g: rng.normal(size=16) for g in genes}))
    _, table = import_table(tmp_path / "t.pickle")
    never = LLMSource(name="x", sha256="", factory=lambda: pytest.fail("LLM used with an imported table"))
    with Store(tmp_path / "s.sqlite") as store:
        result = run_pipeline(
            pbmc.copy(),
            settings=PipelineSettings(label_key="bulk_labels"),
            llm=never,
            embedder=None,
            store=store,
            table=table,
        )
    assert result.record["coverage"]["n_matched"] == 300 and result.adata.obsm["X_scelmo_wa"].shape == (700, 16)
    assert result.record["description_mode"] == "imported table" and result.record["llm_calls"] == 0
