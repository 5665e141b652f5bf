"""The description store: keys, persistence across processes/reopen, and resume after an interrupted run."""

import threading

import numpy as np
import pytest
from conftest import TEST_PARAMS

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import Cancelled
from scelmo_desktop.core.protocols import Generation, GenerationParams
from scelmo_desktop.core.text.generation import describe_entities, description_key, load_template
from scelmo_desktop.core.text.store import Store

GENES = ["CD3E", "MS4A1", "LYZ", "PPBP", "NKG7"]


class CountingFake:
    """A fast stand-in for the fast unit test only; the real-LLM test below covers the real path."""

    def __init__(self):
        self.prompts = []

    def generate(self, prompt, params, cancel=None):
        self.prompts.append(prompt)
        return Generation(text=f"text for {prompt[-40:]}", n_tokens=5, seconds=0.0)

    def info(self):
        return {"name": "fake", "sha256": "0" * 64, "chat_format": "none"}


def _describe(store, factory, *, entities=GENES, params=TEST_PARAMS, sha="a" * 64, **kwargs):
    return describe_entities(
        entities,
        kind="gene",
        model_sha256=sha,
        model_name="m",
        llm_factory=factory,
        store=store,
        template=load_template("gene"),
        params=params,
        **kwargs,
    )


def test_prompt_template_is_the_verbatim_scelmo_prompt():
    template = load_template("gene")
    assert template.render("CD3E") == (
        "Please summarize the major function of gene: CD3E. Use academic language "
        "in one paragraph and include pathway information."
    )


def test_keys_separate_models_prompts_and_decoding(tmp_path):
    fake = CountingFake()
    with Store(tmp_path / "s.sqlite") as store:
        _describe(store, lambda: fake)
        assert len(fake.prompts) == 5
        assert _describe(store, lambda: fake).n_llm_calls == 0  # same key: all cached
        assert _describe(store, lambda: fake, sha="b" * 64).n_llm_calls == 5  # other model
        assert _describe(store, lambda: fake, params=GenerationParams(max_tokens=7)).n_llm_calls == 5  # other params
    with Store(tmp_path / "s.sqlite") as reopened:  # persisted on disk
        key = description_key("gene", "a" * 64, load_template("gene"), TEST_PARAMS)
        assert reopened.count_descriptions(key) == 5
        assert set(reopened.get_descriptions(key, GENES)) == set(GENES)


def test_cached_run_never_loads_the_model(tmp_path):
    fake = CountingFake()
    with Store(tmp_path / "s.sqlite") as store:
        _describe(store, lambda: fake)

        def must_not_load():
            raise AssertionError("the LLM was loaded although every answer is stored")

        result = _describe(store, must_not_load)
    assert result.n_cached == 5 and result.n_llm_calls == 0 and set(result.texts) == set(GENES)


def test_real_llm_run_resumes_after_interruption(tmp_path, llm, llm_info):
    """Interrupt a real llama.cpp run after 2 genes; the re-run asks the LLM only for the 3 missing ones."""
    cancel = threading.Event()

    def stop_after_two(done, total, message):
        if done >= 2:
            cancel.set()

    store_path = tmp_path / "store.sqlite"
    with Store(store_path) as store, pytest.raises(Cancelled):
        _describe(store, lambda: llm, sha=llm_info.sha256, progress=stop_after_two, cancel=cancel)
    with Store(store_path) as store:  # a fresh connection, as after a restart
        first_pass = store.get_descriptions(
            description_key("gene", llm_info.sha256, load_template("gene"), TEST_PARAMS), GENES
        )
        assert sorted(first_pass) == sorted(GENES[:2])
        resumed = _describe(store, lambda: llm, sha=llm_info.sha256)
        assert resumed.n_cached == 2 and resumed.n_llm_calls == 3
        assert all(resumed.texts[g] for g in GENES)  # every gene now has the model's (non-empty) text
        # greedy decoding: the stored answers equal a fresh generation of the same prompt
        fresh = llm.generate(load_template("gene").render("CD3E"), TEST_PARAMS).text
        assert resumed.texts["CD3E"] == fresh


def test_embeddings_round_trip_and_torn_rows_are_ignored(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        vector = np.arange(4, dtype=np.float32)
        store.put_embeddings("emb@1", {"h1": vector})
        np.testing.assert_array_equal(store.get_embeddings("emb@1", ["h1"])["h1"], vector)
        assert store.get_embeddings("other", ["h1"]) == {}
        store._conn.execute("UPDATE embeddings SET dim=5 WHERE text_sha256='h1'")
        assert store.get_embeddings("emb@1", ["h1"]) == {}


def test_corrupt_store_file_gives_clear_error(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ScelmoError, match="cannot be opened"):
        Store(bad)
