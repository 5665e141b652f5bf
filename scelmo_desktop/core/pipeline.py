"""The zero-shot scELMo pipeline as composable steps: describe → gene table → cell embeddings → clustering.

The CLI subcommands and (later) the GUI call these same functions. Each step reports progress through
``progress(stage, done, total, message)`` and checks ``cancel`` between units of work.

AnnData keys written (scanpy habit: the docstring lists them):
``obsm['X_scelmo']`` (the embedding every task uses), ``obsm['X_scelmo_wa']``, ``obsm['X_scelmo_aa']`` (paper), ``varm['scelmo_gene_embedding']``, ``obs['scelmo_leiden']``,
``obsm['X_umap']``, ``obsm['X_scelmo_baseline_pca']``, ``obsm['X_scelmo_baseline_random']``,
``obsp``/``uns`` ``X_scelmo_neighbors`` (the graph on ``X_scelmo``), and ``uns['scelmo']`` (provenance).
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from scelmo_desktop.backends.embedder import Embedder
from scelmo_desktop.backends.llm import GenerationParams, LLMBackend
from scelmo_desktop.core import baselines, cluster
from scelmo_desktop.core.descriptions import DescribeResult, describe_entities, load_template
from scelmo_desktop.core.errors import ScelmoError
from scelmo_desktop.core.gene_descriptions import GeneDescriptions, describe_gene_list
from scelmo_desktop.core.cell_embedding import embed_cells
from scelmo_desktop.core.cell_vectors import DEFAULT_CONDITIONING, conditioned_embedding
from scelmo_desktop.core.gene_selection import DEFAULT_GENES, select_genes
from scelmo_desktop.core.gene_table import (ENSEMBL_PATTERN, Alignment, GeneTable, align, embed_texts, gene_symbols,
                                            looks_ensembl)
from scelmo_desktop.core.io import Expression, select_expression
from scelmo_desktop.core.jobs import CancelFlag
from scelmo_desktop.core.provenance import now_iso, package_versions
from scelmo_desktop.core.store import Store

StageProgress = Callable[[str, int, int, str], None]
# LLM descriptions refine the fact sheets of the most variable genes; with the embedded 270M model on one core
# (~2 s a gene) 64 genes cost about two minutes. With that model they change the real-data metrics by no more
# than the Leiden sweep's noise (README, "Real data": default vs --mode facts); a capable GGUF is what they are for.
DEFAULT_LLM_GENES = 64
SCELMO_KEY, WA_KEY, AA_KEY = "X_scelmo", "X_scelmo_wa", "X_scelmo_aa"
PCA_KEY, RANDOM_KEY = "X_scelmo_baseline_pca", "X_scelmo_baseline_random"
METHOD_NAMES = {SCELMO_KEY: "scELMo", WA_KEY: "scELMo-wa (paper)", AA_KEY: "scELMo-aa (paper)",
                PCA_KEY: "PCA (scanpy route)", RANDOM_KEY: "random-table"}


def _quiet(stage: str, done: int, total: int, message: str = "") -> None:
    return None


@dataclass
class PipelineSettings:
    label_key: str | None = None
    layer: str = "auto"
    input_kind: str = "auto"  # auto | counts | normalized | log (see core.input_kind)
    max_genes: int | None = DEFAULT_GENES  # the gene set: most variable genes first; None: every gene
    llm_genes: int | None = DEFAULT_LLM_GENES  # of those, how many the LLM describes (None: all); rest: fact sheets
    llm_minutes: float | None = None  # stop LLM generation after this long (None: no time limit)
    conditioning: str = DEFAULT_CONDITIONING  # standard | paper (see core.cell_vectors)
    symbol_column: str | None = None
    params: GenerationParams = field(default_factory=GenerationParams)
    seed: int = 0
    n_neighbors: int = 15
    resolution: float | None = None  # None: sweep 0.2–2.0 when labels exist, else 1.0
    baselines: bool = True
    mode: str = "llm"  # llm | grounded | facts (see core.gene_descriptions)
    on_flag: str = "keep"  # keep | regenerate | facts: what to do with a flagged description
    knowledge_files: list[str] = field(default_factory=list)  # user knowledge files (gene_info, GenePT JSON, …)

    def user_knowledge(self) -> list:
        from scelmo_desktop.core.knowledge.user_files import load_user_knowledge

        return [load_user_knowledge(path) for path in self.knowledge_files]

    def as_dict(self) -> dict:
        data = asdict(self)
        data["params"] = self.params.as_dict()
        return data


@dataclass
class LLMSource:
    """The LLM as the pipeline needs it: identity now, the loaded model only if something is missing."""

    name: str
    sha256: str
    factory: Callable[[], LLMBackend]
    info: dict = field(default_factory=dict)

    def describe(self) -> dict:
        """Identity plus, when the model was loaded in this run, the backend's own report (threads, layers…)."""
        loaded = getattr(self.factory, "backend", None)
        return {**self.info, **(loaded.info() if loaded is not None else {}), "name": self.name, "sha256": self.sha256}


