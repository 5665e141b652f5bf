"""In-silico treatment as every door runs it: candidates, gene table (with the candidates in it), repeated
adaptor training and knock-outs (:func:`scelmo_desktop.core.tasks.treatment.in_silico_treatment`), record, write.

Writes no AnnData key: the result is the ranking (returned, and written as CSV with a plot and a report).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, no_progress
from scelmo_desktop.core.data.io import require_obs_column, select_expression
from scelmo_desktop.core.embedding.alignment import align_expression
from scelmo_desktop.core.embedding.gene_table import GeneTable
from scelmo_desktop.core.settings import PipelineSettings
from scelmo_desktop.core.tasks.treatment import in_silico_treatment, top_candidates
from scelmo_desktop.core.workflows.common import device_for, task_record, write_task_files
from scelmo_desktop.core.workflows.gene_table import gene_table_for
from scelmo_desktop.core.workflows.report import treatment_png


@dataclass
class TreatmentOutcome:
    """What :func:`treat` made: the candidate ranking, the run record and, with ``out``, the files."""

    ranking: pd.DataFrame  # one row per candidate, ranked by mean Δ cosine, with p and q
    record: dict
    files: dict[str, Path] = field(default_factory=dict)


def treat(
    adata,
    *,
    condition_key: str,
    control: str,
    disease: str,
    settings: PipelineSettings,
    llm,
    embedder,
    store,
    candidates: list[str] | None = None,
    table: GeneTable | None = None,
    device: str = "auto",
    data_name: str = "",
    out: str | Path | None = None,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> TreatmentOutcome:
    """Rank knock-outs (or ``settings.scale``-fold changes) of ``candidates`` (default: the
    ``settings.n_candidates`` genes most up in ``disease``) by how far they move held-out disease cells towards
    control, over ``settings.repeats`` seeds, each adaptor trained for ``settings.treatment_epochs``."""
    require_obs_column(adata, condition_key, "condition")
    expression = select_expression(adata, settings.layer, input_kind=settings.input_kind)
    conditions = adata.obs[condition_key].astype(str).to_numpy()
    candidates = (
        list(candidates)
        if candidates
        else top_candidates(expression, conditions, control=control, disease=disease, n=settings.n_candidates)
    )
    described = []
    if table is None:
        table, described = gene_table_for(
            [expression],
            settings=settings,
            llm=llm,
            store=store,
            embedder=embedder,
            extra_genes=candidates,
            progress=progress,
            cancel=cancel,
        )
    alignment = align_expression(table, expression, settings.symbol_column)
    device = device_for(device)
    result = in_silico_treatment(
        expression,
        alignment,
        conditions,
        control=control,
        disease=disease,
        candidates=candidates,
        seeds=tuple(range(settings.seed, settings.seed + settings.repeats)),
        scale=settings.scale,
        epochs=settings.treatment_epochs,
        device=device,
        progress=progress,
        cancel=cancel,
    )
    record = task_record(
        settings=settings,
        llm=llm,
        embedder=embedder,
        described=described,
        data=data_name,
        input=expression.input_kind.as_dict(),
        condition_key=condition_key,
        device=device,
        genes_with_vector=int(alignment.matched.sum()),
        n_genes=alignment.n_genes,
        **result.settings,
        cs0_per_seed=result.cs0,
    )
    outcome = TreatmentOutcome(ranking=result.table, record=record)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        figure = treatment_png(result.table, out / "treatment_top10.png")
        outcome.files = write_task_files(
            out,
            name="treatment",
            tables={"treatment_ranking.csv": result.table},
            figures=[figure],
            record=record,
            title="in-silico treatment",
            intro=(
                f"Knock-out of each candidate in held-out '{disease}' cells; Δ = change of the cosine similarity "
                f"between mean '{control}' and mean '{disease}' adaptor embeddings (positive: towards control). "
                "p: against non-candidate genes of matched expression (see docs/method.md)."
            ),
        )
    return outcome
