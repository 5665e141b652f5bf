"""Batch-effect correction as every door runs it: validate the columns, build the gene table, embed, correct
and score (:func:`scelmo_desktop.core.tasks.integration.run_integration`), record, write.

AnnData keys written: ``obsm['X_scelmo']``, ``obsm[key_added]`` (default ``'X_scelmo_integrated'``),
``obsm['X_scelmo_baseline_pca']``, ``obsm['X_pca_harmony']`` and ``uns['scelmo']['integration']`` (metrics and provenance).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, no_progress
from scelmo_desktop.core._infra.provenance import h5ad_safe
from scelmo_desktop.core.data.io import select_expression, write_h5ad
from scelmo_desktop.core.embedding.alignment import align_expression
from scelmo_desktop.core.embedding.gene_table import GeneTable
from scelmo_desktop.core.keys import INTEGRATED_KEY, UNS_KEY, add_record
from scelmo_desktop.core.settings import PipelineSettings
from scelmo_desktop.core.tasks.integration import check_columns, run_integration
from scelmo_desktop.core.workflows.common import device_for, task_record, write_task_files
from scelmo_desktop.core.workflows.gene_table import gene_table_for
from scelmo_desktop.core.workflows.report import metric_bars_png

INTRO = (
    "Every metric is computed on all cells together and lies in [0, 1], higher is better; overall = 0.6 S_bio + "
    "0.4 S_batch. The scELMo adaptor is trained on the labels (like scANVI) and scored on the same cells, so "
    "its bio scores are optimistic."
)


@dataclass
class IntegrationResult:
    """What :func:`integrate` made: the metrics per method, the run record and, with ``out``, the files."""

    metrics: pd.DataFrame  # one row per method: scIB-style scores, S_bio, S_batch, overall
    record: dict
    files: dict[str, Path] = field(default_factory=dict)


def integrate(
    adata,
    *,
    batch_key: str,
    label_key: str,
    settings: PipelineSettings,
    llm,
    embedder,
    store,
    table: GeneTable | None = None,
    device: str = "auto",
    key_added: str = INTEGRATED_KEY,
    data_name: str = "",
    out: str | Path | None = None,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> IntegrationResult:
    """Integrate the batches of ``obs[batch_key]`` keeping ``obs[label_key]`` apart; with ``out``, write the
    metrics CSV, a bar chart, the h5ad, the report section and ``provenance.json`` there. The adaptor trains for
    ``settings.epochs`` with ``settings.adversarial_weight``."""
    check_columns(adata, batch_key, label_key)  # before any model work
    expression = select_expression(adata, settings.layer, input_kind=settings.input_kind)
    described = []
    if table is None:
        table, described = gene_table_for(
            [expression], settings=settings, llm=llm, store=store, embedder=embedder, progress=progress, cancel=cancel
        )
    alignment = align_expression(table, expression, settings.symbol_column)
    device = device_for(device)
    metrics = run_integration(
        adata,
        expression,
        alignment,
        batch_key=batch_key,
        label_key=label_key,
        seed=settings.seed,
        device=device,
        epochs=settings.epochs,
        adversarial_weight=settings.adversarial_weight,
        conditioning=settings.conditioning,
        integrated_key=key_added,
        progress=progress,
        cancel=cancel,
    )
    shown = metrics.drop(columns=["embedding"])
    record = task_record(
        settings=settings,
        llm=llm,
        embedder=embedder,
        described=described,
        data=data_name,
        input=expression.input_kind.as_dict(),
        device=device,
        genes_with_vector=int(alignment.matched.sum()),
        n_genes=alignment.n_genes,
        **adata.uns[UNS_KEY]["integration"],
        metrics=shown.to_dict("records"),
    )
    add_record(adata, "integration", h5ad_safe(record))
    result = IntegrationResult(metrics=shown, record=record)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        figure = metric_bars_png(
            shown,
            ["S_bio", "S_batch", "overall"],
            out / "integration_scores.png",
            title="Integration (scIB-style): bio conservation, batch removal, overall",
        )
        result.files = write_task_files(
            out,
            name="integration",
            tables={"integration_metrics.csv": shown},
            figures=[figure],
            record=record,
            title="batch-effect correction",
            intro=f"Batches: obs['{batch_key}'], labels: obs['{label_key}']. " + INTRO,
        )
        result.files["h5ad"] = write_h5ad(adata, out / "integration.h5ad")
    return result
