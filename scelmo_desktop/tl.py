"""``scelmo.tl``: the scELMo tasks the scanpy way: AnnData first, keyword-only options, ``key_added=``.

    >>> import scelmo_desktop as scelmo
    >>> adata = scelmo.io.read("pbmc3k_raw.h5ad")
    >>> models = scelmo.models.load(mode="facts")
    >>> scelmo.tl.describe_genes(adata, models=models)                # texts into the local store
    >>> scelmo.tl.embed_cells(adata, models=models, key_added="X_scelmo")
    >>> scelmo.tl.cluster(adata, use_rep="X_scelmo", label_key="cell_type")
    >>> scelmo.tl.annotate(query, reference=adata, label_key="cell_type", models=models)

Each function is the same workflow the CLI and the app run (``scelmo_desktop.core.workflows``); it writes
only the keys its docstring lists, plus its record in ``uns['scelmo']`` (models with hashes, prompt, seed,
settings, package versions). Their keyword settings (``layer``, ``max_genes``, ``llm_genes``, ``seed``, …) are the
declared settings of ``core.settings``, with the same defaults as the CLI and the app; each function's
signature and docstring list its own.
"""

from __future__ import annotations

import contextlib
import functools
import inspect

from scelmo_desktop.app.session import open_store
from scelmo_desktop.core.keys import CLUSTER_KEY, INTEGRATED_KEY, LABEL_KEY, MARKERS_KEY, NAME_KEY, SCELMO_KEY
from scelmo_desktop.core.settings import ANALYSIS, PipelineSettings, declared, default
from scelmo_desktop.core.workflows.environment import no_progress

__all__ = [
    "annotate",
    "cluster",
    "compare",
    "describe_genes",
    "embed_cells",
    "explain_names",
    "integrate",
    "markers",
    "name_cell_types",
    "perturb",
    "treat",
]


def _takes_settings(task: str, *, exclude: tuple[str, ...] = ()):
    """The declared analysis settings of ``task`` (but ``exclude``) become keyword-only arguments of the function,
    with their declared defaults in its signature and docstring; the values arrive checked, in ``options``."""

    def decorate(func):
        signature = inspect.signature(func)
        own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        settings = [
            s
            for s in declared(scope=ANALYSIS, task=task)
            if s.name not in signature.parameters and s.name not in exclude
        ]
        extra = [
            inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=s.default_for(task)) for s in settings
        ]
        names = {s.name: s for s in settings}

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            options = {}
            for name in list(kwargs):
                if name in names:
                    try:
                        options[name] = names[name].check(kwargs.pop(name))
                    except ValueError as exc:
                        raise ValueError(f"{func.__name__}(): {exc}") from None
            bound = inspect.signature(func).bind_partial(*args, **kwargs)  # an unknown keyword fails here
            return func(*bound.args, **bound.kwargs, **options)

        wrapper.__signature__ = signature.replace(parameters=[*own, *extra])
        wrapper.__doc__ = (
            (func.__doc__ or "")
            + "\n\n    Settings (declared in ``core.settings``):\n"
            + "".join(f"      ``{s.name}={s.default_for(task)!r}``: {s.help}.\n" for s in settings)
        )
        return wrapper

    return decorate


def _device(models) -> str:
    """The torch device of the chosen models (a model setting: ``scelmo.models.load(device=...)``)."""
    from scelmo_desktop import models as models_module

    return (models or models_module.default()).choice.device


@contextlib.contextmanager
def _resources(models, options: dict, *, embedder: bool = True, progress=None, cancel=None):
    from scelmo_desktop import models as models_module

    models = models or models_module.default()
    with open_store(models.store_path) as store:
        yield {
            "settings": PipelineSettings(**options, mode=models.mode),
            "llm": models.llm,
            "embedder": models.embedder if embedder else None,
            "store": store,
            "progress": progress or no_progress,
            "cancel": cancel,
        }


