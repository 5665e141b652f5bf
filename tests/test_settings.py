"""Every setting is declared once (``core.settings``) and every door is built from that declaration: the CLI's
flags, the app's editors, ``scelmo.tl``'s keyword arguments, the project file and the provenance record."""

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

from scelmo_desktop.core import settings as settings_module
from scelmo_desktop.core.settings import SETTINGS, PipelineSettings, Setting

PACKAGE = Path(settings_module.__file__).resolve().parents[1]


@pytest.fixture
def throwaway(monkeypatch):
    """A setting added to the declaration only, as a new setting is added: one line there."""
    import scelmo_desktop.tl

    setting = Setting(
        "throwaway_knob",
        7,
        "a knob only this test turns",
        type=int,
        minimum=1,
        maximum=50,
        tasks=("run", "embed"),
        label="Throwaway knob",
    )
    monkeypatch.setitem(SETTINGS, setting.name, setting)
    importlib.reload(scelmo_desktop.tl)  # the face's signatures are made when it is imported
    yield setting
    monkeypatch.delitem(SETTINGS, setting.name)
    importlib.reload(scelmo_desktop.tl)


def test_a_new_setting_reaches_every_door_with_no_other_edit(throwaway, qtbot, tmp_path, capsys):
    from scelmo_desktop import tl
    from scelmo_desktop.cli.options import pipeline_settings
    from scelmo_desktop.cli.parser import build_parser
    from scelmo_desktop.core.data.demo import DEMO_SOURCE
    from scelmo_desktop.gui.project import Project, ProjectSettings
    from scelmo_desktop.gui.settings_form import SettingsForm

    # the CLI: a flag with its help and default, parsed into the settings the workflows take
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--throwaway-knob" in help_text and "a knob only this test turns (default 7)" in help_text
    args = build_parser().parse_args(["run", "cells.h5ad", "--out", "o", "--throwaway-knob", "9"])
    assert pipeline_settings(args, mode="facts").throwaway_knob == 9
    assert build_parser().parse_args(["run", "cells.h5ad", "--out", "o"]).throwaway_knob == 7
    with pytest.raises(SystemExit):  # the declared range is checked
        build_parser().parse_args(["run", "cells.h5ad", "--out", "o", "--throwaway-knob", "99"])
    assert "at most 50" in capsys.readouterr().err
    # the app: an editor with the declared range, default and tooltip, writing into the project's settings
    project_settings = ProjectSettings()
    form = SettingsForm(project_settings)
    qtbot.addWidget(form)
    editor = form.editor("throwaway_knob")
    assert editor.value() == 7 and editor.editor.maximum() == 50 and "knob only this test" in editor.toolTip()
    editor.editor.setValue(11)
    assert project_settings.throwaway_knob == 11
    # the face: a keyword argument with the declared default, checked like the flag
    signature = inspect.signature(tl.embed_cells)
    assert signature.parameters["throwaway_knob"].default == 7
    assert signature.parameters["throwaway_knob"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "throwaway_knob=7" in tl.embed_cells.__doc__
    with pytest.raises(ValueError, match="at most 50"):
        tl.embed_cells(None, throwaway_knob=99)
    # the project file: saved, and read back
    project = Project()
    project.open_data(DEMO_SOURCE)
    project.settings.throwaway_knob = 12
    saved = project.save(tmp_path / "knob")
    assert '"throwaway_knob": 12' in saved.read_text()
    assert Project.load(saved).settings.throwaway_knob == 12
    # provenance: the record every workflow writes
    assert PipelineSettings(throwaway_knob=3).as_dict()["throwaway_knob"] == 3


def test_the_doors_show_the_declared_defaults():
    from scelmo_desktop import tl
    from scelmo_desktop.cli.parser import build_parser

    run = build_parser().parse_args(["run", "cells.h5ad", "--out", "o"])
    demo = build_parser().parse_args(["demo"])
    for setting in SETTINGS.values():
        if "run" in setting.tasks:
            assert getattr(run, setting.name) == setting.default_for("run"), setting.name
    assert demo.llm_genes == SETTINGS["llm_genes"].task_defaults["demo"]  # the demo's own budget
    annotate = inspect.signature(tl.annotate).parameters
    for name in ("k", "threshold", "smoothing", "text_scoring", "method", "epochs"):
        assert annotate[name].default == SETTINGS[name].default, name


def _distinctive(value) -> bool:
    """A default worth searching for: 0, 1, None, booleans, empty values and the common words ('auto', 'none')
    occur everywhere for other reasons."""
    if isinstance(value, bool) or value is None or value in (0, 1, -1, "", [], "auto", "none"):
        return False
    return isinstance(value, int | float | str)


def _literal_defaults(tree: ast.AST):
    """Every (parameter or keyword name, literal default) in a module: function defaults, ``name=literal``
    keyword arguments, ``default=literal`` next to a flag, and class fields ``name: type = literal``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            arguments = node.args
            positional = arguments.posonlyargs + arguments.args
            for argument, value in zip(positional[len(positional) - len(arguments.defaults) :], arguments.defaults):
                yield argument.arg, value
            for argument, value in zip(arguments.kwonlyargs, arguments.kw_defaults):
                if value is not None:
                    yield argument.arg, value
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg:
                    yield keyword.arg, keyword.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            yield node.target.id, node.value


def test_no_declared_default_is_written_anywhere_else():
    """``grep`` for each declared setting's default beside its name finds only the declaration: a copy of a
    default drifts the day the declaration changes."""
    declared = {s.name: s.default for s in SETTINGS.values() if _distinctive(s.default)}
    assert {"max_genes", "llm_genes", "epochs", "max_tokens", "timeout", "retries", "k", "n_neighbors"} <= set(declared)
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == Path(settings_module.__file__).resolve():
            continue
        tree = ast.parse(path.read_text())
        for name, value in _literal_defaults(tree):
            if (
                name in declared
                and isinstance(value, ast.Constant)
                and value.value == declared[name]
                and type(value.value) is type(declared[name])
            ):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{value.lineno} {name}={value.value!r}")
    assert not found, "literal defaults of declared settings (take them from core.settings):\n" + "\n".join(found)


def test_a_bad_value_is_refused_with_what_is_allowed():
    with pytest.raises(ValueError, match=r"the max_genes setting takes a whole number at least 1, or 'all'"):
        SETTINGS["max_genes"].check("0")
    assert SETTINGS["max_genes"].check("all") is None and SETTINGS["max_genes"].check("300") == 300
    with pytest.raises(ValueError, match="one of knn, text, adaptor"):
        SETTINGS["method"].check("magic")
    with pytest.raises(TypeError, match="no setting max_gene"):
        PipelineSettings(max_gene=3)


def test_old_project_files_still_open(tmp_path):
    """Version 1 files (one flat dict, the app's own names) open with the same values."""
    import json

    from scelmo_desktop.gui.project import Project

    old = {
        "format": "scelmo-desktop project",
        "version": 1,
        "results": {},
        "settings": {
            "data_path": None,
            "max_genes": 40,
            "mode": "facts",
            "llm_batch": 3,
            "llm_server": "",
            "llm_server_model": "default",
            "n_neighbors": 20,
            "an_old_knob": 1,
        },
    }
    path = tmp_path / "old.scelmo.json"
    path.write_text(json.dumps(old))
    project = Project.load(path)
    s = project.settings
    assert (s.max_genes, s.mode, s.parallel, s.server_url, s.server_model, s.n_neighbors) == (
        40,
        "facts",
        3,
        None,
        "default",
        20,
    )
    assert project.skipped_settings == ["an_old_knob (not a setting of this version)"]
    newer = dict(old, version=99)
    path.write_text(json.dumps(newer))
    from scelmo_desktop.core._infra.errors import ScelmoError

    with pytest.raises(ScelmoError, match="newer scELMo Desktop"):
        Project.load(path)


def test_flags_name_the_setting_core_talks_about():
    """Core's errors say 'the NAME setting'; the CLI adds the flag that sets it, from the declaration."""
    from scelmo_desktop.cli.main import _with_flags

    assert _with_flags("check the symbol column setting") == "check the symbol column setting [--symbol-column]"
    assert re.search(r"\[--llm-parallel\]$", _with_flags("the parallel setting takes a whole number"))
