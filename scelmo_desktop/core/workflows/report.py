"""Figures and the self-contained HTML report of a pipeline run (images are embedded as base64)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import pandas as pd

from scelmo_desktop.core._infra.atomic import write_bytes_atomic, write_text_atomic
from scelmo_desktop.core.workflows.figures import confusion_figure, metric_bars_figure, save_png, treatment_figure


def umap_png(adata, color: str, title: str) -> bytes:
    """PNG bytes of scanpy's UMAP coloured by ``obs[color]`` (scanpy stores a categorical column's colours in
    ``uns['<color>_colors']``). Unless a backend was chosen (a notebook's inline one), matplotlib is set to Agg
    first: workers draw off the main thread, where an interactive backend (Qt, Tk) fails."""
    import matplotlib

    chosen = getattr(matplotlib.rcParams, "_get_backend_or_none", lambda: None)()
    if chosen is None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import scanpy as sc

    fig = sc.pl.umap(adata, color=color, title=title, show=False, return_fig=True, frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def save_figures(adata, out_dir: Path, colors: dict[str, str]) -> dict[str, Path]:
    """Write one UMAP PNG per ``{file stem: obs column}``; returns the written paths."""
    written = {}
    for stem, column in colors.items():
        written[stem] = write_bytes_atomic(
            out_dir / f"{stem}.png", umap_png(adata, column, f"UMAP (scELMo) — {column}")
        )
    return written


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0, classes="grid", escape=True)


def _kv(mapping: dict) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(v if isinstance(v, str) else json.dumps(v))}</td></tr>"
        for k, v in mapping.items()
    )
    return f"<table class='kv'>{rows}</table>"


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;color:#222;padding:0 1em}
h1{font-size:1.6em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.9em} td,th{padding:.25em .6em;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
table.grid th{background:#f4f6f8} .kv th{width:14em;color:#555;font-weight:500}
.figs img{max-width:48%;margin-right:1%} .note{color:#666;font-size:.9em} .desc td{max-width:800px}
"""


def _images(figures: dict[str, Path]) -> str:
    return "".join(
        f"<img alt='{html.escape(stem)}' src='data:image/png;base64,{base64.b64encode(Path(p).read_bytes()).decode()}'>"
        for stem, p in figures.items()
    )


def _qc_section(qc) -> str:
    """Quality control as the run did it: the table per sample and its plots (or why it did not run)."""
    if qc is None:
        return ""
    figures = {k: v for k, v in qc.files.items() if k.startswith("qc_") and str(v).endswith(".png")}
    return (
        f"<h2>Quality control</h2><p>{qc.n_kept:,} of {len(qc.keep):,} cells kept ({html.escape(_rule_text(qc.record.get('rule', '')))}).</p>"
        f"{_table(qc.table)}<div class='figs'>{_images(figures)}</div>"
        + "".join(f"<p class='note'>{html.escape(n)}</p>" for n in qc.skipped)
    )


def _rule_text(rule) -> str:
    """The QC rule in words: ``name: value`` parts for a record's dict of thresholds."""
    if isinstance(rule, dict):
        return "; ".join(f"{name.replace('_', ' ')}: {value}" for name, value in rule.items())
    return str(rule)


def _input_section(intake: dict | None, species_note: str, folder: Path) -> str:
    """What was opened and done to it (cells called of the barcodes, features set aside, the join), as the CLI
    prints it, with the barcode-rank plot of each sample whose cells were called (``barcode_rank_<sample>.png`` in
    ``folder``), and the species note; empty when there is neither (an AnnData given in memory)."""
    from scelmo_desktop.core.workflows.intake import intake_lines

    samples = (intake or {}).get("samples")
    samples = samples if isinstance(samples, dict) else {}
    merge = (intake or {}).get("merge")
    lines = intake_lines(samples, merge if isinstance(merge, dict) else None) if samples else []
    if species_note and species_note != "none":
        lines.append(f"note: {species_note}")
    if not lines:
        return ""
    called = [name for name, record in samples.items() if (record.get("cell_calling") or {}).get("done")]
    plots = {f"barcode rank {name}": folder / f"barcode_rank_{name}.png" for name in called}
    plots = {stem: path for stem, path in plots.items() if path.is_file()}
    figures = f"<div class='figs'>{_images(plots)}</div>" if plots else ""
    return "<h2>Input</h2>" + "".join(f"<p>{html.escape(line)}</p>" for line in lines) + figures


def _metrics_section(metrics: pd.DataFrame) -> str:
    """The clustering table with a note on how it was made: the sweep and its scores only when labels were given,
    the baselines only when they were run."""
    if "nmi" in metrics.columns:
        how = (
            "Leiden sweep over resolutions 0.2–2.0 on a 15-NN graph; NMI and ARI at the resolution of best NMI; "
            "label silhouette rescaled to (s+1)/2 (scib-metrics protocol)."
        )
    else:
        how = "Leiden on a 15-NN graph at the resolution shown; no label column was given, so there are no scores."
    methods = set(metrics["method"]) if "method" in metrics.columns else set()
    if len(methods) > 1:
        how += " Baselines: PCA (scaled, 50 PCs) and a random gene table given to the same genes as scELMo."
    table = _table(metrics) if len(metrics) else "<p>No clustering was computed.</p>"
    return f"<h2>Clustering</h2><p class='note'>{html.escape(how)}</p>{table}"


def _cluster_markers_section(markers, shown: int = 5) -> str:
    """Each cluster's first marker genes passing the filter, with fold change and the share of cells expressing
    them in and out of the cluster (every gene of every cluster is in markers.csv)."""
    if markers is None:
        return ""
    rows = []
    passing = markers.table[markers.table["passes_filter"]]
    for group, genes in passing.groupby("group", observed=False, sort=False):
        cells = ", ".join(
            f"{g.gene} ({g.log2_fold_change:.1f}; {100 * g.pct_in_group:.0f}% vs {100 * g.pct_out_group:.0f}%)"
            for g in genes.head(shown).itertuples()
        )
        rows.append(
            {
                "cluster": str(group),
                f"top {shown} markers (log2 fold change; % expressing in vs out)": cells or "none pass the filter",
            }
        )
    rule = markers.uns.get("params", {}).get("filter", {})
    return (
        f"<h2>Marker genes</h2><p class='note'>scanpy's rank_genes_groups ({html.escape(markers.method)}, each "
        f"cluster against the rest, genes in at least {markers.uns.get('params', {}).get('min_cells', 3)} cells), "
        f"filtered as filter_rank_genes_groups does ({html.escape(json.dumps(rule))}); every gene of every cluster "
        f"is in markers.csv.</p>{_table(pd.DataFrame(rows))}"
    )


def _cell_types_section(naming, splits: dict | None = None) -> str:
    """Each cluster's name, Cell Ontology id and confidence, the markers behind the call, the type's markers absent
    or down in the cluster, and the runner-ups (every figure is in cell_types.csv); first, the clusters the run
    split because their cells mixed two lineages (``splits``)."""
    if naming is None:
        return ""
    from scelmo_desktop.core.workflows.cluster import split_summary

    split_note = "".join(f" {html.escape(line)}." for line in split_summary(splits or {}))
    explained = any(call.explanation for call in naming.groups.values())
    rows = []
    for call in naming.groups.values():
        rows.append(
            {
                "cluster": call.group,
                "cell type": call.name
                + (" (renamed by hand)" if call.edited else "")
                + (f" (may mix {call.mixed_parts()})" if call.mixed else "")
                + (f" ({call.within_parent()})" if call.within else "")
                + (" (the LLM's choice among the candidates)" if call.chosen_by == "llm" else ""),
                "Cell Ontology": call.term_id,
                "confidence": f"{call.confidence:.2f}",
                "markers for (log2 fold change; % in vs out)": ", ".join(
                    f"{m['gene']} ({m['log2_fold_change']:.1f}; {100 * m['pct_in_group']:.0f}% vs "
                    f"{100 * m['pct_out_group']:.0f}%)"
                    for m in call.supporting[:5]
                ),
                "type's markers absent or down": ", ".join(m["gene"] for m in call.against[:5]),
                "runner-ups (score; behind by)": "; ".join(
                    f"{r['name']} ({r['score']:.3f}; {r['behind_by']:.3f})" for r in call.runners_up
                ),
                **(
                    {"local LLM's reason [its checks' flags]": _explanation_cell(call.explanation)} if explained else {}
                ),
            }
        )
    return (
        "<h2>Cell types</h2><p class='note'>Each cluster named from its marker genes and the curated marker "
        f"knowledge, with no reference and no candidate list, among {naming.n_candidates:,} Cell Ontology types "
        f"(tissue hint: {html.escape(naming.tissue)}). A type scores by how much more often the cluster expresses "
        "its curated markers than the other cells do; the confidence is low when a type of another lineage scores "
        f"nearly as well. Check the markers before relying on a name.{split_note}</p>"
        f"{_table(pd.DataFrame(rows))}"
    )


def _explanation_cell(explanation: dict) -> str:
    if not explanation:
        return ""
    flags = f" [{'; '.join(explanation['flags'])}]" if explanation["flags"] else ""
    return " ".join(explanation["reason"].split())[:400] + flags


def write_report(
    path: Path,
    *,
    record: dict,
    metrics: pd.DataFrame,
    figures: dict[str, Path],
    descriptions: pd.DataFrame,
    qc=None,
    markers=None,
    naming=None,
    intake: dict | None = None,
) -> Path:
    """Write the self-contained HTML report of a pipeline run to ``path``: what was opened (``intake``: the
    ``uns['scelmo']['intake']`` record), quality control (``qc``: the run's QCOutcome), metrics, embedded figures, cell-type names (``naming``) and marker genes (``markers``: the run's
    Markers), coverage, provenance,
    descriptions and package versions; returns the path."""
    images = _images(figures)
    coverage = record.get("coverage", {})
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>scELMo report — {html.escape(record.get("data", ""))}</title>
<style>{STYLE}</style></head><body>
<h1>scELMo Desktop report</h1>
<p class="note">Data: <b>{html.escape(record.get("data", ""))}</b> · created {html.escape(record.get("created_at", ""))} ·
everything computed on this machine with local models, no network.</p>
{_input_section(intake, record.get("species_note", "none"), Path(path).parent)}
{_qc_section(qc)}
{_integration_section(record.get("integration") or {})}
{_metrics_section(metrics)}
<h2>Figures</h2><div class="figs">{images}</div>
{_cell_types_section(naming, record.get("split_clusters") or {})}
{_cluster_markers_section(markers)}
<h2>Description coverage</h2>
<p>LLM calls: {record.get("llm_calls", 0)} (cached: {record.get("llm_cached", 0)}). Genes described:
{record.get("n_described", 0)} of {coverage.get("n_genes", 0)}; genes with an embedding: {coverage.get("n_matched", 0)}
({100 * coverage.get("fraction_matched", 0):.1f}%), covering {100 * coverage.get("fraction_expression_covered", 0):.1f}% of
total expression. Genes without a description get zero rows.</p>
{_kv(coverage)}
<h2>Models and settings (provenance)</h2>
{_kv({k: record[k] for k in ("description_mode", "quality_flags", "fell_back_to_facts", "hand_edits", "knowledge", "llm", "embedder", "prompt_template", "decoding", "seed", "settings", "timings_s") if k in record})}
<h2>Descriptions (first {len(descriptions)})</h2>
<p class="note">Written by the local LLM exactly as stored. Small models write poor or invented text; check before relying on it.</p>
<div class="desc">{_table(descriptions)}</div>
<h2>Package versions</h2>{_kv(record.get("versions", {}))}
</body></html>"""
    return write_text_atomic(path, body)


def _integration_section(record: dict) -> str:
    """Which samples were integrated, by what, and how well (scores that need no labels); or, for several samples
    left unintegrated, why."""
    if "samples" not in record:
        if record.get("n_samples", 1) > 1:
            return f"<h2>Samples integrated</h2><p>No: {html.escape(str(record.get('reason', 'not run')))}.</p>"
        return ""
    samples = pd.DataFrame([{"sample": k, "cells": v} for k, v in record["samples"].items()])
    return (
        f"<h2>Samples integrated</h2><p>{html.escape(record['method'])}, with no labels, into "
        f"<code>obsm['{html.escape(record['integrated_key'])}']</code>; the clusters, UMAP, markers and names "
        f"below are computed on it. Batch mixing (iLISI, 0 = each neighbourhood holds one sample, 1 = all "
        f"equally): {record['ilisi_before']:.2f} before, {record['ilisi_after']:.2f} after; share of the "
        f"variance explained by sample removed: {100 * record['batch_variance_removed']:.0f}%.</p>{_table(samples)}"
    )


def _markers_section(markers) -> str:
    """Text mode: the genes whose descriptions drove each cell type's score (users should check them)."""
    if not markers:
        return ""
    markers = json.loads(markers) if isinstance(markers, str) else markers
    frame = pd.DataFrame(
        [{"cell type": t, "marker genes (closest descriptions first)": ", ".join(g)} for t, g in markers.items()]
    )
    return f"<h2>Marker genes chosen from the descriptions</h2>{_table(frame)}"


def write_annotation_report(path: Path, *, record: dict, counts: dict, confusion: Path | None) -> Path:
    """A self-contained HTML page for one annotation run: metrics, per-class F1, confusion matrix, provenance."""
    metrics = record.get("metrics", {})
    per_class = metrics.get("per_class_f1", {})
    per_class = json.loads(per_class) if isinstance(per_class, str) else per_class
    summary = pd.DataFrame(
        [{"label": label, "cells": int(n), "F1": per_class.get(label)} for label, n in counts.items()]
    )
    image = (
        f"<img alt='confusion matrix' src='data:image/png;base64,{base64.b64encode(confusion.read_bytes()).decode()}'>"
        if confusion is not None
        else "<p>No true labels in the query: no confusion matrix.</p>"
    )
    headline = (
        f"accuracy {metrics['accuracy']:.3f} · macro-F1 {metrics['macro_f1']:.3f}"
        if metrics
        else "no true labels in the query"
    )
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>scELMo annotation</title><style>{STYLE}</style>
</head><body><h1>scELMo annotation — {html.escape(str(record.get("method", "")))}</h1>
<p class="note">{html.escape(headline)} · created {html.escape(str(record.get("created_at", "")))} · local models only.</p>
<h2>Predicted labels</h2>{_table(summary)}
<h2>Confusion matrix</h2><div class="figs">{image}</div>{_markers_section(record.get("markers"))}
<h2>Provenance</h2>{_kv({k: v for k, v in record.items() if k not in ("metrics", "versions", "markers")})}
<h2>Package versions</h2>{_kv(record.get("versions", {}))}
</body></html>"""
    return write_text_atomic(path, body)


def confusion_png(truth, predicted, path: Path, *, title: str = "") -> Path:
    """Row-normalised confusion matrix (true label x predicted label) as a PNG."""
    return save_png(confusion_figure(truth, predicted, title=title), path)


def metric_bars_png(
    frame: pd.DataFrame, columns: list[str], path: Path, *, label: str = "method", title: str = ""
) -> Path:
    """Grouped horizontal bars (one group per method, one bar per metric) as a PNG."""
    return save_png(metric_bars_figure(frame, columns, label=label, title=title), path)


def treatment_png(table: pd.DataFrame, path: Path, *, top: int = 10) -> Path:
    """The top knock-outs' mean Δ with s.d. error bars and p-values, as a PNG."""
    return save_png(treatment_figure(table, top=top), path)


def write_task_report(
    path: Path, *, title: str, intro: str, tables: dict[str, pd.DataFrame], figures: list[Path], record: dict
) -> Path:
    """A self-contained HTML section report for one analysis (integration, treatment, perturbation)."""
    images = "".join(
        f"<img alt='{html.escape(Path(p).stem)}' src='data:image/png;base64,{base64.b64encode(Path(p).read_bytes()).decode()}'>"
        for p in figures
    )
    sections = "".join(f"<h2>{html.escape(name)}</h2>{_table(frame)}" for name, frame in tables.items())
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>scELMo — {html.escape(title)}</title>
<style>{STYLE}</style></head><body><h1>scELMo — {html.escape(title)}</h1>
<p class="note">{html.escape(intro)} Computed on this machine with local models; no network.</p>
{sections}<h2>Figures</h2><div class="figs">{images}</div>
<h2>Provenance</h2>{_kv({k: v for k, v in record.items() if k != "versions"})}
<h2>Package versions</h2>{_kv(record.get("versions", {}))}
</body></html>"""
    return write_text_atomic(path, body)
