"""CLI plumbing kept out of ``cli.py``: opening models and the store, tqdm progress, printing tables."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import pandas as pd

from scelmo_desktop.backends.llm import GenerationParams
from scelmo_desktop.core.paths import default_store_path
from scelmo_desktop.core.pipeline import LLMSource, PipelineSettings
from scelmo_desktop.core.store import Store


class TqdmProgress:
    """``progress(stage, done, total, message)`` drawn as one tqdm bar per stage, on stderr."""

    def __init__(self):
        self._stage = None
        self._bar = None

    def __call__(self, stage: str, done: int, total: int, message: str = "") -> None:
        from tqdm import tqdm

        if stage != self._stage:
            self.close()
            self._stage = stage
            self._bar = tqdm(total=total, desc=stage, unit="step", leave=True, dynamic_ncols=True)
        self._bar.total = total
        self._bar.n = done
        if message:
            self._bar.set_postfix_str(message[:30], refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


@dataclass
class Session:
    store: Store
    llm: LLMSource
    embedder: object | None
    progress: TqdmProgress = field(default_factory=TqdmProgress)
    mode: str = "llm"  # the resolved description mode

    def settings(self, args) -> PipelineSettings:
        return PipelineSettings(
            label_key=getattr(args, "label_key", None), layer=args.layer, max_genes=args.max_genes,
            input_kind=args.input_kind, llm_genes=args.llm_genes, llm_minutes=args.llm_minutes,
            conditioning=args.conditioning,
            symbol_column=args.symbol_column, seed=args.seed, resolution=getattr(args, "resolution", None),
            baselines=not getattr(args, "no_baselines", False),
            params=GenerationParams(max_tokens=args.max_tokens, seed=args.seed),
            mode=self.mode, on_flag=args.on_flag, knowledge_files=[str(p) for p in args.knowledge],
        )


def resolve_mode(requested: str, llm_info) -> str:
    """``auto``: the model's measured best mode, else ``grounded`` with the knowledge extra, else ``llm``.
    A fact-based mode without the knowledge extra falls back to ``llm`` (fact sheets would be empty)."""
    from scelmo_desktop.core.knowledge.genes import catalog_available

    if requested != "auto":
        return requested
    knowledge = catalog_available()
    mode = (llm_info.default_mode if llm_info else None) or ("grounded" if knowledge else "llm")
    return mode if knowledge or mode == "llm" else "llm"


@contextlib.contextmanager
def open_session(args, *, need_embedder: bool):
    """Resolve the models (the LLM is loaded lazily, only if a description is missing) and open the store."""
    from scelmo_desktop.backends import registry

    mode = getattr(args, "mode", "llm")
    if getattr(args, "llm_server", None) and mode != "facts":
        llm, lazy = _server_llm(args)
        mode = resolve_mode(mode, None)
    else:
        llm, lazy, mode = _gguf_llm(args, mode)
    embedder = None
    if need_embedder:
        embedder = registry.open_embedder(registry.find_model("sentence-transformers", args.embedder, args.models_dir),
                                          device=args.device)
    store = Store(args.store or default_store_path())
    session = Session(store=store, llm=llm, embedder=embedder, mode=mode)
    try:
        yield session
    finally:
        session.progress.close()
        store.close()
        lazy.close()


def _gguf_llm(args, mode: str):
    from scelmo_desktop.backends import registry
    from scelmo_desktop.backends.llm import DEFAULT_LLM_BATCH

    if mode == "facts":  # no LLM is used: do not even resolve one
        llm_info = registry.ModelInfo(name="none (facts mode)", kind="gguf", path="", size_bytes=0, sha256="")
    else:
        llm_info = registry.find_model("gguf", args.llm, args.models_dir)
        mode = resolve_mode(mode, llm_info)
    parallel = args.llm_parallel or DEFAULT_LLM_BATCH
    lazy = registry.LazyLLM(llm_info, chat_format=args.chat_format, n_threads=args.threads,
                            n_gpu_layers=args.gpu_layers, parallel=parallel)
    llm = LLMSource(name=llm_info.name, sha256=llm_info.sha256, factory=lazy,
                    info={"path": llm_info.path, "chat_format": args.chat_format or llm_info.chat_format or "from GGUF",
                          "n_gpu_layers": args.gpu_layers, "parallel": parallel})
    return llm, lazy, mode


def _server_llm(args):
    from scelmo_desktop.backends.llm import DEFAULT_SERVER_PARALLEL

    return server_llm_source(args.llm_server, args.llm_server_model or args.llm or "default",
                             parallel=args.llm_parallel or DEFAULT_SERVER_PARALLEL, timeout=args.llm_timeout,
                             retries=args.llm_retries, allow_remote=args.allow_remote)


def server_llm_source(url: str, model: str, *, parallel: int, timeout: float = 120.0, retries: int = 3,
                      allow_remote: bool = False):
    """An OpenAI-compatible server as the pipeline's LLM (CLI and app); the address is checked now, before any
    data is read, and the server is contacted only when a description is missing."""
    from scelmo_desktop.backends import registry
    from scelmo_desktop.backends.openai_server import OpenAIServerBackend, check_address, server_identity

    check_address(url, allow_remote=allow_remote)
    lazy = registry.LazyLLM(None, opener=lambda: OpenAIServerBackend(
        url, model, parallel=parallel, timeout=timeout, retries=retries, allow_remote=allow_remote))
    llm = LLMSource(name=model, sha256=server_identity(url, model), factory=lazy,
                    info={"backend": "openai-server", "server_url": url, "parallel": parallel})
    return llm, lazy


def print_llm_calls(result) -> None:
    mode = getattr(result, "mode", "llm")
    print(f"LLM calls: {result.n_llm_calls} (cached: {result.n_cached})  description mode: {mode}")


def print_metrics(metrics: pd.DataFrame) -> None:
    columns = [c for c in ("method", "nmi", "ari", "asw_label", "resolution", "n_clusters") if c in metrics.columns]
    print(metrics[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def print_flag_counts(result) -> None:
    if result.mode == "facts":
        print("quality flags: none checked (facts mode writes no LLM text)")
        return
    counts = result.flag_counts()
    detail = ", ".join(f"{flag}: {n}" for flag, n in sorted(counts.items()) if flag != "any") or "none"
    print(f"quality flags: {counts.get('any', 0)} of {len(result.flags)} descriptions flagged ({detail})"
          + (f"; {len(result.fell_back)} replaced by their fact sheet" if result.fell_back else ""))


def write_description_report(path, result, cell_types=None) -> None:
    """One row per entity: name, kind, mode, the text used, what the LLM wrote, and its quality flags."""
    from scelmo_desktop.core.atomic import write_text_atomic

    rows = [{"name": gene, "kind": "gene", "mode": result.mode, "text": text,
             "llm_text": result.generated.get(gene, ""), "flags": ";".join(result.flags.get(gene, [])),
             "edited": gene in result.edited}
            for gene, text in result.texts.items()]
    if cell_types is not None:
        rows += [{"name": label, "kind": "cell_type", "mode": result.mode, "text": text,
                  "llm_text": cell_types.texts[label] if result.mode != "facts" else "", "flags": ""}
                 for label, text in cell_types.texts.items()]
    write_text_atomic(path, pd.DataFrame(rows).to_csv(index=False))


def check_model(model) -> str:
    """Try to load a model; returns 'yes' or the one-line reason it does not load."""
    from scelmo_desktop.backends import registry
    from scelmo_desktop.core.errors import ScelmoError

    try:
        backend = registry.open_llm(model) if model.kind == "gguf" else registry.open_embedder(model)
    except ScelmoError as exc:
        return f"no ({exc})"
    if hasattr(backend, "close"):
        backend.close()
    return "yes"


def audit_models(args) -> list[dict]:
    """The models a command used (name and sha256), for the audit trail; hashes come from the hash cache."""
    from scelmo_desktop.backends import registry
    from scelmo_desktop.core.errors import ScelmoError

    used = []
    wanted = []
    if getattr(args, "llm_server", None) and getattr(args, "mode", None) != "facts":
        from scelmo_desktop.backends.openai_server import server_identity

        model = args.llm_server_model or args.llm or "default"
        used.append({"kind": "openai-server", "name": model, "url": args.llm_server,
                     "sha256": server_identity(args.llm_server, model)})
    elif hasattr(args, "llm") and getattr(args, "mode", None) != "facts":
        wanted.append(("gguf", args.llm))
    if hasattr(args, "embedder"):
        wanted.append(("sentence-transformers", args.embedder))
    for kind, name in wanted:
        try:
            info = registry.find_model(kind, name, getattr(args, "models_dir", None))
        except ScelmoError:
            continue
        used.append({"kind": kind, "name": info.name, "sha256": info.sha256, "path": info.path})
    return used


def print_run_summary(record: dict) -> None:
    """What a run found and did: the input kind, the gene set, how its texts were made, coverage."""
    if "input" in record:
        inp = record["input"]
        print(f"input: {'declared' if inp['declared'] else 'detected'} {inp['kind']} ({inp['evidence']}); "
              f"{inp['preparation']}")
    print(f"LLM calls: {record['llm_calls']} (cached: {record['llm_cached']})  "
          f"description mode: {record['description_mode']}")
    if record.get("species_note", "none") != "none":
        print(f"note: {record['species_note']}")
    texts = record.get("descriptions") or {}
    if texts.get("genes"):
        print(f"descriptions: {texts['llm']} by the LLM, {texts['fact_sheets']} fact sheets"
              + (" (the LLM time budget ended generation)" if texts.get("time_budget_reached") else ""))
    coverage = record["coverage"]
    gene_set = coverage.get("gene_set")
    if gene_set:
        print(f"gene set: the {gene_set['size']} most variable of {coverage['n_genes']} genes, "
              f"{gene_set['with_vector']} with a vector ({100 * gene_set['fraction_expression']:.1f}% of expression); cell vectors: "
              f"{record.get('conditioning', 'paper')}")
    else:
        print(f"coverage: {coverage['n_matched']} of {coverage['n_genes']} genes have an embedding "
              f"({100 * coverage.get('fraction_expression_covered', 0):.1f}% of expression)")
