"""Marker genes of each cluster (or any obs grouping), composed once for every door: ``scelmo run`` (its
default), ``scelmo markers``, the app and ``scelmo.tl.markers``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from scelmo_desktop.core._infra.atomic import write_text_atomic
from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, check_cancel, no_progress
from scelmo_desktop.core._infra.provenance import h5ad_safe, now_iso, package_versions
from scelmo_desktop.core.data.io import Expression, select_expression, write_h5ad
from scelmo_desktop.core.keys import CLUSTER_KEY, MARKERS_KEY, NAME_KEY, UNS_KEY, add_record, read_record
from scelmo_desktop.core.settings import PipelineSettings, default
from scelmo_desktop.core.tasks.markers import FILTER, Markers, rank_markers

MARKERS_FILE = "markers.csv"
NO_SAVED_TEST = "the file holds no marker test of its groups"


@dataclass
class ClusterMarkers:
    """The clusters' marker genes and cell-type names, and why a step did not run (step -> reason)."""

    markers: Markers | None = None
    naming: object = None  # core.tasks.naming.Naming
    notes: dict[str, str] = field(default_factory=dict)


def markers_and_names(
    adata,
    expression: Expression,
    *,
    settings: PipelineSettings,
    groupby: str = CLUSTER_KEY,
    names_key: str = NAME_KEY,
    llm=None,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> ClusterMarkers:
    """The groups' marker genes (``settings.markers``: the test, or off), then their names (``settings.naming``,
    with the hint ``settings.tissue``), then, when ``settings.naming_llm`` asks, the ``llm``'s explanations
    (:func:`~scelmo_desktop.core.workflows.naming.explain_names`). A clustering with fewer than two testable
    clusters, no marker knowledge installed or no LLM gets a note instead of an error: the rest of the run
    stands. A step that does not run removes what an earlier one wrote for other clusters."""
    from scelmo_desktop.core.workflows.naming import clear_names, explain_names, name_cell_types

    found = ClusterMarkers()
    if settings.markers == "off":
        found.notes = {"markers": "the markers setting is off", "naming": "it needs marker genes"}
    else:
        try:
            found.markers = find_markers(adata, expression, groupby=groupby, method=settings.markers, progress=progress)
        except ScelmoError as exc:
            found.notes = {"markers": str(exc), "naming": "it needs marker genes"}
    if found.markers is None:
        adata.uns.pop(MARKERS_KEY, None)
        if isinstance(adata.uns.get(UNS_KEY), dict):
            adata.uns[UNS_KEY].pop("markers", None)
    elif settings.naming == "off":
        found.notes["naming"] = "the naming setting is off"
    else:
        progress("naming", 0, 1, "cell types from the markers and the curated knowledge")
        try:
            found.naming = name_cell_types(
                adata,
                found.markers,
                expression,
                symbol_column=settings.symbol_column,
                tissue=settings.tissue,
                key_added=names_key,
            )
        except ScelmoError as exc:
            found.notes["naming"] = str(exc)
        progress("naming", 1, 1, "done")
    if found.naming is None:
        clear_names(adata, names_key)
    elif settings.naming_llm != "off":
        try:
            if llm is None:
                raise ScelmoError("this door gave no LLM")
            explain_names(
                adata,
                found.naming,
                llm,
                expression,
                symbol_column=settings.symbol_column,
                choose=settings.naming_llm == "choose",
                progress=progress,
                cancel=cancel,
            )
        except ScelmoError as exc:
            found.notes["explanations"] = str(exc)
    return found


def markers_and_names_of_data(
    adata, *, groupby: str, settings: PipelineSettings, names_key: str = NAME_KEY, llm=None
) -> ClusterMarkers:
    """:func:`markers_and_names` of ``obs[groupby]`` on the data's own matrix, prepared as every step prepares it
    (``settings.layer``, ``settings.input_kind``); the default test when markers are set off."""
    if settings.markers == "off":
        settings = settings.replace(markers=default("markers"))
    expression = select_expression(adata, settings.layer, input_kind=settings.input_kind)
    found = markers_and_names(adata, expression, settings=settings, groupby=groupby, names_key=names_key, llm=llm)
    if found.markers is None:
        raise ScelmoError(found.notes["markers"])
    return found


def find_markers(
    adata,
    expression: Expression,
    *,
    groupby: str = CLUSTER_KEY,
    method: str = default("markers"),
    key_added: str = MARKERS_KEY,
    progress: Progress = no_progress,
) -> Markers:
    """Each group of ``obs[groupby]`` against the rest on ``expression`` (the log-normalised matrix of the same
    cells). Writes ``uns[key_added]`` (scanpy's ``rank_genes_groups`` layout, ``params['groupby']`` = ``groupby``,
    so ``sc.pl.rank_genes_groups_dotplot(adata)`` draws it) and ``uns['scelmo']['markers']`` (method, groups,
    the matrix tested (``layer``, ``input_kind``), filter, the top genes of each group, versions). Returns the
    full table."""
    if groupby not in adata.obs:
        raise ScelmoError(
            f"The data has no obs['{groupby}'] to find markers for; cluster first, or choose one of: "
            f"{', '.join(map(str, adata.obs.columns)) or 'none'}."
        )
    if expression.matrix.shape[0] != adata.n_obs:
        raise ScelmoError(f"The expression matrix has {expression.matrix.shape[0]} rows for {adata.n_obs} cells.")
    progress("markers", 0, 1, f"{method} test per group of {groupby}")
    try:
        markers = rank_markers(expression.matrix, expression.var_names, adata.obs[groupby], method=method)
    except ValueError as exc:
        raise ScelmoError(f"No marker genes for obs['{groupby}']: {exc}.") from None
    markers.groupby = groupby
    markers.uns["params"] = {**markers.uns["params"], "groupby": groupby}
    adata.uns[key_added] = markers.uns
    add_record(
        adata,
        "markers",
        h5ad_safe(
            {
                "created_at": now_iso(),
                "groupby": groupby,
                "method": method,
                "key": key_added,
                "layer": expression.layer,  # the matrix tested, so plots draw the same one
                "input_kind": expression.input_kind.kind if expression.input_kind is not None else "log",
                "filter": dict(FILTER),
                "groups": [str(g) for g in markers.table["group"].cat.categories],
                "skipped_groups": markers.skipped_groups,
                "top": {g: ", ".join(genes) for g, genes in markers.top(10).items()},
                "versions": package_versions(),
            }
        ),
    )
    progress("markers", 1, 1, "done")
    return markers


def write_markers_table(markers: Markers, out_dir: str | Path) -> Path:
    """``markers.csv``: every gene of every group, full precision, with whether it passes the filter."""
    return write_text_atomic(Path(out_dir) / MARKERS_FILE, markers.table.to_csv(index=False))


def markers_of_data(
    adata, *, groupby: str = CLUSTER_KEY, settings: PipelineSettings, key_added: str = MARKERS_KEY
) -> Markers:
    """Markers of ``obs[groupby]`` on the data's own matrix, prepared as every step prepares it
    (``settings.layer``, ``settings.input_kind``) with the test ``settings.markers``; writes what
    :func:`find_markers` writes."""
    if settings.markers == "off":
        raise ScelmoError("The markers setting is off, so there is nothing to find; choose wilcoxon or t-test.")
    expression = select_expression(adata, settings.layer, input_kind=settings.input_kind)
    return find_markers(adata, expression, groupby=groupby, method=settings.markers, key_added=key_added)


def markers_of_file(
    adata, *, groupby: str, settings: PipelineSettings, out: str | Path, llm=None
) -> tuple[ClusterMarkers, dict]:
    """``scelmo markers`` and ``scelmo annotate --mode markers``: :func:`markers_and_names_of_data`, then
    ``markers.csv``, ``cell_types.csv`` (unless ``settings.naming`` is off) and the h5ad (with
    ``uns['rank_genes_groups']`` and the naming keys) written into ``out``: a folder (the h5ad is
    ``scelmo_markers.h5ad``) or an ``.h5ad`` path whose folder takes the tables. Returns what was found and the
    files. ``llm`` explains the names when ``settings.naming_llm`` asks."""
    from scelmo_desktop.core.workflows.naming import write_names_table

    found = markers_and_names_of_data(adata, groupby=groupby, settings=settings, llm=llm)
    out = Path(out)
    h5ad = out if out.suffix == ".h5ad" else out / "scelmo_markers.h5ad"
    h5ad.parent.mkdir(parents=True, exist_ok=True)
    files = {"markers": write_markers_table(found.markers, h5ad.parent)}
    if found.naming is not None:
        files["cell_types"] = write_names_table(found.naming, h5ad.parent)
    files["h5ad"] = write_h5ad(adata, h5ad)
    return found, files


MARKER_PLOTS = ("dotplot", "heatmap", "stacked_violin", "violin")


def tested_expression(adata, key: str = MARKERS_KEY) -> Expression:
    """The log-normalised matrix the markers of ``uns[key]`` were found on, as their record names it (the
    declared defaults for a table found elsewhere), so a plot shows the values the test saw."""
    record = read_record(adata, "markers")
    if record.get("key", MARKERS_KEY) != key or "layer" not in record:
        settings = PipelineSettings()
        return select_expression(adata, settings.layer, input_kind=settings.input_kind)
    return select_expression(adata, str(record["layer"]), input_kind=str(record["input_kind"]))


def marker_figure(
    adata, expression: Expression, kind: str, *, key: str = MARKERS_KEY, n_genes: int = 3, gene: str | None = None
):
    """One of scanpy's marker plots of ``uns[key]``, drawn on the log-normalised ``expression`` (the run keeps raw
    counts in ``X``): ``dotplot``, ``heatmap`` or ``stacked_violin`` of each group's first ``n_genes`` markers,
    or ``violin`` of one ``gene`` across the groups. Returns the matplotlib figure (save it with
    :func:`~scelmo_desktop.core.workflows.figures.save_figure`)."""
    import anndata as ad
    import matplotlib.pyplot as plt
    import pandas as pd
    import scanpy as sc

    if kind not in MARKER_PLOTS:
        raise ScelmoError(f"Unknown marker plot '{kind}'; choose one of {', '.join(MARKER_PLOTS)}.")
    if key not in adata.uns:
        raise ScelmoError("Find the marker genes first: the data has no marker table to plot.")
    groupby = adata.uns[key]["params"]["groupby"]
    groups = [str(g) for g in adata.uns[key]["names"].dtype.names]
    labels = adata.obs[groupby].astype(str)  # numbers as labels would be binned by scanpy's plots
    categories = [*groups, *sorted(set(labels) - set(groups))]
    obs = pd.DataFrame({groupby: pd.Categorical(labels, categories=categories)}, index=adata.obs_names.astype(str))
    cells = ad.AnnData(expression.matrix, obs=obs, var=pd.DataFrame(index=expression.var_names))
    cells.var_names_make_unique()
    cells.uns[key] = adata.uns[key]
    if kind == "violin":
        if gene not in cells.var_names:
            raise ScelmoError(f"The data has no gene '{gene}' to draw.")
        axes = sc.pl.violin(cells, keys=gene, groupby=groupby, show=False, rotation=90)
        plt.close(axes.figure)  # kept as an object to save, not left open in pyplot
        return axes.figure
    plot = getattr(sc.pl, f"rank_genes_groups_{kind}")
    if kind == "heatmap":  # scanpy returns the axes of a pyplot figure here
        axes = plot(
            cells, n_genes=n_genes, key=key, groupby=groupby, show=False, show_gene_labels=True, dendrogram=False
        )
        figure = next(iter(axes.values())).figure
        plt.close(figure)
        return figure
    figure = plot(cells, n_genes=n_genes, key=key, groupby=groupby, show=False, return_fig=True, dendrogram=False)
    figure.make_figure()
    plt.close(figure.fig)  # kept as an object to save, not shown by pyplot
    return figure.fig


def holds_saved_markers(adata, key: str = MARKERS_KEY) -> bool:
    """Whether ``adata`` holds a marker test :func:`find_markers` wrote in ``uns[key]``, of a grouping it still
    has (cheap: the keys only)."""
    record = read_record(adata, "markers")
    return key in adata.uns and record.get("key", MARKERS_KEY) == key and str(record.get("groupby", "")) in adata.obs


def saved_markers_and_names(adata, key: str = MARKERS_KEY, *, cancel: CancelFlag | None = None) -> ClusterMarkers:
    """The marker genes and cell-type names a result file holds (what :func:`markers_and_names` wrote, hand edits
    included), read back so that reopening the file shows them as the run left them: the test of ``uns[key]``
    on the matrix its record names, and the calls of ``uns['scelmo']['naming']`` when they name the same
    grouping. Only the filter is computed again. A file with no saved test, or whose groups changed since it was
    tested, gets a note instead (step -> reason). ``cancel`` set while it reads raises ``Cancelled``."""
    from scelmo_desktop.core.tasks.markers import saved_markers
    from scelmo_desktop.core.workflows.naming import naming_of_data

    found = ClusterMarkers()
    if not holds_saved_markers(adata, key):
        found.notes = {"markers": NO_SAVED_TEST, "naming": "it needs marker genes"}
        return found
    record = read_record(adata, "markers")
    groupby = str(record["groupby"])
    try:
        expression = tested_expression(adata, key)
        markers = saved_markers(
            dict(adata.uns[key]),
            expression.matrix,
            expression.var_names,
            adata.obs[groupby],
            method=str(record.get("method", default("markers"))),
        )
    except Exception as exc:  # noqa: BLE001  (reading back is optional: a test another tool wrote in another shape gets a note)
        found.notes = {
            "markers": f"the saved marker test of obs['{groupby}'] could not be read back ({exc}); find them again",
            "naming": "it needs marker genes",
        }
        return found
    markers.groupby = groupby
    markers.uns["params"] = {**markers.uns["params"], "groupby": groupby}
    found.markers = markers
    naming = read_record(adata, "naming")
    if not naming:
        found.notes["naming"] = "the file holds no cell-type names"
    elif str(naming.get("groupby", CLUSTER_KEY)) != groupby:
        found.notes["naming"] = (
            f"the file's names are of obs['{naming.get('groupby')}'], its markers of obs['{groupby}']"
        )
    else:
        found.naming = naming_of_data(adata)
        unknown = set(found.naming.groups) - set(map(str, adata.obs[groupby].unique()))
        if unknown:
            found.naming = None
            found.notes["naming"] = f"the file's names are of groups it no longer has ({', '.join(sorted(unknown))})"
    check_cancel(cancel)
    return found
