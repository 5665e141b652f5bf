"""The app's model, kept free of Qt (napari's split of model and view): what data is open, the settings, the
models in use, and the results so far. A project saves to and reopens from one JSON file.

Results are not pickled into the project: the data path and settings are enough to recompute them, every
description and embedding is in the store, so reopening a project and pressing Run is cheap.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.data.demo import DEMO_SOURCE
from scelmo_desktop.core.protocols import DEFAULT_LLM_BATCH
from scelmo_desktop.core.settings import DEFAULT_CONDITIONING, DEFAULT_GENES, DEFAULT_LLM_GENES

PROJECT_SUFFIX = ".scelmo.json"
SCREENSHOT_GENES = 24  # genes the screenshot run describes: a few minutes with the embedded model
LABEL_COLUMNS = ("cell_type", "celltype", "cell_types", "CellType", "cell_ontology_class", "labels", "label")


@dataclass
class ProjectSettings:
    data_path: str | None = None  # a file path, or DEMO_SOURCE
    layer: str = "auto"
    label_key: str | None = None
    mode: str = "auto"  # description mode: auto | llm | grounded | facts
    input_kind: str = "auto"  # auto | counts | normalized | log (core.data.input_kind)
    max_genes: int = DEFAULT_GENES  # the gene set: most variable genes first
    llm_genes: int = DEFAULT_LLM_GENES  # LLM budget within the gene set; the rest get fact sheets
    conditioning: str = DEFAULT_CONDITIONING
    on_flag: str = "keep"  # a flagged description: keep it, regenerate, or use its fact sheet
    knowledge_files: list[str] = field(default_factory=list)  # the user's own gene texts for fact sheets
    llm: str | None = None  # model name or path; None: the embedded default
    embedder: str | None = None
    threads: int | None = None
    gpu_layers: int = 0
    llm_batch: int = DEFAULT_LLM_BATCH  # genes decoded together by llama.cpp, or concurrent server requests
    llm_server: str = ""  # an OpenAI-compatible server URL on the site's network; empty: the local GGUF
    llm_server_model: str = "default"
    device: str = "auto"
    seed: int = 0
    n_neighbors: int = 15
    resolution: float | None = None


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
    results: dict = field(default_factory=dict)  # per panel: what it last computed

    # ---- data ---------------------------------------------------------------------------------------------
    def open_data(self, source: str) -> None:
        """Load a data file (or the shipped demo) and forget results that belonged to the previous data."""
        if source == DEMO_SOURCE:
            from scelmo_desktop.core.data.demo import DEMO_LABELS, DEMO_LAYER, load_demo

            adata = load_demo()
            self.settings.layer, self.settings.label_key = DEMO_LAYER, DEMO_LABELS
            name = "pbmc68k_reduced (shipped demo)"
        else:
            from scelmo_desktop.core.data.io import read_data

            adata = read_data(source)
            name = Path(source).name
            if self.settings.label_key not in adata.obs.columns:  # a usual cell-type column is picked for you
                self.settings.label_key = next((c for c in LABEL_COLUMNS if c in adata.obs.columns), None)
        self.adata, self.data_name, self.settings.data_path = adata, name, source
        self.described = self.table = self.alignment = self.cluster_metrics = None
        self.coverage, self.results = {}, {}

    def summary(self) -> dict:
        a = self.adata
        if a is None:
            return {}
        return {"cells": a.n_obs, "genes": a.n_vars, "obs columns": list(map(str, a.obs.columns)),
                "layers": ["X"] + (["raw"] if a.raw is not None else []) + list(a.layers.keys()),
                "embeddings (obsm)": list(a.obsm.keys())}

    def expression(self):
        from scelmo_desktop.core.data.io import select_expression

        self.require_data()
        return select_expression(self.adata, self.settings.layer, input_kind=self.settings.input_kind)

    def require_data(self) -> None:
        if self.adata is None:
            raise ScelmoError("Open a data file first (Data panel, or File ▸ Open demo data).")

    def model_choice(self):
        """The models panel's choices, as the shared session layer takes them."""
        from scelmo_desktop.app.session import ModelChoice

        s = self.settings
        return ModelChoice(mode=s.mode, llm=s.llm, embedder=s.embedder, threads=s.threads, gpu_layers=s.gpu_layers,
                           parallel=s.llm_batch, server_url=s.llm_server or None,
                           server_model=s.llm_server_model, device=s.device)

    def pipeline_settings(self, resolved_mode: str):
        from scelmo_desktop.core.protocols import GenerationParams
        from scelmo_desktop.core.settings import PipelineSettings

        s = self.settings
        return PipelineSettings(label_key=s.label_key, layer=s.layer, input_kind=s.input_kind, max_genes=s.max_genes,
                                llm_genes=s.llm_genes, conditioning=s.conditioning, seed=s.seed,
                                n_neighbors=s.n_neighbors, resolution=s.resolution, mode=resolved_mode,
                                on_flag=s.on_flag, knowledge_files=list(s.knowledge_files),
                                params=GenerationParams(seed=s.seed))

    # ---- persistence --------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        from scelmo_desktop.core._infra.atomic import write_text_atomic

        path = Path(path)
        if not path.name.endswith(PROJECT_SUFFIX):
            path = path.with_name(path.name + PROJECT_SUFFIX)
        body = {"format": "scelmo-desktop project", "version": 1, "settings": asdict(self.settings),
                "results": {k: v for k, v in self.results.items() if _json_safe(v)}}
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
        known = ProjectSettings.__dataclass_fields__
        settings = ProjectSettings(**{k: v for k, v in body.get("settings", {}).items() if k in known})
        project = cls(settings=settings, path=path)
        if settings.data_path:
            if settings.data_path != DEMO_SOURCE and not Path(settings.data_path).exists():
                raise ScelmoError(f"The project's data file {settings.data_path} is missing; move it back or "
                                  "open the data again and save the project.")
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
