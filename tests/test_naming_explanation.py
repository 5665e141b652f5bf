"""A local LLM explains cluster names from their evidence and may choose only among the ranked candidates.

The checks on an answer run on scripted answers (a stub backend: what a capable model would write is not
something the embedded 270M base model can produce); the real llama.cpp model runs the same path once."""

import json

import pytest

from scelmo_desktop.core._infra.jobs import Cancelled
from scelmo_desktop.core.data.io import select_expression
from scelmo_desktop.core.keys import NAME_KEY, UNS_KEY
from scelmo_desktop.core.protocols import Generation, GenerationParams, LLMSource
from scelmo_desktop.core.settings import PipelineSettings
from scelmo_desktop.core.tasks.naming_explanation import candidates, explanation_prompt, read_answer
from scelmo_desktop.core.workflows.markers import markers_and_names_of_data
from scelmo_desktop.core.workflows.naming import WEAK_MODEL_FLAG, explain_names, naming_evidence, rename_group


class ScriptedLLM:
    """Answers each prompt with ``answer(prompt)``; stops (as Cancel does) after ``cancel_after`` answers."""

    parallel = 2

    def __init__(self, answer, cancel_after=None):
        self.answer, self.cancel_after, self.prompts = answer, cancel_after, []

    def generate_many(self, prompts, params, cancel=None):
        for index, prompt in enumerate(prompts):
            if self.cancel_after is not None and index == self.cancel_after:
                raise Cancelled()
            self.prompts.append(prompt)
            yield index, Generation(self.answer(prompt), 20, 0.1)

    def info(self):
        return {"name": "scripted"}


def _source(backend, **info):
    return LLMSource(name="scripted", sha256="0" * 64, factory=lambda: backend, info=info)


@pytest.fixture
def named(pbmc):
    """pbmc68k_reduced's louvain clusters, named from their markers (real knowledge, real Wilcoxon)."""
    adata = pbmc.copy()
    settings = PipelineSettings()
    found = markers_and_names_of_data(adata, groupby="louvain", settings=settings)
    return adata, found.naming, select_expression(adata, settings.layer, input_kind=settings.input_kind)


def _group_with_runner_up(naming) -> str:
    return next(g for g, call in naming.groups.items() if call.runners_up)


def test_the_prompt_shows_the_evidence_and_numbers_only_the_ranked_candidates(named):
    _, naming, _ = named
    call = naming.groups[_group_with_runner_up(naming)]
    prompt = explanation_prompt(call)
    options = candidates(call)
    assert options[0]["name"] == call.name and len(options) == 1 + len(call.runners_up)
    for number, option in enumerate(options, start=1):
        assert f"{number}. {option['name']} ({option['term_id']})" in prompt
    assert all(m["gene"] in prompt for m in call.supporting[:3])
    assert f"{len(options) + 1}. " not in prompt  # no other numbered line a model could take for a candidate


def test_an_answer_is_read_and_checked_against_the_evidence(named):
    adata, naming, expression = named
    call = naming.groups[_group_with_runner_up(naming)]
    prompt = explanation_prompt(call)
    shown = call.supporting[0]["gene"]
    genes = [str(g) for g in expression.var_names]
    unseen = next(g for g in genes if g not in prompt and g.isupper() and len(g) > 3)

    taken = read_answer(f"Choice: 2\nReason: {shown} is high in the cluster.", call, prompt=prompt, data_genes=genes)
    assert (taken.choice, taken.name, taken.flags, taken.cited) == (1, call.runners_up[0]["name"], [], [shown])
    assert not taken.agrees

    outside = read_answer(f"Choice: 1\nReason: {unseen} decides it.", call, prompt=prompt, data_genes=genes)
    assert outside.agrees and outside.flags == [f"cites genes outside the evidence: {unseen}"]

    invented = read_answer("Choice: 9\nReason: a pericyte.", call, prompt=prompt, data_genes=genes)
    assert invented.choice is None and invented.name == call.name  # no label of its own: the call stands
    assert invented.flags == ["chose 9, not a candidate"]

    echo = read_answer(prompt, call, prompt=prompt, data_genes=genes)  # what the embedded base model does
    assert echo.choice is None and {"no choice", "repeats the prompt"} <= set(echo.flags)

    assert read_answer("", call, prompt=prompt, data_genes=genes).flags == ["no choice", "empty"]


def test_with_choose_a_checked_answer_takes_a_runner_up_and_a_flagged_one_does_not(named):
    adata, naming, expression = named
    group = _group_with_runner_up(naming)
    runner = naming.groups[group].runners_up[0]
    others = [g for g in naming.groups if g != group and naming.groups[g].term_id]
    n_named = len(others) + 1
    rename_group(adata, others[0], "my own name", naming=naming)  # a hand edit is never explained over

    def answer(prompt):
        if f"({group})" in prompt:
            gene = prompt.split("\n- ")[1].split(":")[0]  # the cluster's first supporting marker
            return f"Choice: 2\nReason: {gene} is expressed by most cells of the cluster."
        return "Choice: 2\nReason: NOTAGENE0 and the candidates are listed above in the evidence."

    backend = ScriptedLLM(answer)
    explain_names(adata, naming, _source(backend), expression, choose=True)

    call = naming.groups[group]
    assert (call.name, call.term_id, call.chosen_by) == (runner["name"], runner["term_id"], "llm")
    assert call.confidence == runner["confidence"]
    cells = adata.obs["louvain"].astype(str) == group
    assert set(adata.obs.loc[cells, NAME_KEY]) == {runner["name"]}
    assert set(adata.obs.loc[cells, f"{NAME_KEY}_ontology_id"]) == {runner["term_id"]}
    assert len(backend.prompts) == n_named - 1  # not the hand-named one
    assert naming.groups[others[0]].name == "my own name" and not naming.groups[others[0]].explanation
    record = adata.uns[UNS_KEY]["naming"]
    assert json.loads(record["explanations"])["llm"]["sha256"] == "0" * 64
    stored = naming_evidence(adata)
    assert stored[group]["chosen_by"] == "llm" and stored[group]["explanation"]["choice"] == 1
    assert (
        naming.table()
        .loc[lambda t: t["group"] == group, "llm_reason"]
        .item()
        .startswith(call.explanation["reason"][:10])
    )