@_takes_settings("describe")
def describe_genes(
    adata=None,
    *,
    genes: list[str] | None = None,
    cell_types_key: str | None = None,
    models=None,
    out=None,
    progress=None,
    cancel=None,
    **options,
):
    """Describe the gene set of ``adata`` (or exactly ``genes``), and with ``cell_types_key`` each label of that
    obs column, into the local store; returns a DataFrame with one row per entity (name, kind, mode, text, what
    the LLM wrote, quality flags, hand edits). Writes no AnnData key. ``out``: also write it as CSV."""
    from scelmo_desktop.core.workflows.describe import describe

    with _resources(models, options, embedder=False, progress=progress, cancel=cancel) as resources:
        del resources["embedder"]
        return describe(adata, genes=genes, cell_types_key=cell_types_key, out=out, **resources).rows()


@_takes_settings("embed")
def embed_cells(
    adata,
    *,
    key_added: str = SCELMO_KEY,
    paper: bool = False,
    table=None,
    models=None,
    progress=None,
    cancel=None,
    **options,
) -> dict:
    """Embed every cell: describe the gene set (cached texts are reused), embed the texts, sum each cell's
    genes. Writes ``obsm[key_added]``, ``varm['<key_added without X_>_gene_embedding']`` and
    ``uns['scelmo']['embedding']``; with ``paper=True`` also ``obsm['<key_added>_wa']`` and ``['<key_added>_aa']``
    (the paper's formulas). ``table``: a gene table (``scelmo.io.gene_table``) instead of describing. Returns
    the coverage report."""
    from scelmo_desktop.core.workflows.embed import embed

    with _resources(models, options, embedder=table is None, progress=progress, cancel=cancel) as resources:
        return embed(adata, table=table, key_added=key_added, paper=paper, **resources).coverage


def cluster(
    adata,
    *,
    use_rep: str = SCELMO_KEY,
    key_added: str = CLUSTER_KEY,
    label_key: str | None = None,
    resolution: float | None = None,
    umap: bool = True,
    seed: int = 0,
):
    """Leiden clusters on the kNN graph of ``obsm[use_rep]``: with ``label_key`` the resolution is swept and
    chosen by NMI against the labels, else ``resolution`` (default 1.0). Writes ``obs[key_added]``, the graph
    ``obsp``/``uns['<use_rep>_neighbors']``, with ``umap`` ``obsm['X_umap']``, and
    ``uns['scelmo']['clustering']``. Returns one row of metrics (NMI, ARI, ASW with labels)."""
    from scelmo_desktop.core.workflows.cluster import cluster as run

    return run(
        adata, use_rep=use_rep, label_key=label_key, resolution=resolution, seed=seed, key_added=key_added, umap=umap
    ).metrics


@_takes_settings("markers")
def markers(adata, *, groupby: str = CLUSTER_KEY, key_added: str = MARKERS_KEY, **options):
    """Marker genes of each group of ``obs[groupby]`` against the rest: scanpy's ``rank_genes_groups`` on the
    log-normalised matrix, filtered as ``filter_rank_genes_groups`` filters. Writes ``uns[key_added]`` (scanpy's
    layout: ``sc.get.rank_genes_groups_df`` and ``sc.pl.rank_genes_groups_dotplot`` read it) and
    ``uns['scelmo']['markers']``. Returns the table of every gene of every group (group, gene, score,
    log2_fold_change, pct_in_group, pct_out_group, p_value, p_adjusted, passes_filter)."""
    from scelmo_desktop.core.workflows.markers import markers_of_data

    settings = PipelineSettings(**options)
    return markers_of_data(adata, groupby=groupby, settings=settings, key_added=key_added).table