@dataclass
class PipelineResult:
    adata: object
    record: dict
    metrics: pd.DataFrame
    descriptions: dict[str, str]
    table: GeneTable
    described: GeneDescriptions | None = None  # how each text was made (mode, LLM or fact sheet, flags)


def label_values(adata, label_key: str | None):
    if label_key is None:
        return None
    if label_key not in adata.obs.columns:
        raise ScelmoError(f"Label column '{label_key}' is not in obs; available: {', '.join(map(str, adata.obs.columns))}.")
    labels = adata.obs[label_key]
    if labels.isna().all():
        raise ScelmoError(f"Label column '{label_key}' is empty (all values missing); choose another --label-key.")
    if labels.isna().any():
        raise ScelmoError(f"Label column '{label_key}' has {int(labels.isna().sum())} missing values; fill or drop those cells.")
    return labels.astype(str).to_numpy()


def data_symbols(expression: Expression, symbol_column: str | None = None) -> list[str]:
    """Gene symbols of the data; Ensembl ids without a symbol column are mapped through the gene catalog."""
    mapper = None
    if symbol_column is None and looks_ensembl(expression.var_names):
        from scelmo_desktop.core.knowledge.genes import GeneCatalog

        catalog = GeneCatalog.load()
        mapper = catalog.symbol_for_ensembl if catalog is not None else None
    symbols = gene_symbols(expression.var_names, expression.var, symbol_column, ensembl_to_symbol=mapper)
    if looks_ensembl(expression.var_names) and all(ENSEMBL_PATTERN.match(s) for s in symbols):
        raise ScelmoError(
            "The genes are Ensembl ids and none of them could be mapped to a gene symbol ("
            + ("the gene catalog knows none of them" if mapper else "the knowledge extra with the gene catalog is "
               "not installed") + "). Pass --symbol-column naming the var column with symbols, or install the "
            "knowledge extra.")
    return symbols


# Below this share of recognised genes a file is not human symbols/Ensembl ids (another species, or ids of some
# other scheme): its fact sheets would all be "Gene X." and the embedding noise, so it is refused.
MIN_RECOGNISED_FRACTION = 0.2


MOUSE_STYLE = re.compile(r"^[A-Z][a-z][a-z0-9]*$")  # Cd79a, Lyz2: mouse/rat symbols; human ones are upper case


def species_note(symbols: list[str]) -> str | None:
    """A warning when most gene symbols are written the mouse way: the knowledge is human, so each gene is
    described by its human namesake (a fair guess for most orthologs, wrong for some)."""
    named = [s for s in symbols if any(c.isalpha() for c in s)]
    if named and sum(bool(MOUSE_STYLE.match(s)) for s in named) > 0.5 * len(named):
        return ("most gene symbols are written the mouse/rat way (e.g. " + ", ".join(
            [s for s in named if MOUSE_STYLE.match(s)][:3]) + "); the knowledge is human, so each gene is "
            "described by its human namesake")
    return None


def recognised_genes(symbols: list[str]) -> tuple[int, list[str]] | None:
    """How many ``symbols`` the gene catalog knows, and examples of unknown ones; None without the catalog."""
    from scelmo_desktop.core.knowledge.genes import GeneCatalog

    catalog = GeneCatalog.load()
    if catalog is None:
        return None
    unknown = [s for s in symbols if catalog.resolve(s)[0] is None]
    return len(symbols) - len(unknown), unknown[:5]


def require_known_genes(gene_set: list[str], *, total: int) -> None:
    """Refuse a gene set the catalog barely knows (no human symbols or Ensembl ids), naming what to do."""
    found = recognised_genes(gene_set)
    if found is None or not gene_set:
        return
    known, examples = found
    if known >= MIN_RECOGNISED_FRACTION * len(gene_set):
        return
    raise ScelmoError(
        f"Only {known} of the {len(gene_set)} selected genes (of {total}) are recognised as human gene symbols or "
        f"Ensembl ids (unrecognised examples: {', '.join(examples)}). Point the symbol column setting at the var "
        "column that holds gene symbols, or check the species: the knowledge covers human genes.")


