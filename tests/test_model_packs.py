"""Model packs carry a model across the air gap: export → import verifies every file, refuses altered packs and
members that would escape the models folder, and the imported model is verified from then on."""

import json
import zipfile

import pytest

from scelmo_desktop import cli
from scelmo_desktop.backends import registry
from scelmo_desktop.backends.model_packs import PACK_MANIFEST, export_model_pack, import_model_pack
from scelmo_desktop.core._infra.errors import ScelmoError


@pytest.fixture
def source_folder(tmp_path):
    folder = tmp_path / "source"
    folder.mkdir()
    (folder / "tiny.gguf").write_bytes(b"GGUF" + (3).to_bytes(4, "little") + bytes(range(256)) * 64)
    return folder


def test_round_trip_installs_a_verified_model(tmp_path, source_folder, capsys):
    pack = tmp_path / "tiny.zip"
    assert (
        cli.main(
            [
                "--models-dir",
                str(source_folder),
                "models",
                "export",
                "tiny",
                "--out",
                str(pack),
                "--license",
                "CC-BY-4.0",
            ]
        )
        == 0
    )
    target = tmp_path / "models"
    assert cli.main(["--models-dir", str(target), "models", "import", str(pack)]) == 0
    assert "every file verified" in capsys.readouterr().out
    info = registry.find_model("gguf", "tiny", target)
    assert info.verified is True and info.license == "CC-BY-4.0"
    assert info.sha256 == registry.find_model("gguf", "tiny", source_folder).sha256
    with pytest.raises(ScelmoError, match="already exists"):
        import_model_pack(pack, target)


def test_altered_pack_is_refused_and_nothing_installed(tmp_path, source_folder):
    info = registry.find_model("gguf", "tiny", source_folder)
    pack = tmp_path / "tiny.zip"
    export_model_pack(info, pack)
    altered = tmp_path / "altered.zip"
    with zipfile.ZipFile(pack) as original, zipfile.ZipFile(altered, "w") as copy:
        for item in original.infolist():
            data = original.read(item)
            copy.writestr(item, data if item.filename == PACK_MANIFEST else data[:-1] + b"X")
    target = tmp_path / "models"
    with pytest.raises(ScelmoError, match="does not match its sha256.*Nothing was installed"):
        import_model_pack(altered, target)
    assert [p.name for p in target.iterdir()] == []  # no model, no staging folder, no manifest entry


def test_member_escaping_the_models_folder_is_refused(tmp_path):
    evil = tmp_path / "evil.zip"
    manifest = {
        "format": "scelmo-model-pack",
        "version": 1,
        "files": {"../escaped.gguf": "0" * 64},
        "model": {"name": "evil", "kind": "gguf", "file": "../escaped.gguf"},
    }
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr(PACK_MANIFEST, json.dumps(manifest))
        archive.writestr("../escaped.gguf", b"GGUF")
    with pytest.raises(ScelmoError, match="outside the models folder"):
        import_model_pack(evil, tmp_path / "models")
    assert not (tmp_path / "escaped.gguf").exists()


def test_not_a_pack(tmp_path):
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ScelmoError, match="not a scELMo model pack"):
        import_model_pack(plain, tmp_path / "models")
    (tmp_path / "junk.zip").write_text("no zip")
    with pytest.raises(ScelmoError, match="not a readable model pack"):
        import_model_pack(tmp_path / "junk.zip", tmp_path / "models")


def test_a_model_outside_the_manifest_is_pinned_at_first_use(tmp_path, source_folder, capsys):
    from scelmo_desktop.backends.trust import check_first_use

    info = registry.find_model("gguf", "tiny", source_folder)
    assert info.expected_sha256 is None
    assert check_first_use(info) == "recorded" and check_first_use(info) == "known"
    (source_folder / "tiny.gguf").write_bytes(b"GGUF" + (3).to_bytes(4, "little") + b"swapped" * 100)
    changed = registry.find_model("gguf", "tiny", source_folder)
    with pytest.raises(ScelmoError, match="has changed since it was first used.*models trust tiny"):
        check_first_use(changed)
    with pytest.raises(ScelmoError, match="has changed since it was first used"):
        registry.open_llm(changed)  # refused before llama.cpp sees the file
    assert cli.main(["--models-dir", str(source_folder), "models", "trust", "tiny"]) == 0
    assert check_first_use(changed) == "known"
    shipped = registry.find_model("gguf")
    assert check_first_use(shipped) == "manifest"  # listed models are checked against the manifest instead