@_takes_settings("markers", exclude=("naming", "tissue"))
def compare(adata, *, groupby: str, group: str, reference: str, within: tuple[str, str] | None = None, **options):
    """Differential expression of the cells with ``obs[groupby] == group`` against those with ``== reference``
    (not the rest), within ``obs[within[0]] == within[1]`` when given (one cell type across conditions); the
    markers' test on the log-normalised matrix. Writes no AnnData key. Returns every gene's row (gene, score,
    log2_fold_change, pct_in_group, pct_out_group, p_value, p_adjusted); ``scelmo.pl.volcano`` draws it."""
    from scelmo_desktop.core.workflows.comparison import compare_in_data

    settings = PipelineSettings(**options)
    markers = compare_in_data(
        adata, groupby=groupby, group=group, reference=reference, within=within, settings=settings
    )
    return markers.table.drop(columns=["passes_filter"])


@_takes_settings("markers", exclude=("naming",))
def name_cell_types(adata, *, groupby: str = CLUSTER_KEY, key_added: str = NAME_KEY, **options):
    """Name each group of ``obs[groupby]`` with a Cell Ontology type from its marker genes and the curated marker
    knowledge, with no reference and no candidate list. Finds the markers first (writes ``uns['rank_genes_groups']``
    and ``uns['scelmo']['markers']`` as :func:`markers` does), then writes ``obs[key_added]`` (name),
    ``obs['<key_added>_ontology_id']``, ``obs['<key_added>_confidence']`` and the per-group evidence in
    ``uns['scelmo']['naming']``. Returns one row per group: name, id, confidence, score, markers for and against,
    runner-ups."""
    from scelmo_desktop.core.workflows.markers import markers_and_names_of_data

    settings = PipelineSettings(**options).replace(naming=default("naming"))
    found = markers_and_names_of_data(adata, groupby=groupby, settings=settings, names_key=key_added)
    if found.naming is None:
        raise ValueError(f"name_cell_types(): {found.notes.get('naming', 'no names')}")
    return found.naming.table()


def explain_names(adata, *, models=None, choose: bool = False, progress=None, cancel=None, **options):
    """A local LLM (``models``: :func:`scelmo_desktop.models.load` with your own instruct GGUF; default: the
    embedded one, which is too weak and whose answers are flagged) explains each group's name from the evidence
    :func:`name_cell_types` stored, and with ``choose`` may take a runner-up that evidence ranked (never a label
    of its own). Writes each group's ``explanation`` into ``uns['scelmo']['naming']`` and, when a runner-up is
    taken, the name columns. Returns the names table with the LLM's choice, reason and the checks' flags."""
    from scelmo_desktop import models as models_module
    from scelmo_desktop.core.workflows.data import select_expression
    from scelmo_desktop.core.workflows.naming import explain_names as explain
    from scelmo_desktop.core.workflows.naming import naming_of_data

    settings = PipelineSettings(**options)
    naming = naming_of_data(adata)
    models = models or models_module.default()
    expression = select_expression(adata, settings.layer, input_kind=settings.input_kind)
    explain(
        adata,
        naming,
        models.session.explainer(models.choice),
        expression,
        symbol_column=settings.symbol_column,
        choose=choose,
        progress=progress or no_progress,
        cancel=cancel,
    )
    return naming.table()