def describe_genes(
    expression: Expression, *, settings: PipelineSettings, llm: LLMSource, store: Store,
    progress: StageProgress = _quiet, cancel: CancelFlag | None = None,
) -> tuple[list[str], GeneDescriptions]:
    """Describe the data set's gene set (its ``max_genes`` most variable genes, in that order; the LLM budget
    goes to the first ones); returns the entities and texts."""
    symbols = data_symbols(expression, settings.symbol_column)
    chosen = select_genes(expression.matrix, settings.max_genes)
    entities = [symbols[i] for i in chosen]
    require_known_genes(entities, total=len(symbols))
    return entities, describe_genes_in_budget(entities, settings=settings, llm=llm, store=store,
                                              progress=progress, cancel=cancel)


def describe_genes_in_budget(genes: list[str], *, settings: PipelineSettings, llm: LLMSource, store: Store,
                             progress: StageProgress = _quiet, cancel: CancelFlag | None = None) -> GeneDescriptions:
    """:func:`describe_gene_list` with the settings' mode, flag policy, knowledge files and LLM budget."""
    return describe_gene_list(genes, mode=settings.mode, llm=llm, store=store, params=settings.params,
                              on_flag=settings.on_flag, knowledge_files=settings.user_knowledge(),
                              llm_genes=settings.llm_genes, llm_minutes=settings.llm_minutes,
                              progress=functools.partial(progress, "describe"), cancel=cancel)


def gene_table_for(
    expressions: list[Expression], *, settings: PipelineSettings, llm: LLMSource, store: Store, embedder: Embedder,
    extra_genes=(), progress: StageProgress = _quiet, cancel: CancelFlag | None = None,
) -> tuple[GeneTable, list[GeneDescriptions]]:
    """One gene table for several files: each file's ``max_genes`` most variable genes plus ``extra_genes``
    (genes an analysis must have, e.g. candidates or perturbed genes), described once and embedded."""
    texts, results = {}, []
    for expression in expressions:
        _, described = describe_genes(expression, settings=settings, llm=llm, store=store, progress=progress,
                                      cancel=cancel)
        texts.update(described.texts)
        results.append(described)
    missing = [g for g in dict.fromkeys(map(str, extra_genes)) if g not in texts]
    if missing:
        described = describe_genes_in_budget(missing, settings=settings, llm=llm, store=store, progress=progress,
                                             cancel=cancel)
        texts.update(described.texts)
        results.append(described)
    table, _ = embed_texts(texts, embedder=embedder, store=store, cancel=cancel,
                           progress=functools.partial(progress, "embed texts"))
    return table, results


def describe_cell_types(
    adata, label_key: str, *, settings: PipelineSettings, llm: LLMSource, store: Store,
    progress: StageProgress = _quiet, cancel: CancelFlag | None = None,
) -> DescribeResult:
    """Describe each distinct label of ``obs[label_key]`` (METHOD.md §1.2) in ``settings.mode``: the cell-type
    prompt, the prompt grounded in the label's Cell Ontology term, or that term's text alone (facts)."""
    import json

    from scelmo_desktop.core.knowledge.cell_ontology import cell_type_fact_sheets

    labels = sorted(set(label_values(adata, label_key)))
    sheets, mapping = cell_type_fact_sheets(labels) if settings.mode != "llm" else (None, {})
    if settings.mode == "facts":
        return DescribeResult(texts=sheets)
    return describe_entities(
        labels, kind="cell_type", model_sha256=llm.sha256, model_name=llm.name, llm_factory=llm.factory,
        store=store, template=load_template("cell_type", mode=settings.mode), params=settings.params,
        facts=sheets, knowledge_id=json.dumps(mapping, sort_keys=True),
        progress=functools.partial(progress, "describe cell types"), cancel=cancel,
    )


def gene_alignment(expression: Expression, table: GeneTable, *, symbol_column: str | None = None,
                   totals: np.ndarray | None = None) -> tuple[Alignment, dict]:
    """The table's rows in the data's gene order, and the coverage report; raises when no gene matches."""
    symbols = data_symbols(expression, symbol_column)
    alignment = align(table, expression.var_names, expression.var, symbol_column, symbols=symbols)
    coverage = alignment.coverage(expression.var_names, totals)
    if looks_ensembl(expression.var_names):
        coverage["ensembl_ids_unmapped"] = sum(bool(ENSEMBL_PATTERN.match(s)) for s in symbols)
    if coverage["n_matched"] == 0:
        raise ScelmoError(
            f"None of the {alignment.n_genes} genes in the data match the {len(table.symbols)} symbols of the gene "
            "table (exact, case-insensitive or symbol column). Check that var_names hold gene symbols, or pass "
            "--symbol-column naming the var column that does."
        )
    return alignment, coverage


