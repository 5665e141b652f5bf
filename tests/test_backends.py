"""Backends and the models folder: real GGUF generation, chat-format resolution, refusals with clear messages."""

import json
import shutil

import pytest
from conftest import TEST_PARAMS

from scelmo_desktop.backends import registry
from scelmo_desktop.backends.llama_cpp import LlamaCppBackend, resolve_chat_format
from scelmo_desktop.backends.sentence_transformers import check_sentence_transformers_folder
from scelmo_desktop.core._infra.errors import ScelmoError


def test_real_gguf_is_deterministic_and_reports_itself(llm, llm_info):
    prompt = "Please summarize the major function of gene: LYZ."
    first, second = llm.generate(prompt, TEST_PARAMS), llm.generate(prompt, TEST_PARAMS)
    assert first.text == second.text and first.text.strip()
    assert 0 < first.n_tokens <= TEST_PARAMS.max_tokens
    info = llm.info()
    assert info["chat_format"] == "gemma" and info["architecture"] == "gemma3"
    assert info["sha256"] == llm_info.sha256 == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


def test_chat_format_resolution():
    assert resolve_chat_format({"tokenizer.chat_template": "{{x}}"}, None) is None  # the file's own template
    assert resolve_chat_format({"general.architecture": "gemma3"}, None) == "gemma"
    assert resolve_chat_format({"general.architecture": "qwen2"}, None) == "chatml"
    assert resolve_chat_format({"tokenizer.chat_template": "{{x}}"}, "llama-3") == "llama-3"  # override wins


def test_non_gguf_file_is_refused(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ScelmoError, match="not a GGUF model file"):
        LlamaCppBackend(bad, sha256="0" * 64)


def test_truncated_gguf_gives_a_clear_error(tmp_path, llm_info):
    truncated = tmp_path / "cut.gguf"
    with open(llm_info.path, "rb") as source:
        truncated.write_bytes(source.read(4_000_000))
    with pytest.raises(ScelmoError, match="could not load"):
        LlamaCppBackend(truncated, sha256="0" * 64)


def test_manifest_hash_mismatch_is_refused(tmp_path):
    (tmp_path / "known.gguf").write_bytes(b"GGUF" + b"\0" * 100)
    manifest = {
        "models": [{"name": "known", "kind": "gguf", "file": "known.gguf", "sha256": "f" * 64, "default": True}]
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    listed = registry.list_models(tmp_path)
    assert [m.verified for m in listed if m.kind == "gguf"] == [False]
    with pytest.raises(ScelmoError, match="does not match its manifest sha256"):
        registry.find_model("gguf", folder=tmp_path)


def test_unlisted_gguf_is_listed_and_empty_folder_explains(tmp_path, llm_info):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ScelmoError, match="No gguf model found"):
        registry.find_model("gguf", folder=empty)
    shutil.copy(llm_info.path, tmp_path / "mine.gguf")
    found = registry.find_model("gguf", "mine", folder=tmp_path)
    assert found.sha256 == llm_info.sha256 and found.verified is None  # not in a manifest: listed, unverified


def test_incomplete_sentence_transformers_folder(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ScelmoError, match="missing modules.json, model.safetensors"):
        check_sentence_transformers_folder(tmp_path)


def test_embedder_is_local_and_offline(embedder):
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_HUB_DISABLE_TELEMETRY"] == "1"
    vectors = embedder.embed(["T cell receptor signalling", "lysozyme in monocytes"])
    assert vectors.shape == (2, 384) and embedder.info()["max_seq_length"] == 256


def test_streamed_generation_matches_and_stops_on_cancel(llm):
    import threading

    from scelmo_desktop.core._infra.jobs import Cancelled

    prompt = "Please summarize the major function of gene: CD3E. Use academic language in one paragraph."
    plain = llm.generate(prompt, TEST_PARAMS)
    streamed = llm.generate(prompt, TEST_PARAMS, cancel=threading.Event())
    assert streamed.text == plain.text and streamed.text  # same greedy answer either way
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        llm.generate(prompt, TEST_PARAMS, cancel=stop)
