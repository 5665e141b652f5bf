"""Description packs: export → import round trip with hash checks, and embedder separation."""

import zipfile

import numpy as np
import pytest

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.text.packs import export_pack, import_pack
from scelmo_desktop.core.text.store import DescriptionKey, Store

KEY = DescriptionKey(kind="gene", model_sha256="m" * 64, template_sha256="t" * 64, params_sha256="p" * 64)


def _filled_store(path):
    store = Store(path)
    for gene in ("CD3E", "LYZ"):
        store.put_description(KEY, gene, f"{gene} text", prompt=f"prompt {gene}", model_name="gemma", params={"a": 1})
    store.put_embeddings("minilm@abc", {"h1": np.ones(4, np.float32), "h2": np.zeros(4, np.float32)})
    store.put_embeddings("other@def", {"h1": np.ones(8, np.float32)})
    return store


def test_round_trip_imports_descriptions_and_matching_embeddings(tmp_path):
    with _filled_store(tmp_path / "a.sqlite") as source:
        manifest = export_pack(source, tmp_path / "pack.zip")
    assert manifest["n_descriptions"] == 2 and manifest["embedders"] == ["minilm@abc", "other@def"]
    with Store(tmp_path / "b.sqlite") as target:
        summary = import_pack(target, tmp_path / "pack.zip", embedder_id="minilm@abc")
        assert summary["descriptions_new"] == 2 and summary["embeddings_imported"] == 2
        assert summary["embedders_skipped"] == ["other@def"]  # another embedder's space is never mixed in
        stored = target.get_descriptions(KEY, ["CD3E", "LYZ"])
        assert stored["LYZ"].text == "LYZ text" and stored["LYZ"].prompt == "prompt LYZ"
        np.testing.assert_array_equal(target.get_embeddings("minilm@abc", ["h1"])["h1"], np.ones(4))
        assert target.get_embeddings("other@def", ["h1"]) == {}
        again = import_pack(target, tmp_path / "pack.zip", embedder_id="minilm@abc")
        assert again["descriptions_new"] == 0  # idempotent; local answers win


def test_altered_pack_is_refused_and_nothing_imported(tmp_path):
    with _filled_store(tmp_path / "a.sqlite") as source:
        export_pack(source, tmp_path / "pack.zip")
    with zipfile.ZipFile(tmp_path / "pack.zip") as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    members["descriptions.jsonl"] = members["descriptions.jsonl"].replace(b"LYZ text", b"LYZ TEXT")
    with zipfile.ZipFile(tmp_path / "tampered.zip", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with Store(tmp_path / "b.sqlite") as target:
        with pytest.raises(ScelmoError, match="does not match the sha256"):
            import_pack(target, tmp_path / "tampered.zip", embedder_id="minilm@abc")
        assert target.count_descriptions() == 0
        (tmp_path / "junk.zip").write_bytes(b"not a zip")
        with pytest.raises(ScelmoError, match="not a scELMo description pack"):
            import_pack(target, tmp_path / "junk.zip", embedder_id="minilm@abc")
