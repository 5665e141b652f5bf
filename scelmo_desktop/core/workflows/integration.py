"""Batch-effect correction as every door runs it: validate the columns, build the gene table, embed, correct
and score (:func:`scelmo_desktop.core.tasks.integration.run_integration`), record, write; and the run's own step
for several samples (:func:`integrate_samples`).

AnnData keys written: ``obsm['X_scelmo']``, ``obsm[key_added]`` (default ``'X_scelmo_integrated'``, label-free),
``obsm['X_scelmo_baseline_pca']``, ``obsm['X_pca_harmony']``, with labels ``obsm['X_scelmo_adaptor_integrated']``,
and ``uns['scelmo']['integration']`` (metrics and provenance).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, no_progress
from scelmo_desktop.core._infra.provenance import h5ad_safe, now_iso
from scelmo_desktop.core.data.io import select_expression, write_h5ad
from scelmo_desktop.core.data.samples import SAMPLE_KEY
from scelmo_desktop.core.embedding.alignment import align_expression
from scelmo_desktop.core.embedding.gene_table import GeneTable
from scelmo_desktop.core.keys import INTEGRATED_KEY, SCELMO_KEY, UNS_KEY, add_record
from scelmo_desktop.core.settings import PipelineSettings
from scelmo_desktop.core.tasks.batch_metrics import ilisi, label_free_removal
from scelmo_desktop.core.tasks.integration import (
    DEFAULT_METHOD,
    MIN_SAMPLE_CELLS,
    check_batches,
    check_columns,
    integrate_embedding,
    method_settings,
    run_integration,
    small_samples,
)
from scelmo_desktop.core.workflows.common import device_for, task_record, write_task_files
from scelmo_desktop.core.workflows.gene_table import gene_table_for
from scelmo_desktop.core.workflows.report import metric_bars_png

INTRO = (
    "Every metric is computed on all cells together and lies in [0, 1], higher is better; overall = 0.6 S_bio + "
    "0.4 S_batch. The default (scELMo, samples integrated) uses no labels. The scELMo adaptor is trained on the "
    "labels (like scANVI) and scored on the same cells, so its bio scores are optimistic."
)
INTRO_NO_LABELS = (
    "No cell-type labels were given, so only the scores that need none are shown: iLISI (how evenly the batches "
    "mix around each cell) and PCR (the share of the batch variance removed against the scanpy-route PCA), each "
    "in [0, 1], higher is better. Bio conservation needs labels (--label-key)."
)


def score_columns(metrics: pd.DataFrame) -> tuple[list[str], str]:
    """The summary scores an integration table holds and their title: bio, batch and overall with labels, the
    label-free batch scores without."""
    if "overall" in metrics:
        return ["S_bio", "S_batch", "overall"], "bio conservation, batch removal, overall"
    return ["ilisi", "pcr_batch"], "batch removal (no labels: iLISI, PCR)"


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
    label_key: str | None = None,
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
    """Integrate the batches of ``obs[batch_key]`` with no labels (``obsm[key_added]``) and score it beside the
    uncorrected scELMo space, the scanpy-route PCA and Harmony on PCA; with ``label_key``, bio conservation is
    scored too and the labelled adaptor trained (``settings.epochs``, ``settings.adversarial_weight``). With
    ``out``, write the metrics CSV, a bar chart, the h5ad, the report section and ``provenance.json`` there."""
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
        columns, title = score_columns(shown)
        figure = metric_bars_png(
            shown, columns, out / "integration_scores.png", title=f"Integration (scIB-style): {title}"
        )
        result.files = write_task_files(
            out,
            name="integration",
            tables={"integration_metrics.csv": shown},
            figures=[figure],
            record=record,
            title="batch-effect correction",
            intro=f"Batches: obs['{batch_key}'], labels: "
            + (f"obs['{label_key}']. " + INTRO if label_key else "none. " + INTRO_NO_LABELS),
        )
        result.files["h5ad"] = write_h5ad(adata, out / "integration.h5ad")
    return result


def integrate_samples(
    adata,
    expression,
    alignment,
    *,
    batch_key: str,
    seed: int = 0,
    key_added: str = INTEGRATED_KEY,
    cancel: CancelFlag | None = None,
) -> dict | None:
    """The run's integration of several samples: the label-free default
    (:func:`~scelmo_desktop.core.tasks.integration.integrate_embedding`) into ``obsm[key_added]``, scored without
    labels against the uncorrected ``obsm['X_scelmo']`` (iLISI before and after, the share of the batch variance
    removed) and recorded in ``uns['scelmo']['integration']``. Returns the record, or None when ``obs[batch_key]``
    is absent, holds one sample, or holds a sample too small to integrate (:func:`samples_not_integrated` says why;
    an earlier integrated embedding is dropped)."""
    adata.obsm.pop(key_added, None)
    if samples_not_integrated(adata, batch_key) is not None:
        return None
    batches = check_batches(adata, batch_key)
    space = integrate_embedding(expression.matrix, alignment.matrix, batches, seed=seed, cancel=cancel)
    adata.obsm[key_added] = space.embedding
    before = adata.obsm[SCELMO_KEY]
    corrected = label_free_removal(adata.obsm[key_added], batches, X_unintegrated=before)
    counts = adata.obs[batch_key].astype(str).value_counts().sort_index()
    record = {
        "method": DEFAULT_METHOD,
        **method_settings(adata.n_obs),
        **space.record(),
        "batch_key": batch_key,
        "samples": {str(k): int(v) for k, v in counts.items()},
        "integrated_key": key_added,
        "seed": seed,
        "ilisi_before": round(ilisi(before, batches), 4),
        "ilisi_after": round(corrected["ilisi"], 4),
        "batch_variance_removed": round(corrected["pcr_batch"], 4),
        "created_at": now_iso(),
    }
    add_record(adata, "integration", h5ad_safe(record))
    return record


def samples_not_integrated(adata, batch_key: str) -> str | None:
    """Why the run does not integrate the samples of ``obs[batch_key]`` by itself, or None when it does."""
    if batch_key not in adata.obs:
        return f"no obs['{batch_key}'] column: one sample"
    batches = adata.obs[batch_key].astype(str).to_numpy()
    if len(np.unique(batches)) < 2:
        return f"obs['{batch_key}'] holds one sample"
    small = small_samples(batches)
    if small:
        listed = ", ".join(f"{name} ({n})" for name, n in sorted(small.items(), key=lambda item: item[1])[:5])
        more = f" and {len(small) - 5} more" if len(small) > 5 else ""
        return (
            f"{len(small)} of the {len(np.unique(batches))} samples in obs['{batch_key}'] hold"
            f"{'s' if len(small) == 1 else ''} fewer than {MIN_SAMPLE_CELLS} cells ({listed}{more}), too few to "
            "estimate a sample's gene scaling; the analysis uses the unintegrated space. To integrate anyway, run the "
            f"integration task with batch key '{batch_key}', or merge the small samples into a coarser column"
        )
    return None


def samples_line(record: dict, adata) -> str | None:
    """:func:`integration_summary` of a run's integration ``record`` when ``adata`` holds several samples
    (integrated, or left unintegrated and why); None for one sample, where there is nothing to say."""
    several = SAMPLE_KEY in adata.obs and adata.obs[SAMPLE_KEY].astype(str).nunique() > 1
    return integration_summary(record) if "samples" in record or several else None


def integration_summary(record: dict) -> str:
    """One line for every door: which samples :func:`integrate_samples` integrated and how well (no labels
    needed), or why none were."""
    if "samples" not in record:
        return f"samples integrated: no ({record.get('reason', 'not run')})"
    samples = ", ".join(f"{name} ({n:,} cells)" for name, n in record["samples"].items())
    return (
        f"samples integrated: {samples} into obsm['{record['integrated_key']}'] ({record['method']}); batch mixing "
        f"(iLISI) {record['ilisi_before']:.2f} -> {record['ilisi_after']:.2f}, batch variance removed "
        f"{100 * record['batch_variance_removed']:.0f}%; {_shared_note(record)}clusters, UMAP, markers and names use "
        "the integrated space"
    )


def _shared_note(record: dict) -> str:
    """How the samples' scaling was matched: on how many clusters, how many of them every sample shares."""
    if "shared_clusters" not in record:
        return ""
    return (
        f"each sample scaled as if it held the pooled make-up of {record['first_pass_clusters']} clusters, "
        f"{record['shared_clusters']} of them shared by every sample ({100 * record['cells_in_shared_clusters']:.0f}% "
        "of the cells); "
    )