@_takes_settings("annotate")
def annotate(
    adata,
    *,
    reference=None,
    label_key: str | None = None,
    key_added: str = LABEL_KEY,
    candidates: list[str] | None = None,
    adaptor=None,
    table=None,
    models=None,
    progress=None,
    cancel=None,
    **options,
) -> dict:
    """Label the cells of ``adata``: ``knn`` (10-NN vote on a labelled ``reference``), ``adaptor`` (fine-tuned
    on the reference, or a saved ``adaptor`` file: then no reference is needed) or ``text`` (no reference:
    ``text_scoring`` markers / centroid use the cell-type descriptions, knowledge the curated markers of each
    type's Cell Ontology term; candidates from ``candidates``, a tissue ``preset`` such as ``"blood"``, or the
    reference's labels; ``smoothing`` averages marker scores over neighbours: ``expression``, ``embedding``
    (``obsm['X_scelmo']``) or ``none``). Writes ``obs[key_added]``, ``obs['<key_added>_confidence']``,
    ``obs['<key_added>_similarity']`` and ``uns['scelmo']['annotation']``; adaptor mode also
    ``obs['<key_added>_head']``, ``obs['<key_added>_head_probability']`` and ``obsm['X_scelmo_adaptor']``.
    Returns the run record (with accuracy and macro-F1 when ``adata`` has ``obs[label_key]``)."""
    from scelmo_desktop import models as models_module
    from scelmo_desktop.core.workflows.annotation import run_annotation
    from scelmo_desktop.core.workflows.annotation_inputs import needs_embedder

    models = models or models_module.default()
    embedder = needs_embedder(
        options.get("method", "knn"), options.get("text_scoring", "auto"), has_table=table is not None
    )
    with _resources(models, options, embedder=embedder, progress=progress, cancel=cancel) as resources:
        return run_annotation(
            adata,
            reference=reference,
            label_key=label_key,
            candidates=candidates,
            table=table,
            adaptor_file=adaptor,
            key_added=key_added,
            device=models.choice.device,
            **resources,
        )[1]


@_takes_settings("integrate")
def integrate(
    adata,
    *,
    batch_key: str,
    label_key: str | None = None,
    key_added: str = INTEGRATED_KEY,
    table=None,
    models=None,
    progress=None,
    cancel=None,
    **options,
):
    """Integrate the batches of ``obs[batch_key]`` with no labels and score the result beside the uncorrected
    scELMo space, scanpy's PCA and Harmony on PCA (scIB-style; without ``label_key`` only the scores that need no
    labels). Writes ``obsm['X_scelmo']`` (uncorrected), ``obsm[key_added]`` (integrated; cluster it with
    ``scelmo.tl.cluster(adata, use_rep=key_added)``), ``obsm['X_scelmo_baseline_pca']``, ``obsm['X_pca_harmony']``,
    with ``label_key`` also ``obsm['X_scelmo_adaptor_integrated']`` (the labelled batch-adversarial adaptor), and
    ``uns['scelmo']['integration']``. Returns the metrics, one row per method."""
    from scelmo_desktop.core.workflows.integration import integrate as run

    with _resources(models, options, progress=progress, cancel=cancel) as resources:
        return run(
            adata,
            batch_key=batch_key,
            label_key=label_key,
            key_added=key_added,
            table=table,
            device=_device(models),
            **resources,
        ).metrics


@_takes_settings("treatment")
def treat(
    adata,
    *,
    condition_key: str,
    control: str,
    disease: str,
    candidates: list[str] | None = None,
    models=None,
    progress=None,
    cancel=None,
    **options,
):
    """In-silico treatment: rank knock-outs of ``candidates`` (default: the genes most up in ``disease``) by how
    far they move disease cells towards ``control``, with a matched-expression null. Writes no AnnData key;
    returns the ranking."""
    from scelmo_desktop.core.workflows.treatment import treat as run

    with _resources(models, options, progress=progress, cancel=cancel) as resources:
        return run(
            adata,
            condition_key=condition_key,
            control=control,
            disease=disease,
            candidates=candidates,
            device=_device(models),
            **resources,
        ).ranking


@_takes_settings("perturb")
def perturb(adata, *, perturbation_key: str, control: str, models=None, progress=None, cancel=None, **options):
    """Predict the expression shift of perturbations never seen in training from the perturbed genes'
    vectors. Writes no AnnData key; returns the metrics on the held-out perturbations."""
    from scelmo_desktop.core.workflows.perturbation import perturb as run

    with _resources(models, options, progress=progress, cancel=cancel) as resources:
        return run(
            adata, perturbation_key=perturbation_key, control=control, device=_device(models), **resources
        ).metrics
