"""Differential expression between two groups of cells, composed once for every door: two clusters, two lasso
groups (``obs['scelmo_groups']``), or two conditions within one cell type. The same scanpy test as the markers
(:mod:`~scelmo_desktop.core.tasks.markers`), run on the two groups' cells only, so "the rest" is the other
group."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scelmo_desktop.core._infra.atomic import write_text_atomic
from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.data.io import Expression, select_expression
from scelmo_desktop.core.settings import PipelineSettings, default
from scelmo_desktop.core.tasks.markers import Markers, rank_markers

# what every door says beside a comparison's p-values (Squair et al. 2021, Nat Commun: cell-level tests of
# conditions across samples find many false discoveries)
CELL_LEVEL_NOTE = (
    "p-values treat cells as independent: between conditions measured in different samples or patients they are "
    "optimistic; use them to rank genes, and a per-sample (pseudobulk) test to claim a difference"
)


def compare_groups(
    adata,
    expression: Expression,
    *,
    groupby: str,
    group: str,
    reference: str,
    within: tuple[str, str] | None = None,
    method: str = default("markers"),
) -> Markers:
    """Every gene of the cells with ``obs[groupby] == group`` against those with ``== reference`` (restricted to
    ``obs[within[0]] == within[1]`` when given: one cell type across conditions). Writes no AnnData key; the
    table (one group, named ``group``) has the markers' columns, ``p_adjusted`` for a volcano plot."""
    for column in (groupby, *([within[0]] if within else [])):
        if column not in adata.obs:
            raise ScelmoError(
                f"The data has no obs['{column}']; choose one of: {', '.join(map(str, adata.obs.columns)) or 'none'}."
            )
    if method not in ("wilcoxon", "t-test"):
        raise ScelmoError("Choose a test (wilcoxon or t-test) to compare groups.")
    if str(group) == str(reference):
        raise ScelmoError(f"Compare two different groups (both are '{group}').")
    labels = adata.obs[groupby].astype(str).to_numpy()
    keep = np.isin(labels, [str(group), str(reference)])
    if within is not None:
        keep &= adata.obs[within[0]].astype(str).to_numpy() == str(within[1])
    where = f" among obs['{within[0]}'] == '{within[1]}'" if within else ""
    for name in (group, reference):
        n = int((keep & (labels == str(name))).sum())
        if n < 2:
            raise ScelmoError(f"obs['{groupby}'] == '{name}'{where} has {n} cell(s); a comparison needs two or more.")
    rows = np.flatnonzero(keep)
    markers = rank_markers(expression.matrix[rows], expression.var_names, labels[rows], method=method)
    table = markers.table[markers.table["group"].astype(str) == str(group)].reset_index(drop=True)
    markers.table = table.assign(group=table["group"].astype(str))
    markers.groupby = f"{groupby}: {group} vs {reference}{where}"
    return markers


def write_comparison(markers: Markers, out_dir: str | Path) -> dict[str, Path]:
    """``comparison.csv`` (every gene, full precision) and ``volcano.png`` in ``out_dir``; returns the paths."""
    from scelmo_desktop.core.workflows.figures import save_png, volcano_figure

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "comparison": write_text_atomic(out_dir / "comparison.csv", markers.table.to_csv(index=False)),
        "volcano": save_png(volcano_figure(markers.table, title=markers.groupby), out_dir / "volcano.png"),
    }


def compare_in_data(
    adata,
    *,
    groupby: str,
    group: str,
    reference: str,
    within: tuple[str, str] | None = None,
    settings: PipelineSettings,
) -> Markers:
    """:func:`compare_groups` on the data's own matrix, prepared as every step prepares it (``settings.layer``,
    ``settings.input_kind``), with the markers' test (the default one when markers are set off)."""
    method = settings.markers if settings.markers != "off" else default("markers")
    expression = select_expression(adata, settings.layer, input_kind=settings.input_kind)
    return compare_groups(
        adata, expression, groupby=groupby, group=group, reference=reference, within=within, method=method
    )


def parse_within(text: str | None) -> tuple[str, str] | None:
    """``COLUMN=VALUE`` (one cell type, say) as a pair; None stays None."""
    if not text:
        return None
    column, sep, value = text.partition("=")
    if not sep or not column.strip():
        raise ScelmoError(f"A restriction takes COLUMN=VALUE (e.g. scelmo_cell_type=classical monocyte), got '{text}'.")
    return column.strip(), value.strip()
