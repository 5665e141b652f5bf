"""Every setting a user can change, declared once: name, type, default, allowed values, help and the tasks that
use it (napari declares its preferences the same way, as fields its dialog is built from).

The doors are built from :data:`SETTINGS`: the CLI's flags and help (``cli.parser``), the app's widgets with
their defaults, ranges and tooltips (``gui.settings_form``), ``scelmo.tl``'s keyword defaults (its signatures),
the project file's schema (``gui.project``) and the provenance record (:meth:`SettingValues.as_dict`). Adding a
setting is one :func:`_declare` line here plus the code that uses it.

Values travel in two objects: :class:`PipelineSettings` (what the analysis does) and :class:`ModelSettings`
(which models do it). Task *inputs* (the data file, the obs columns naming batches or conditions, output
folders) are arguments of each task, not settings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

ANALYSIS, MODELS = "analysis", "models"  # the two value objects a setting lives in

# which tasks read a data matrix (and so take the input, gene-set and description settings)
DATA_TASKS = ("describe", "embed", "run", "demo", "annotate", "integrate", "treatment", "perturb")
MODEL_TASKS = (*DATA_TASKS, "simulate-perturbseq")  # which tasks open models
CLUSTER_TASKS = ("run", "demo", "cluster")
INTAKE_TASKS = ("run", "qc")  # the tasks that open Cell Ranger output and several samples
# the parallel setting's "auto": sequences decoded together in process (benchmarks/bench_llm_batch.py: the
# curve's knee), and concurrent requests to a server
DEFAULT_LLM_BATCH, DEFAULT_SERVER_PARALLEL = 8, 4


@dataclass(frozen=True)
class Setting:
    """One setting's declaration."""

    name: str  # the Python name: the attribute, the keyword argument, the project file's key
    default: Any
    help: str  # one sentence for a tooltip, a flag's help and a docstring
    type: type = str  # int, float, str, bool or list (a repeatable value)
    scope: str = ANALYSIS  # ANALYSIS (PipelineSettings) or MODELS (ModelSettings)
    tasks: tuple[str, ...] = ()  # the tasks that take it; "global": every command
    label: str = ""  # the app's label; default: the name in words
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    none_word: str | None = None  # what None is called where the setting is typed ('all', 'auto', 'sweep')
    flag: str | None = None  # the CLI flag; default: --name-with-dashes
    task_flags: dict = field(default_factory=dict)  # a task whose flag differs (annotate's --description-mode)
    task_defaults: dict = field(default_factory=dict)  # a task whose default differs (the demo's LLM budget)
    gui: bool = True  # shown in the app's settings forms
    typical: Any = None  # the number an editor offers when the none_word box is unticked (else the minimum)

    @property
    def optional(self) -> bool:
        return self.default is None or self.none_word is not None

    def flag_for(self, task: str | None = None) -> str:
        return self.task_flags.get(task) or self.flag or "--" + self.name.replace("_", "-")

    def default_for(self, task: str | None = None):
        return self.task_defaults.get(task, self.default)

    def words(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    def check(self, value):
        """``value`` converted to this setting's type, or a ``ValueError`` saying what is allowed."""
        if value is None:
            if self.optional:
                return None
            raise ValueError(f"the {self.name} setting needs a value ({self.allowed()})")
        if self.type is list:
            return [str(v) for v in value]
        if self.type is bool:
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if isinstance(value, str) and self.none_word and value.strip().lower() == self.none_word:
            return None
        try:
            converted = self.type(value)
        except (TypeError, ValueError):
            raise ValueError(f"the {self.name} setting takes {self.allowed()} (got {value!r})") from None
        if self.type is int and isinstance(value, float) and value != converted:
            raise ValueError(f"the {self.name} setting takes {self.allowed()} (got {value!r})")
        if self.choices is not None and converted not in self.choices:
            raise ValueError(f"the {self.name} setting takes {self.allowed()} (got {value!r})")
        if (self.minimum is not None and converted < self.minimum) or (
            self.maximum is not None and converted > self.maximum
        ):
            raise ValueError(f"the {self.name} setting takes {self.allowed()} (got {value!r})")
        return converted

    def allowed(self) -> str:
        if self.choices is not None:
            text = "one of " + ", ".join(map(str, self.choices))
        else:
            kind = {int: "a whole number", float: "a number", bool: "yes or no", list: "a list"}.get(self.type, "text")
            bounds = [
                f"at least {self.minimum:g}" if self.minimum is not None else "",
                f"at most {self.maximum:g}" if self.maximum is not None else "",
            ]
            text = " ".join([kind, " and ".join(b for b in bounds if b)]).strip()
        return text + (f", or '{self.none_word}'" if self.none_word else "")


SETTINGS: dict[str, Setting] = {}


def _declare(name: str, default, help: str, **details) -> None:  # noqa: A002 - the declaration's own word
    SETTINGS[name] = Setting(name, default, help, **details)


def declared(*, scope: str | None = None, task: str | None = None) -> list[Setting]:
    """The declarations, in declaration order: those of ``scope`` and/or those ``task`` takes."""
    return [
        s
        for s in SETTINGS.values()
        if (scope is None or s.scope == scope) and (task is None or task in s.tasks or "global" in s.tasks)
    ]


def default(name: str, task: str | None = None):
    """A setting's default (for ``task`` when it has its own): the one place other modules take it from."""
    return SETTINGS[name].default_for(task)


# ---- analysis: input ------------------------------------------------------------------------------------------
_declare(
    "layer",
    "auto",
    "the matrix the embedding is built on: X, raw or a layer name; auto: raw when present, "
    "else X, else a counts layer when X is scaled",
    tasks=(*DATA_TASKS, "markers"),
    label="Matrix for the embedding",
)
_declare(
    "input_kind",
    "auto",
    "what the matrix holds: counts and normalized (TPM/CPM) are normalised and log1p-"
    "transformed, log is used as it is; auto: detected and reported",
    choices=("auto", "counts", "normalized", "log"),
    tasks=(*DATA_TASKS, "markers"),
    label="Values are",
)
_declare(
    "symbol_column",
    None,
    "the var column holding gene symbols (found by itself for Ensembl-indexed data)",
    tasks=DATA_TASKS,
    gui=False,
)
_declare(
    "label_key",
    None,
    "the obs column with cell-type labels: clustering metrics, or annotate's reference labels",
    tasks=("run", "cluster", "annotate"),
    label="Cell-type label column",
    gui=False,
)
# ---- analysis: intake (Cell Ranger output, several samples) ----------------------------------------------------
_declare(
    "genome",
    None,
    "with several genomes in one Cell Ranger file (a barnyard run), the one to analyse",
    tasks=INTAKE_TASKS,
    gui=False,
)
_declare(
    "cell_calling",
    "auto",
    "call cells from the barcode ranks: auto: in Cell Ranger output that looks unfiltered (raw_feature_bc_matrix); "
    "on: in every sample; off: keep every barcode",
    choices=("auto", "on", "off"),
    tasks=INTAKE_TASKS,
    label="Cell calling",
)
_declare(
    "umi_threshold",
    None,
    "cell calling: keep barcodes with at least this many UMIs instead of the called threshold",
    type=int,
    minimum=1,
    none_word="auto",
    tasks=INTAKE_TASKS,
    label="Cell-calling UMI threshold",
)
_declare(
    "expected_cells",
    None,
    "cell calling: about how many cells were loaded (the rule's N); auto: estimated from the barcode ranks",
    type=int,
    minimum=1,
    none_word="auto",
    tasks=INTAKE_TASKS,
    label="Expected cells",
)
# ---- analysis: gene set and descriptions ----------------------------------------------------------------------
_declare(
    "max_genes",
    2000,
    "the gene set the embedding is built on: the N most variable genes, or all",
    type=int,
    minimum=1,
    none_word="all",
    tasks=DATA_TASKS,
    label="Most variable genes",
)
_declare(
    "llm_genes",
    64,
    "LLM budget: how many of the gene set (most variable first) the LLM describes; every "
    "other gene gets its fact sheet; 0: none",
    type=int,
    minimum=0,
    none_word="all",
    tasks=DATA_TASKS,
    task_defaults={"demo": 96},
    label="Genes the LLM describes",
)
_declare(
    "llm_minutes",
    None,
    "LLM budget in time: stop describing after this many minutes (finished answers are kept; the rest get fact sheets)",
    type=float,
    minimum=0.01,
    tasks=DATA_TASKS,
    label="LLM minutes",
)
_declare(
    "on_flag",
    "keep",
    "a description with quality flags: keep it, regenerate it, or embed its fact sheet",
    choices=("keep", "regenerate", "facts"),
    tasks=DATA_TASKS,
    label="Flagged descriptions",
)
_declare(
    "knowledge_files",
    [],
    "your own gene texts for fact sheets: NCBI gene_info, GenePT JSON, UniProt TSV or symbol,text CSV/TSV",
    type=list,
    flag="--knowledge",
    tasks=DATA_TASKS,
    gui=False,
)
_declare(
    "max_tokens",
    160,
    "the most tokens an LLM description may take",
    type=int,
    minimum=8,
    maximum=4096,
    tasks=DATA_TASKS,
    label="Tokens per description",
)
# ---- analysis: cell vectors and clustering --------------------------------------------------------------------
_declare(
    "conditioning",
    "smoothed",
    "cell vectors: smoothed (scaled genes, each mixed with the genes its description resembles, less so above "
    "3,000 cells, 50 principal components), standard (gene-set sum with the whitened table, 50 principal components; often better on small, "
    "low-depth files whose types differ by a few genes, such as T-cell subsets, but one strong shared programme "
    "such as an interferon response can decide its distances) or paper (the original code's wa)",
    choices=("smoothed", "standard", "paper"),
    tasks=DATA_TASKS,
)
_declare(
    "seed",
    0,
    "the seed of decoding, clustering, baselines and training",
    type=int,
    minimum=0,
    tasks=(*DATA_TASKS, "cluster", "finetune"),
)
_declare(
    "n_neighbors",
    15,
    "neighbours in the kNN graph that Leiden and UMAP use",
    type=int,
    minimum=2,
    maximum=200,
    tasks=CLUSTER_TASKS,
    label="Neighbours (kNN graph)",
)
_declare(
    "resolution",
    None,
    "a fixed Leiden resolution; sweep: 0.2–2.0 chosen by NMI when labels exist, else 1.0",
    type=float,
    minimum=0.01,
    maximum=10.0,
    none_word="sweep",
    typical=1.0,
    tasks=CLUSTER_TASKS,
    label="Leiden resolution",
)
_declare(
    "integrate_samples",
    True,
    "integrate several samples (obs['sample']) with no labels: each gene scaled within its sample (matched on the "
    "clusters the samples share), then Harmony on the scELMo space; clusters, UMAP, markers and names are computed "
    "on the integrated space",
    type=bool,
    tasks=("run",),
    label="Integrate the samples",
)
_declare(
    "split_mixed",
    True,
    "sub-cluster each cluster whose cells split into two lineages (flagged 'may mix' by the naming) at the coarsest "
    "Leiden resolution that splits it, and name the new clusters",
    type=bool,
    tasks=("run",),
    label="Split clusters that mix two lineages",
)
_declare(
    "compare",
    False,
    "also cluster and score the paper's wa/aa cell vectors, the scanpy route (PCA) and a random gene table: "
    "what a benchmark needs, slower than a plain run",
    type=bool,
    tasks=("run", "demo"),
    label="Compare with baselines",
)
_declare(
    "markers",
    "wilcoxon",
    "marker genes of each cluster against the rest with scanpy's rank_genes_groups (wilcoxon or t-test), "
    "filtered as filter_rank_genes_groups does; off: none",
    choices=("wilcoxon", "t-test", "off"),
    tasks=("run", "demo", "markers"),
    label="Marker genes",
)
_declare(
    "naming",
    "knowledge",
    "name each cluster with a Cell Ontology type from its marker genes and the curated marker knowledge (no "
    "reference, no candidate list), with the evidence for and against; off: leave clusters unnamed",
    choices=("knowledge", "off"),
    tasks=("run", "demo", "markers"),
    label="Name cell types",
)
_declare(
    "naming_llm",
    "off",
    "a local LLM (your own instruct GGUF) explains each cluster's name from its evidence; choose: it may also "
    "take a runner-up the evidence ranked (never a label of its own; an answer that fails the checks is not "
    "taken). The embedded 270M model runs but is too weak: its answers are flagged",
    choices=("off", "explain", "choose"),
    tasks=("run", "annotate"),
    label="LLM explanations of names",
)
_declare(
    "tissue",
    None,
    "a tissue hint for naming: blood keeps the hematopoietic types; any: every type the knowledge covers",
    choices=("blood",),
    none_word="any",
    tasks=("run", "demo", "markers", "annotate"),
    label="Tissue hint",
)
# ---- analysis: out of memory ----------------------------------------------------------------------------------
_declare("dask_workers", 1, "workers of the local Dask cluster", type=int, minimum=1, tasks=("embed",), gui=False)
_declare(
    "chunk_cells",
    20_000,
    "cells per Dask block; memory per worker grows with it",
    type=int,
    minimum=1,
    tasks=("embed",),
    gui=False,
)
# ---- analysis: annotation -------------------------------------------------------------------------------------
_declare(
    "method",
    "knn",
    "knn: 10-NN vote on a labelled reference; text: cell-type knowledge and descriptions, no "
    "reference needed; adaptor: fine-tuned on the reference; markers: name each group of --groupby from its "
    "marker genes, no reference and no candidates",
    choices=("knn", "text", "adaptor", "markers"),
    flag="--mode",
    tasks=("annotate",),
    label="Annotation method",
)
_declare(
    "k",
    10,
    "neighbours in the kNN vote",
    type=int,
    minimum=1,
    maximum=200,
    tasks=("annotate",),
    label="Neighbours in the vote",
)
_declare(
    "threshold",
    0.0,
    "below this confidence a cell is 'Unknown'",
    type=float,
    minimum=0.0,
    maximum=1.0,
    tasks=("annotate",),
    label="Confidence threshold",
)
_declare(
    "text_scoring",
    "auto",
    "text mode: knowledge scores the curated markers of each type's Cell Ontology term; "
    "markers the genes closest to each type's description; centroid the cosine of cell and description "
    "vectors; auto: knowledge when the knowledge extra is installed, else markers",
    choices=("auto", "knowledge", "markers", "centroid"),
    tasks=("annotate",),
    label="Text scoring",
)
_declare(
    "smoothing",
    "expression",
    "knowledge scoring: average each cell's marker scores over its neighbours in "
    "expression, in the cell embedding (embedding), or not at all",
    choices=("expression", "embedding", "none"),
    tasks=("annotate",),
)
_declare(
    "n_markers",
    None,
    "text mode: marker genes per type; auto: 25 for knowledge, 10 for text-space markers",
    type=int,
    minimum=1,
    none_word="auto",
    flag="--markers",
    tasks=("annotate",),
    label="Markers per type",
)
_declare(
    "preset",
    None,
    "text mode: the candidate cell types of a tissue, named by Cell Ontology id (blood/pbmc: "
    "monocytes, T, NK, B, plasma, dendritic cells, megakaryocytes)",
    choices=("blood", "pbmc"),
    tasks=("annotate",),
    label="Tissue preset",
)
# ---- analysis: the adaptor and the tasks built on it ----------------------------------------------------------
_declare(
    "epochs",
    30,
    "adaptor training: the most epochs (early stopping on validation kNN accuracy)",
    type=int,
    minimum=1,
    maximum=1000,
    tasks=("annotate", "integrate", "finetune"),
    label="Adaptor epochs",
)
_declare(
    "adversarial_weight",
    1.0,
    "integration: weight of the batch classifier behind gradient reversal",
    type=float,
    minimum=0.0,
    tasks=("integrate",),
    label="Batch-adversarial weight",
)
_declare(
    "treatment_epochs",
    40,
    "treatment: adaptor epochs on the condition labels (no early stopping, as the paper)",
    type=int,
    minimum=1,
    maximum=1000,
    flag="--epochs",
    tasks=("treatment",),
    label="Treatment epochs",
)
_declare(
    "repeats",
    3,
    "treatment: seeds, each with a new split and adaptor",
    type=int,
    minimum=1,
    maximum=50,
    tasks=("treatment",),
)
_declare(
    "scale",
    0.0,
    "treatment: multiply each candidate gene by this (0 = knock-out)",
    type=float,
    minimum=0.0,
    tasks=("treatment",),
    label="Gene scale (0 = knock-out)",
)
_declare(
    "n_candidates",
    20,
    "treatment: without a candidate list, the N genes most up in disease",
    type=int,
    minimum=1,
    tasks=("treatment",),
    label="Candidates",
)
_declare(
    "test_fraction",
    0.25,
    "perturbation: share of single-gene perturbations held out (with their combinations)",
    type=float,
    minimum=0.05,
    maximum=0.9,
    tasks=("perturb",),
    label="Held-out share",
)
# ---- analysis: quality control -------------------------------------------------------------------------------
_declare(
    "qc",
    "auto",
    "quality control before anything else: auto: scanpy's QC metrics, Scrublet doublets and suggested "
    "thresholds per sample, then the filter; off: every cell is kept as it is",
    choices=("auto", "off"),
    tasks=("run", "qc"),
    label="Quality control",
)
_declare(
    "qc_nmads",
    5.0,
    "suggested bounds on total counts and genes per cell: this many MADs around each sample's median "
    "(of the log values)",
    type=float,
    minimum=1.0,
    maximum=50.0,
    tasks=("run", "qc"),
    label="QC bounds (MADs)",
)
_declare(
    "max_pct_mt",
    None,
    "the highest percentage of mitochondrial counts a cell may have; auto: per sample, the median plus 3 MADs, "
    "never below 5",
    type=float,
    minimum=0.0,
    maximum=100.0,
    none_word="auto",
    tasks=("run", "qc"),
    label="Max % mitochondrial",
)
_declare(
    "min_genes",
    0,
    "the fewest genes a cell may have, on top of the suggested bound (0: the bound alone)",
    type=int,
    minimum=0,
    tasks=("run", "qc"),
    label="Min genes per cell",
)
_declare(
    "remove_doublets",
    True,
    "remove the cells Scrublet calls doublets (scored per sample)",
    type=bool,
    tasks=("run", "qc"),
    label="Remove doublets",
)
# ---- models ---------------------------------------------------------------------------------------------------
_declare(
    "mode",
    "auto",
    "description mode: llm (the paper's prompt), grounded (fact sheet in the prompt), facts "
    "(fact sheet only, no LLM); auto: the model's measured best mode, else grounded when the knowledge extra "
    "is installed, else llm",
    choices=("auto", "llm", "grounded", "facts"),
    scope=MODELS,
    tasks=MODEL_TASKS,
    task_flags={"annotate": "--description-mode"},
    task_defaults={"simulate-perturbseq": "facts"},
    label="Description mode",
)
_declare(
    "llm",
    None,
    "GGUF model name (see 'scelmo models') or path; default: the embedded model",
    scope=MODELS,
    tasks=MODEL_TASKS,
    label="LLM (descriptions)",
    gui=False,
)
_declare(
    "embedder",
    None,
    "sentence-transformers model name or folder; default: all-MiniLM-L6-v2",
    scope=MODELS,
    tasks=MODEL_TASKS,
    gui=False,
)
_declare(
    "models_dir",
    None,
    "the models folder (default: SCELMO_MODELS_DIR or ./models)",
    scope=MODELS,
    tasks=("global",),
    gui=False,
)
_declare(
    "chat_format",
    None,
    "override the chat template (e.g. gemma, chatml, llama-3)",
    scope=MODELS,
    tasks=MODEL_TASKS,
    gui=False,
)
_declare(
    "threads",
    None,
    "LLM threads; auto: physical cores, or SCELMO_THREADS",
    type=int,
    minimum=1,
    maximum=256,
    none_word="auto",
    scope=MODELS,
    tasks=MODEL_TASKS,
    label="LLM threads",
)
_declare(
    "gpu_layers",
    0,
    "layers of the LLM to offload to a GPU (-1: all)",
    type=int,
    minimum=-1,
    maximum=999,
    scope=MODELS,
    tasks=MODEL_TASKS,
    label="GPU layers (llama.cpp)",
)
_declare(
    "parallel",
    None,
    "answers produced together: sequences decoded in one llama.cpp batch, or concurrent "
    f"requests to the LLM server; auto: {DEFAULT_LLM_BATCH} in process, {DEFAULT_SERVER_PARALLEL} to a server",
    type=int,
    minimum=1,
    maximum=64,
    none_word="auto",
    flag="--llm-parallel",
    scope=MODELS,
    tasks=MODEL_TASKS,
    label="Genes per LLM batch",
)
_declare(
    "server_url",
    None,
    "an OpenAI-compatible server on your network instead of a GGUF, e.g. "
    "http://127.0.0.1:8080/v1 (loopback and private addresses only)",
    flag="--llm-server",
    scope=MODELS,
    tasks=MODEL_TASKS,
    label="LLM server (optional)",
    gui=False,
)
_declare(
    "server_model",
    None,
    "the model name to ask the server for (default: the LLM setting or 'default')",
    flag="--llm-server-model",
    scope=MODELS,
    tasks=MODEL_TASKS,
    label="Server model name",
    gui=False,
)
_declare(
    "timeout",
    120.0,
    "seconds per LLM server request",
    type=float,
    minimum=1.0,
    flag="--llm-timeout",
    scope=MODELS,
    tasks=MODEL_TASKS,
    label="Server timeout (s)",
)
_declare(
    "retries",
    3,
    "retries per LLM server request, with backoff",
    type=int,
    minimum=0,
    maximum=20,
    flag="--llm-retries",
    scope=MODELS,
    tasks=MODEL_TASKS,
    label="Server retries",
)
_declare(
    "allow_remote",
    False,
    "allow an LLM server or Dask scheduler at a public address (data would leave loopback/private networks)",
    type=bool,
    scope=MODELS,
    tasks=MODEL_TASKS,
    gui=False,
)
_declare(
    "device",
    "auto",
    "embedder and adaptor device",
    choices=("auto", "cpu", "cuda", "mps"),
    scope=MODELS,
    tasks=MODEL_TASKS,
    label="Torch device",
)


@dataclass(frozen=True)
class GenerationParams:
    """Decoding settings. Deterministic by default: greedy decoding (temperature 0) with a fixed seed; the token
    limit is the declared ``max_tokens`` setting."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 40
    repeat_penalty: float = 1.1
    seed: int = 0
    max_tokens: int = field(default_factory=lambda: default("max_tokens"))
    stop: tuple[str, ...] = field(default=("\n\n", "<end_of_turn>"))

    def as_dict(self) -> dict:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data


class SettingValues:
    """The values of one scope's settings; every declared setting is an attribute, typed and checked.

    Built from keyword arguments (missing ones take their declared default); ``replace`` returns a changed
    copy; ``as_dict`` is the provenance record and the project file's section."""

    scope = ANALYSIS
    derived: dict = {}  # attributes the door sets that are not user settings (the resolved description mode)

    def __init__(self, **values):
        known = {s.name: s for s in declared(scope=self.scope)}
        unknown = sorted(set(values) - set(known) - set(self.derived))
        if unknown:
            raise TypeError(f"{type(self).__name__} has no setting {', '.join(unknown)}")
        data = {}
        for name, setting in known.items():
            value = values.get(name, setting.default)
            data[name] = list(value) if isinstance(value, list | tuple) and setting.type is list else value
        for name, fallback in self.derived.items():
            data[name] = values.get(name, fallback)
        object.__setattr__(self, "_values", data)

    def __getattr__(self, name: str):
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no setting {name!r}") from None

    def __setattr__(self, name: str, value) -> None:
        if name not in self._values:
            raise AttributeError(f"{type(self).__name__} has no setting {name!r}")
        self._values[name] = value

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other._values == self._values

    def __repr__(self) -> str:
        changed = {k: v for k, v in self._values.items() if k not in SETTINGS or v != SETTINGS[k].default}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def replace(self, **changes) -> SettingValues:
        return type(self)(**{**self._values, **changes})

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, list) else v for k, v in self._values.items()}


class PipelineSettings(SettingValues):
    """What the analysis does: input, gene set, LLM budget, decoding, cell vectors, clustering, the tasks."""

    scope = ANALYSIS
    # mode: the description mode resolved for the chosen model (ModelSettings holds the requested one);
    # params: decoding parameters other than the declared ones, for tests and benchmarks that need them
    derived = {"mode": "llm", "params": None}

    @property
    def params(self) -> GenerationParams:
        """Decoding: greedy, with the declared token limit and seed (or the explicit ``params`` given)."""
        return self._values["params"] or GenerationParams(max_tokens=self.max_tokens, seed=self.seed)

    def as_dict(self) -> dict:
        data = super().as_dict()
        data["params"] = self.params.as_dict()
        return data


class ModelSettings(SettingValues):
    """Which models to use. ``None`` means the embedded default (or, for ``parallel``, the backend's default)."""

    scope = MODELS

    @property
    def uses_server(self) -> bool:
        return bool(self.server_url) and self.mode != "facts"


# the defaults other modules name, taken from the declarations
DEFAULT_GENES = default("max_genes")
DEFAULT_LLM_GENES = default("llm_genes")
DEFAULT_CONDITIONING = default("conditioning")
CONDITIONINGS = SETTINGS["conditioning"].choices