def restrict_to_gene_set(alignment: Alignment, expression: Expression, max_genes: int | None) -> Alignment:
    """Keep table rows only for the gene set (the ``max_genes`` most variable genes): a table that knows more
    genes (an imported GenePT table) must not pull the embedding back onto the noise genes."""
    if max_genes is None or max_genes >= alignment.n_genes:
        return alignment
    keep = np.zeros(alignment.n_genes, dtype=bool)
    keep[select_genes(expression.matrix, max_genes)] = True
    return alignment.keep(keep)


def add_cell_embeddings(
    adata, expression: Expression, table: GeneTable, *, symbol_column: str | None = None,
    max_genes: int | None = None, conditioning: str = DEFAULT_CONDITIONING, seed: int = 0,
    progress: StageProgress = _quiet, cancel: CancelFlag | None = None,
) -> tuple[Alignment, dict]:
    """Write ``obsm['X_scelmo']`` (the embedding every task uses: the ``conditioning`` of
    :mod:`~scelmo_desktop.core.cell_vectors`), ``obsm['X_scelmo_wa']`` and ``obsm['X_scelmo_aa']`` (the paper's
    formulas, for comparison) and ``varm['scelmo_gene_embedding']``.

    The embedding uses the table's genes within the gene set (``max_genes`` most variable; None: all). Returns
    the alignment of the table to the expression genes and the coverage report. Raises when no gene of the data
    matches the table.
    """
    totals = np.asarray(expression.matrix.sum(axis=0)).ravel()
    alignment, coverage = gene_alignment(expression, table, symbol_column=symbol_column, totals=totals)
    alignment = restrict_to_gene_set(alignment, expression, max_genes)
    coverage.update(gene_set_coverage(alignment, max_genes, totals))
    adata.obsm[SCELMO_KEY] = conditioned_embedding(expression.matrix, alignment.matrix, conditioning=conditioning,
                                                   seed=seed, progress=functools.partial(progress, "embed cells"),
                                                   cancel=cancel)
    for key, mode in ((WA_KEY, "wa"), (AA_KEY, "aa")):
        adata.obsm[key] = embed_cells(expression.matrix, alignment.matrix, mode=mode,
                                      progress=functools.partial(progress, f"embed {mode}"), cancel=cancel)
    same_genes = list(adata.var_names) == expression.var_names
    varm_alignment = alignment if same_genes else align(table, list(adata.var_names), adata.var, symbol_column)
    adata.varm["scelmo_gene_embedding"] = varm_alignment.matrix
    return alignment, coverage


def gene_set_coverage(alignment: Alignment, max_genes: int | None, totals: np.ndarray) -> dict:
    """The gene set the embedding is built on: its size, how many of its genes have a vector, its share of
    the expression."""
    size = alignment.n_genes if max_genes is None else min(max_genes, alignment.n_genes)
    matched = alignment.matched
    share = float(totals[matched].sum() / totals.sum()) if totals.sum() > 0 else 0.0
    return {"gene_set": {"size": int(size), "with_vector": int(matched.sum()), "fraction_expression": share}}


def evaluate_clustering(
    adata, expression: Expression, alignment: Alignment, *, settings: PipelineSettings,
    progress: StageProgress = _quiet, cancel: CancelFlag | None = None,
) -> pd.DataFrame:
    """Cluster scELMo-wa (and -aa, PCA, random-table baselines); write ``obs['scelmo_leiden']`` and UMAP.

    Returns one row per method with the chosen resolution, the cluster count and, with labels, NMI/ARI/ASW.
    """
    labels = label_values(adata, settings.label_key)
    reps = [SCELMO_KEY, WA_KEY, AA_KEY]
    if settings.baselines:
        adata.obsm[PCA_KEY] = baselines.pca_embedding(expression.matrix, seed=settings.seed)
        random_matrix = baselines.random_table(alignment.matched, alignment.matrix.shape[1], seed=settings.seed)
        adata.obsm[RANDOM_KEY] = conditioned_embedding(expression.matrix, random_matrix, seed=settings.seed,
                                                       conditioning=settings.conditioning)
        reps += [PCA_KEY, RANDOM_KEY]
    rows = []
    for done, rep in enumerate(reps):
        progress("cluster", done, len(reps), METHOD_NAMES[rep])
        result = cluster.cluster_embedding(adata, rep, labels=labels, resolution=settings.resolution,
                                           n_neighbors=settings.n_neighbors, seed=settings.seed, cancel=cancel)
        rows.append({"method": METHOD_NAMES[rep], "embedding": rep, "resolution": result.resolution,
                     "n_clusters": int(len(np.unique(result.clusters))), **result.scores})
        if rep == SCELMO_KEY:
            cluster.store_clusters(adata, result.clusters)
        else:  # keep only the X_scelmo graph in the output; the other graphs served their purpose
            cluster.drop_graph(adata, f"{rep}_neighbors")
    progress("cluster", len(reps), len(reps), "UMAP")
    cluster.umap(adata, f"{SCELMO_KEY}_neighbors", seed=settings.seed)
    return pd.DataFrame(rows)