def test_a_measured_weak_model_is_flagged_and_never_chooses(named):
    adata, naming, expression = named
    group = _group_with_runner_up(naming)
    before = naming.groups[group].name
    explain_names(
        adata,
        naming,
        _source(ScriptedLLM(lambda p: "Choice: 2\nReason: fine."), trusted_for_text=False),
        expression,
        choose=True,
    )
    assert naming.groups[group].name == before
    assert WEAK_MODEL_FLAG in naming.groups[group].explanation["flags"]
    assert json.loads(adata.uns[UNS_KEY]["naming"]["explanations"])["model_measured_weak"] is True


def test_a_cancelled_job_keeps_the_answers_given_before_it(named):
    adata, naming, expression = named
    with pytest.raises(Cancelled):
        explain_names(adata, naming, _source(ScriptedLLM(lambda p: "Choice: 1\nReason: ok.", 2)), expression)
    stored = naming_evidence(adata)
    assert sum(bool(call.get("explanation")) for call in stored.values()) == 2


def test_the_real_embedded_model_runs_and_its_answers_are_flagged_not_taken(pbmc):
    """The 270M base model echoes its prompt (measured): the door marks it too weak, and nothing is renamed."""
    from scelmo_desktop.app.session import ModelSession
    from scelmo_desktop.core.settings import ModelSettings

    adata = pbmc[pbmc.obs["louvain"].isin(["0", "4", "6"])].copy()  # three clusters: a short real run
    settings = PipelineSettings()
    naming = markers_and_names_of_data(adata, groupby="louvain", settings=settings).naming
    names = {g: c.name for g, c in naming.groups.items()}
    session = ModelSession()
    try:
        llm = session.explainer(ModelSettings(mode="facts"))  # the app's default: facts mode, the embedded LLM
        assert llm.info["trusted_for_text"] is False
        expression = select_expression(adata, settings.layer, input_kind=settings.input_kind)
        explain_names(adata, naming, llm, expression, choose=True, params=GenerationParams(max_tokens=24))
    finally:
        session.close()
    assert {g: c.name for g, c in naming.groups.items()} == names
    for call in naming.groups.values():
        assert WEAK_MODEL_FLAG in call.explanation["flags"]
        assert call.explanation["term_id"] in {c["term_id"] for c in candidates(call)}
    assert json.loads(adata.uns[UNS_KEY]["naming"]["explanations"])["llm"]["name"] == llm.name


def test_annotate_by_markers_with_explanations_from_the_command_line(pbmc, tmp_path, capsys):
    """``scelmo annotate --mode markers --naming-llm explain``: the real embedded LLM answers (flagged as too weak)
    and the table and the h5ad carry its reasons; the names stay the evidence's."""
    import anndata as ad
    import pandas as pd

    from scelmo_desktop import cli

    adata = pbmc[pbmc.obs["louvain"].isin(["0", "4", "6"])].copy()
    adata.write_h5ad(tmp_path / "clustered.h5ad")
    out = tmp_path / "out"
    args = ["annotate", "--query", str(tmp_path / "clustered.h5ad"), "--mode", "markers", "--groupby", "louvain"]
    code = cli.main([*args, "--naming-llm", "explain", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and printed.count("LLM (") == 3 and "too weak" in printed
    table = pd.read_csv(out / "cell_types.csv")
    assert table["llm_flags"].str.contains("too weak").all() and (table["chosen_by"] == "evidence").all()
    named = ad.read_h5ad(out / "scelmo_markers.h5ad")
    stored = json.loads(named.uns[UNS_KEY]["naming"]["groups"])
    assert all(call["explanation"]["flags"] for call in stored.values())


def test_the_python_face_explains_names_stored_in_the_data(named):
    """``scelmo.tl.explain_names`` works from what ``name_cell_types`` stored (a file read back, no Naming kept)."""
    import scelmo_desktop as scelmo
    from scelmo_desktop.core.workflows.naming import naming_of_data

    adata, naming, _ = named
    assert {g: vars(c) for g, c in naming_of_data(adata).groups.items()} == {
        g: vars(c) for g, c in naming.groups.items()
    }

    class Models:  # what scelmo.models.load returns, with a scripted LLM as its explainer
        choice = None
        session = type(
            "Session", (), {"explainer": lambda self, choice: _source(ScriptedLLM(lambda p: "Choice: 1\nReason: ok."))}
        )()

    table = scelmo.tl.explain_names(adata, models=Models())
    assert table["llm_choice"].tolist() == table["cell_type"].tolist() and (table["chosen_by"] == "evidence").all()
