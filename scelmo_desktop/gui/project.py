"""The app's model, kept free of Qt (napari's split of model and view): what data is open, the settings, the
models in use, and the results so far. A project saves to and reopens from one JSON file.

Results are not pickled into the project: the data path and settings are enough to recompute them, every
description and embedding is in the store, so reopening a project and pressing Run is cheap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from scelmo_desktop.core.settings import ANALYSIS, MODELS, SETTINGS, ModelSettings, PipelineSettings
from scelmo_desktop.core.workflows.data import DEMO_SOURCE
from scelmo_desktop.core.workflows.environment import ScelmoError

PROJECT_SUFFIX = ".scelmo.json"
PROJECT_VERSION = 2  # 1: one flat settings dict with the app's own names (still opened)
SCREENSHOT_GENES = 24  # genes the screenshot run describes: a few minutes with the embedded model
LABEL_COLUMNS = ("cell_type", "celltype", "cell_types", "CellType", "cell_ontology_class", "labels", "label")
# version 1 project files named a few model settings after the app's widgets
VERSION_1_NAMES = {"llm_batch": "parallel", "llm_server": "server_url", "llm_server_model": "server_model"}
RENAMED = {"baselines": "compare"}  # settings renamed since (any version)


class ProjectSettings:
    """The open project's settings: the data path, the analysis settings and the model settings, read and set
    as one set of attributes (each declared setting lives in its declared scope)."""

    def __init__(
        self,
        data_path: str | None = None,
        analysis: PipelineSettings | None = None,
        models: ModelSettings | None = None,
    ):
        object.__setattr__(self, "data_path", data_path)
        object.__setattr__(self, "analysis", analysis or PipelineSettings())
        object.__setattr__(self, "models", models or ModelSettings())

    def _holder(self, name: str):
        if name not in SETTINGS:
            raise AttributeError(f"no setting {name!r}")
        return self.analysis if SETTINGS[name].scope == ANALYSIS else self.models

    def __getattr__(self, name: str):
        return getattr(self._holder(name), name)

    def __setattr__(self, name: str, value) -> None:
        if name == "data_path":
            object.__setattr__(self, name, value)
        else:
            setattr(self._holder(name), name, value)

    def as_dict(self) -> dict:
        """The project file's settings section: every declared setting, under its scope."""
        analysis = {s.name: getattr(self.analysis, s.name) for s in SETTINGS.values() if s.scope == ANALYSIS}
        models = {s.name: getattr(self.models, s.name) for s in SETTINGS.values() if s.scope == MODELS}
        models["models_dir"] = str(models["models_dir"]) if models["models_dir"] is not None else None
        return {"data_path": self.data_path, ANALYSIS: analysis, MODELS: models}

    @classmethod
    def from_dict(cls, body: dict, version: int) -> tuple[ProjectSettings, list[str]]:
        """Settings from a project file (any version); returns them and the entries that were not used, each
        with why (a setting this version does not know, or a value it does not accept)."""
        if version == 1:
            flat = {VERSION_1_NAMES.get(k, k): v for k, v in body.items() if k != "data_path"}
            if flat.get("server_url") == "":
                flat["server_url"] = None
            sections = {ANALYSIS: {}, MODELS: {}}
            for name, value in flat.items():
                scope = SETTINGS[name].scope if name in SETTINGS else ANALYSIS
                sections[scope][name] = value
        else:
            sections = {ANALYSIS: body.get(ANALYSIS, {}), MODELS: body.get(MODELS, {})}
        values, skipped = {ANALYSIS: {}, MODELS: {}}, []
        for scope, entries in sections.items():
            for name, value in entries.items():
                name = RENAMED.get(name, name)
                setting = SETTINGS.get(name)
                if setting is None or setting.scope != scope:
                    skipped.append(f"{name} (not a setting of this version)")
                    continue
                try:
                    values[scope][name] = setting.check(value)
                except ValueError as exc:
                    skipped.append(f"{name} ({exc}; the default is used)")
        settings = cls(body.get("data_path"), PipelineSettings(**values[ANALYSIS]), ModelSettings(**values[MODELS]))
        return settings, skipped