def h5ad_safe(value):
    """Make a provenance value storable in ``uns`` (h5ad has no None and no lists of dicts)."""
    if value is None:
        return "none"
    if isinstance(value, dict):
        if any("/" in str(k) for k in value):  # h5 groups cannot have "/" in names (e.g. "CD4+/CD25 T Reg")
            return json.dumps(value, default=str)
        return {str(k): h5ad_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, (str, int, float, bool)) for v in value) and len({type(v) for v in value}) <= 1:
            return list(value)
        return json.dumps(value, default=str)
    if isinstance(value, np.generic):
        return value.item()
    return value


def run_pipeline(
    adata, *, settings: PipelineSettings, llm: LLMSource, embedder: Embedder, store: Store, data_name: str = "",
    progress: StageProgress = _quiet, cancel: CancelFlag | None = None, table: GeneTable | None = None,
) -> PipelineResult:
    """Run the whole zero-shot pipeline on ``adata`` in place and return what it computed.

    With a precomputed ``table`` (imported GenePT/scELMo table) the describe and embed-text steps are skipped.

    Writes the keys listed in this module's docstring, including ``uns['scelmo']`` with the run record.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    label_values(adata, settings.label_key)  # fail on a bad label column before hours of LLM work
    expression = select_expression(adata, settings.layer, input_kind=settings.input_kind)

    imported = table is not None
    t0 = time.perf_counter()
    if not imported:
        entities, described = describe_genes(expression, settings=settings, llm=llm, store=store,
                                             progress=progress, cancel=cancel)
    else:
        entities, described = [], GeneDescriptions(texts={}, mode="imported table")
    timings["describe"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if not imported:
        table, embed_stats = embed_texts(described.texts, embedder=embedder, store=store,
                                         progress=functools.partial(progress, "embed texts"), cancel=cancel)
    else:
        embed_stats = {"imported_table": table.provenance, "genes": len(table.symbols), "dim": table.dim}
    alignment, coverage = add_cell_embeddings(adata, expression, table, symbol_column=settings.symbol_column,
                                              max_genes=settings.max_genes, conditioning=settings.conditioning,
                                              seed=settings.seed, progress=progress, cancel=cancel)
    timings["embed"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    metrics = evaluate_clustering(adata, expression, alignment, settings=settings, progress=progress, cancel=cancel)
    timings["cluster"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started

    template = load_template("gene", mode=settings.mode)
    record = {
        "data": data_name, "created_at": now_iso(), "layer": expression.layer,
        "input": expression.input_kind.as_dict(), "conditioning": settings.conditioning,
        "descriptions": described.budget_report(),
        "llm": llm.describe(),
        "embedder": embedder.info() if embedder is not None else "none (imported table)",
        "description_mode": "imported table" if imported else settings.mode, "on_flag": settings.on_flag, "knowledge": described.knowledge,
        "quality_flags": described.flag_counts(), "fell_back_to_facts": len(described.fell_back),
        "hand_edits": described.edited,
        "prompt_template": "(no prompt used)" if imported or settings.mode == "facts" else template.text,
        "prompt_template_sha256": template.sha256,
        "decoding": settings.params.as_dict(), "seed": settings.seed, "settings": settings.as_dict(),
        "llm_calls": described.n_llm_calls, "llm_cached": described.n_cached, "n_described": len(entities),
        "generated_tokens": described.generated_tokens, "embedding": embed_stats, "coverage": coverage,
        "species_note": species_note(expression.var_names) or "none",
        "metrics": metrics.to_dict(orient="records"), "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "versions": package_versions(),
    }
    adata.uns["scelmo"] = h5ad_safe(record)
    return PipelineResult(adata=adata, record=record, metrics=metrics, descriptions=described.texts, table=table,
                          described=described)
