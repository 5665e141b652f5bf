"""Perturbation modelling as every door runs it: observed shifts, a gene table with every perturbed gene,
training on seen perturbations and scoring the unseen ones
(:func:`scelmo_desktop.core.tasks.perturbation.run_perturbation`), record, write. Also the simulated
Perturb-seq example (the CLI's ``simulate-perturbseq`` and the app's "Use simulated example").

Writes no AnnData key: the result is the metrics table (returned, and written as CSV with a plot and a report).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, no_progress
from scelmo_desktop.core.data.gene_selection import select_genes
from scelmo_desktop.core.data.io import require_obs_column, select_expression
from scelmo_desktop.core.data.simulate import simulate_perturbseq
from scelmo_desktop.core.embedding.alignment import align_expression
from scelmo_desktop.core.embedding.gene_table import GeneTable
from scelmo_desktop.core.settings import PipelineSettings
from scelmo_desktop.core.tasks.perturbation import perturbation_shifts, run_perturbation
from scelmo_desktop.core.workflows.common import device_for, task_record, write_task_files
from scelmo_desktop.core.workflows.gene_table import gene_table_for
from scelmo_desktop.core.workflows.report import metric_bars_png

PEARSON_COLUMNS = ["pearson_all", "pearson_top20", "pearson_downstream_top20"]


@dataclass
class PerturbationOutcome:
    """What :func:`perturb` made: the metrics per predictor on held-out perturbations, the record and files."""

    metrics: pd.DataFrame  # one row per predictor on the held-out perturbations
    record: dict
    files: dict[str, Path] = field(default_factory=dict)


def perturb(
    adata,
    *,
    perturbation_key: str,
    control: str,
    settings: PipelineSettings,
    llm,
    embedder,
    store,
    table: GeneTable | None = None,
    device: str = "auto",
    data_name: str = "",
    out: str | Path | None = None,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> PerturbationOutcome:
    """Predict the expression shift of perturbations never seen in training (``obs[perturbation_key]``: the
    ``control`` label, ``GENE`` or ``GENE1+GENE2``) from the perturbed genes' vectors."""
    require_obs_column(adata, perturbation_key, "perturbation")
    expression = select_expression(adata, settings.layer, input_kind=settings.input_kind)
    shifts = perturbation_shifts(expression, adata.obs[perturbation_key], control=control)
    described = []
    if table is None:
        perturbed = sorted({g for genes in shifts.genes for g in genes})
        table, described = gene_table_for(
            [expression],
            settings=settings,
            llm=llm,
            store=store,
            embedder=embedder,
            extra_genes=perturbed,
            progress=progress,
            cancel=cancel,
        )
    alignment = align_expression(table, expression, settings.symbol_column)
    device = device_for(device)
    metrics, details = run_perturbation(
        shifts,
        table.as_dict(),
        alignment.matrix,
        seed=settings.seed,
        test_fraction=settings.test_fraction,
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
        device=device,
        perturbation_key=perturbation_key,
        genes_with_vector=int(alignment.matched.sum()),
        n_genes=alignment.n_genes,
        **details,
    )
    outcome = PerturbationOutcome(metrics=metrics, record=record)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        figure = metric_bars_png(
            metrics.fillna(0.0),
            PEARSON_COLUMNS,
            out / "perturbation_pearson.png",
            title="Unseen perturbations: Pearson of predicted vs observed shift",
        )
        outcome.files = write_task_files(
            out,
            name="perturbation",
            tables={"perturbation_metrics.csv": metrics},
            figures=[figure],
            record=record,
            title="perturbation modelling",
            intro=(
                f"{details['n_train']} perturbations trained, {details['n_test']} held out (their genes never seen "
                "in training). Lower MSE and higher Pearson are better; 'no change' has no Pearson (constant "
                "prediction)."
            ),
        )
    return outcome


def perturbseq_example(
    base,
    *,
    n_genes: int,
    settings: PipelineSettings,
    llm,
    embedder,
    store,
    n_single: int = 60,
    n_double: int = 20,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
):
    """A simulated Perturb-seq over the ``n_genes`` most variable genes of ``base``, wired by their gene-table
    vectors (only those genes are described: the table is the network's wiring)."""
    expression = select_expression(base, settings.layer, input_kind=settings.input_kind)
    genes = [expression.var_names[i] for i in sorted(select_genes(expression.matrix, n_genes))]
    table, _ = gene_table_for(
        [],
        settings=settings.replace(max_genes=0),
        llm=llm,
        store=store,
        embedder=embedder,
        extra_genes=genes,
        progress=progress,
        cancel=cancel,
    )
    lookup = table.as_dict()
    genes = [g for g in genes if g in lookup]
    return simulate_perturbseq(
        genes, np.vstack([lookup[g] for g in genes]), n_single=n_single, n_double=n_double, seed=settings.seed
    )