@dataclass(frozen=True)
class OpenedData:
    """Data read for the project (:meth:`Project.read_data`), not yet the open data."""

    adata: object
    name: str  # shown in the window's title
    source: object  # the data path, a list of them for several samples, or the demo
    intake_lines: list = field(default_factory=list)  # what opening the data did, one line per sample
    cell_calls: dict = field(default_factory=dict)  # per sample whose cells were called: its CellCall
    settings: dict = field(default_factory=dict)  # settings the data sets (its layer, its cell-type column)
    warnings: list = field(default_factory=list)  # said before a run (a run that may not fit in memory)


@dataclass
class Project:
    settings: ProjectSettings = field(default_factory=ProjectSettings)
    path: Path | None = None  # where the project file lives, once saved
    adata: object = None
    data_name: str = ""
    described: object = None  # the last GeneDescriptions
    table: object = None  # GeneTable
    alignment: object = None
    coverage: dict = field(default_factory=dict)
    cluster_metrics: object = None  # DataFrame
    markers: object = None  # the Markers of the current clusters (core.tasks.markers)
    naming: object = None  # the current clusters' cell-type names with evidence (core.tasks.naming)
    naming_note: str = ""  # why the current clusters have no names, when they have none
    results: dict = field(default_factory=dict)  # per panel: what it last computed
    skipped_settings: list = field(default_factory=list)  # project-file entries not used on opening, and why
    intake_lines: list = field(default_factory=list)  # what opening the data did, one line per sample
    intake_warnings: list = field(default_factory=list)  # what to know before a run (it may not fit in memory)
    cell_calls: dict = field(default_factory=dict)  # per sample whose cells were called: its CellCall

    # ---- data ---------------------------------------------------------------------------------------------
    def open_data(self, source) -> None:
        """Load a data file, several (joined as samples), or the shipped demo, and forget results that belonged
        to the previous data (:meth:`read_data`, then :meth:`adopt`)."""
        self.adopt(self.read_data(source))

    def read_data(self, source, *, progress=None, cancel=None) -> OpenedData:
        """Read a data file, several (joined as samples), or the shipped demo, without changing the project: the
        app reads in a background job (a large file takes a while) and adopts what was read in the UI thread, so
        a cancelled or failed read leaves the open data as it was. Cell Ranger output opens as it comes (intake:
        repeated symbols, unfiltered matrices with their cells called, samples joined into ``obs['sample']``).
        ``progress(stage, done, total, message)`` hears of each sample read; ``cancel`` stops between samples."""
        if source == DEMO_SOURCE:
            from scelmo_desktop.core.workflows.data import DEMO_LABELS, DEMO_LAYER, load_demo

            changes = {"layer": DEMO_LAYER, "label_key": DEMO_LABELS}
            return OpenedData(load_demo(), "pbmc68k_reduced (shipped demo)", source, settings=changes)
        from scelmo_desktop.core.workflows.intake import open_data

        paths = [source] if isinstance(source, str | Path) else list(source)
        s = self.settings
        extra = {} if progress is None else {"progress": progress}
        intake = open_data(paths, genome=s.genome, cell_calling=s.cell_calling, umi_threshold=s.umi_threshold,
                           expected_cells=s.expected_cells, cancel=cancel, **extra)  # fmt: skip
        adata = intake.adata
        changes = {}
        if s.label_key not in adata.obs.columns:  # a usual cell-type column is picked for you
            changes["label_key"] = next((c for c in LABEL_COLUMNS if c in adata.obs.columns), None)
        return OpenedData(
            adata,
            ", ".join(Path(p).name for p in paths),
            [str(p) for p in paths] if len(paths) > 1 else str(paths[0]),
            intake_lines=[line for line in intake.summary_lines() if line not in intake.warnings],
            cell_calls=intake.calls,
            settings=changes,
            warnings=list(intake.warnings),
        )

    def adopt(self, opened: OpenedData) -> None:
        """Make ``opened`` (:meth:`read_data`) the open data; results of the previous data are forgotten."""
        for name, value in opened.settings.items():
            setattr(self.settings, name, value)
        self.adata, self.data_name, self.settings.data_path = opened.adata, opened.name, opened.source
        self.intake_lines, self.cell_calls = list(opened.intake_lines), dict(opened.cell_calls)
        self.intake_warnings = list(opened.warnings)
        self.forget_results()

    def holds_saved_results(self) -> bool:
        """Whether the open data is a result file with a saved marker test (``scelmo run``'s, or one the app
        exported), which :meth:`show_saved_results` can show without a new run."""
        from scelmo_desktop.core.workflows.markers import holds_saved_markers

        return self.adata is not None and holds_saved_markers(self.adata)

    def show_saved_results(self, found) -> None:
        """A result file's markers and cell-type names as saved, hand edits included
        (:func:`~scelmo_desktop.core.workflows.markers.saved_markers_and_names`' ``found``), so the Markers panel
        shows them; a saved test that no longer fits the file's groups is said, not shown."""
        from scelmo_desktop.core.workflows.markers import NO_SAVED_TEST

        if found.markers is None:
            if found.notes["markers"] != NO_SAVED_TEST:
                self.intake_lines.append(f"markers not shown: {found.notes['markers']}")
            return
        self.markers, self.naming, self.naming_note = found.markers, found.naming, found.notes.get("naming", "")
        named = f" and {len(found.naming.groups)} cell-type names" if found.naming is not None else ""
        self.intake_lines.append(f"markers of obs['{found.markers.groupby}']{named} read back from the file")

    def forget_results(self) -> None:
        """Results of earlier cells: gone when the data opened or its cells change (QC applied)."""
        self.described = self.table = self.alignment = self.cluster_metrics = self.markers = self.naming = None
        self.coverage, self.results = {}, {}

    def replace_cells(self, adata) -> None:
        """The same data with fewer cells (quality control applied): later results must be computed again."""
        self.adata = adata
        self.forget_results()

    def summary(self) -> dict:
        a = self.adata
        if a is None:
            return {}
        return {
            "cells": a.n_obs,
            "genes": a.n_vars,
            "obs columns": list(map(str, a.obs.columns)),
            "layers": ["X"] + (["raw"] if a.raw is not None else []) + list(a.layers.keys()),
            "embeddings (obsm)": list(a.obsm.keys()),
        }

    def expression(self):
        from scelmo_desktop.core.workflows.data import select_expression

        self.require_data()
        return select_expression(self.adata, self.settings.layer, input_kind=self.settings.input_kind)

    def require_data(self) -> None:
        if self.adata is None:
            raise ScelmoError("Open a data file first (Data panel, or File ▸ Open demo data).")

    @property
    def models(self) -> ModelSettings:
        return self.settings.models

    def model_choice(self) -> ModelSettings:
        """The model settings, as the shared session layer takes them (a copy: a running job keeps its own)."""
        return self.settings.models.replace()

    def pipeline_settings(self, resolved_mode: str) -> PipelineSettings:
        """The analysis settings with the description mode resolved for the chosen model."""
        return self.settings.analysis.replace(mode=resolved_mode)

    # ---- persistence --------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        from scelmo_desktop.core.workflows.environment import write_text_atomic

        path = Path(path)
        if not path.name.endswith(PROJECT_SUFFIX):
            path = path.with_name(path.name + PROJECT_SUFFIX)
        body = {
            "format": "scelmo-desktop project",
            "version": PROJECT_VERSION,
            "settings": self.settings.as_dict(),
            "results": {k: v for k, v in self.results.items() if _json_safe(v)},
        }
        write_text_atomic(path, json.dumps(body, indent=2))
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | Path) -> Project:
        path = Path(path)
        try:
            body = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ScelmoError(f"{path} is not a readable scELMo project file: {exc}") from exc
        if body.get("format") != "scelmo-desktop project":
            raise ScelmoError(f"{path} is not a scELMo Desktop project (no 'format' marker).")
        version = body.get("version", 1)
        if not isinstance(version, int) or version > PROJECT_VERSION:
            raise ScelmoError(
                f"{path} was saved by a newer scELMo Desktop (project version {version}); update the app to open it."
            )
        settings, skipped = ProjectSettings.from_dict(body.get("settings", {}), version)
        project = cls(settings=settings, path=path, skipped_settings=skipped)
        if settings.data_path:
            paths = settings.data_path if isinstance(settings.data_path, list) else [settings.data_path]
            missing = [p for p in paths if p != DEMO_SOURCE and not Path(p).exists()]
            if missing:
                raise ScelmoError(
                    f"The project's data file {missing[0]} is missing; move it back or "
                    "open the data again and save the project."
                )
            label = settings.label_key
            project.open_data(settings.data_path)
            settings.label_key = label if label in project.adata.obs.columns else settings.label_key
        project.results = body.get("results", {})
        return project


def _json_safe(value) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False
