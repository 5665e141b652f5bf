"""CLI commands for the scELMo tasks beyond clustering and annotation: integration, in-silico treatment,
perturbation modelling, and the simulators that make data for them.

Each analysis command writes into its ``--out`` folder: a metrics/ranking CSV, a PNG, an HTML report section,
and ``provenance.json`` (models with hashes, description mode, seeds, package versions).
"""

from __future__ import annotations

import json
import time
from pathlib import Path



def add_parsers(sub, *, add_data_options, add_model_options) -> None:
    integrate = sub.add_parser("integrate", help="batch-effect correction: scELMo zero-shot and fine-tuned, PCA, "
                                                 "Harmony, scored with scIB-style metrics")
    integrate.add_argument("data", type=Path)
    integrate.add_argument("--batch-key", required=True, help="obs column with the batch of each cell")
    integrate.add_argument("--label-key", required=True, help="obs column with cell types (bio conservation)")
    integrate.add_argument("--epochs", type=int, default=30, help="adaptor epochs (default 30)")
    integrate.add_argument("--adversarial-weight", type=float, default=1.0,
                           help="weight of the batch classifier behind gradient reversal (default 1)")
    integrate.add_argument("--out", type=Path, required=True, help="output folder")

    treatment = sub.add_parser("treatment", help="in-silico treatment: which knock-outs move disease towards control")
    treatment.add_argument("data", type=Path)
    treatment.add_argument("--condition-key", required=True, help="obs column with the condition of each cell")
    treatment.add_argument("--control", required=True, help="the control condition's value")
    treatment.add_argument("--disease", required=True, help="the disease condition's value")
    treatment.add_argument("--candidates", help="comma-separated genes (default: the most up in disease)")
    treatment.add_argument("--n-candidates", type=int, default=20, help="default candidates: top N (default 20)")
    treatment.add_argument("--repeats", type=int, default=3, help="seeds (new split and adaptor each; default 3)")
    treatment.add_argument("--scale", type=float, default=0.0, help="multiply the gene by this (0 = knock-out)")
    treatment.add_argument("--epochs", type=int, default=40, help="adaptor epochs (default 40, as the paper)")
    treatment.add_argument("--out", type=Path, required=True, help="output folder")

    perturb = sub.add_parser("perturb", help="predict unseen perturbations' expression shifts from gene embeddings")
    perturb.add_argument("data", type=Path)
    perturb.add_argument("--perturbation-key", required=True, help="obs column: control label, GENE or GENE1+GENE2")
    perturb.add_argument("--control", required=True, help="the control label")
    perturb.add_argument("--test-fraction", type=float, default=0.25,
                         help="share of single-gene perturbations held out (with their combinations)")
    perturb.add_argument("--out", type=Path, required=True, help="output folder")

    for parser in (integrate, treatment, perturb):
        add_data_options(parser)
        add_model_options(parser)

    for name, text in (("simulate-batches", "two batches from pbmc68k_reduced with gene-specific batch effects"),
                       ("simulate-condition", "control/disease cells from pbmc68k_reduced with planted genes"),
                       ("simulate-perturbseq", "a Perturb-seq data set over real genes (see core/simulate.py)")):
        command = sub.add_parser(name, help=text)
        command.add_argument("--out", type=Path, required=True, help="output .h5ad")
        if name != "simulate-perturbseq":
            command.add_argument("--seed", type=int, default=0)
        else:
            command.add_argument("--genes", type=int, default=200, help="genes (most variable of pbmc68k_reduced)")
            command.add_argument("--singles", type=int, default=60, help="single-gene perturbations")
            command.add_argument("--doubles", type=int, default=20, help="two-gene combinations")
            command.add_argument("--mode", choices=("facts", "grounded", "llm", "auto"), default="facts",
                                 help="description mode of the gene table wiring the network (default facts: the "
                                      "same table 'scelmo perturb --mode facts' uses)")
            add_model_options(command)


def _record(session, settings, extra: dict) -> dict:
    from scelmo_desktop.core.provenance import now_iso, package_versions

    embedder = session.embedder.info() if session.embedder is not None else "none"
    return {"created_at": now_iso(), "description_mode": settings.mode, "llm": session.llm.describe(),
            "embedder": embedder, "seed": settings.seed, "settings": settings.as_dict(), **extra,
            "versions": package_versions()}


def _write_common(out: Path, record: dict) -> None:
    from scelmo_desktop.core.atomic import write_text_atomic

    write_text_atomic(out / "provenance.json", json.dumps(record, indent=2, default=str))


def _table_and_alignment(session, settings, expression, extra_genes=()):
    from scelmo_desktop.core.gene_table import align
    from scelmo_desktop.core.pipeline import data_symbols, gene_table_for

    table, described = gene_table_for([expression], settings=settings, llm=session.llm, store=session.store,
                                      embedder=session.embedder, extra_genes=extra_genes, progress=session.progress)
    alignment = align(table, expression.var_names, expression.var, settings.symbol_column,
                      symbols=data_symbols(expression, settings.symbol_column))
    calls = sum(d.n_llm_calls for d in described), sum(d.n_cached for d in described)
    print(f"LLM calls: {calls[0]} (cached: {calls[1]})  description mode: {settings.mode}  "
          f"genes with a vector: {int(alignment.matched.sum())} of {alignment.n_genes}")
    return table, alignment


def cmd_integrate(args) -> int:
    from scelmo_desktop.cli_support import open_session
    from scelmo_desktop.core.atomic import write_text_atomic
    from scelmo_desktop.core.integration import check_columns, run_integration
    from scelmo_desktop.core.io import read_data, select_expression, write_h5ad
    from scelmo_desktop.core.pipeline import h5ad_safe
    from scelmo_desktop.core.report import metric_bars_png, write_task_report

    started = time.perf_counter()
    adata = read_data(args.data)
    check_columns(adata, args.batch_key, args.label_key)  # fail before any model work
    expression = select_expression(adata, args.layer, input_kind=args.input_kind)
    with open_session(args, need_embedder=True) as session:
        settings = session.settings(args)
        _, alignment = _table_and_alignment(session, settings, expression)
        metrics = run_integration(adata, expression, alignment, batch_key=args.batch_key, label_key=args.label_key,
                                  seed=args.seed, device=_torch_device(args.device), epochs=args.epochs,
                                  adversarial_weight=args.adversarial_weight, conditioning=settings.conditioning,
                                  progress=session.progress)
        record = _record(session, settings, {"data": str(args.data), "input": expression.input_kind.as_dict(),
                                             **adata.uns["scelmo"]["integration"]})
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    shown = metrics.drop(columns=["embedding"])
    write_text_atomic(out / "integration_metrics.csv", shown.to_csv(index=False))
    figure = metric_bars_png(shown, ["S_bio", "S_batch", "overall"], out / "integration_scores.png",
                             title="Integration (scIB-style): bio conservation, batch removal, overall")
    scelmo = dict(adata.uns["scelmo"])
    scelmo["integration"] = h5ad_safe(record)
    adata.uns["scelmo"] = scelmo
    write_h5ad(adata, out / "integration.h5ad")
    write_task_report(out / "integration_report.html", title="batch-effect correction", intro=(
        f"Batches: obs['{args.batch_key}'], labels: obs['{args.label_key}']. Every metric is computed on all cells "
        "together and lies in [0, 1], higher is better; overall = 0.6 S_bio + 0.4 S_batch. The scELMo adaptor "
        "is trained on the labels (like scANVI) and scored on the same cells, so its bio scores are optimistic."),
        tables={"Metrics": shown}, figures=[figure], record=record)
    _write_common(out, record)
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {out} ({time.perf_counter() - started:.1f} s)")
    return 0


def cmd_treatment(args) -> int:
    from scelmo_desktop.cli_support import open_session
    from scelmo_desktop.core.atomic import write_text_atomic
    from scelmo_desktop.core.io import read_data, require_obs_column, select_expression
    from scelmo_desktop.core.report import write_task_report
    from scelmo_desktop.core.treatment import in_silico_treatment, top_candidates, treatment_png

    started = time.perf_counter()
    adata = read_data(args.data)
    require_obs_column(adata, args.condition_key, "condition")
    expression = select_expression(adata, args.layer, input_kind=args.input_kind)
    conditions = adata.obs[args.condition_key].astype(str).to_numpy()
    candidates = ([g.strip() for g in args.candidates.split(",") if g.strip()] if args.candidates else
                  top_candidates(expression, conditions, control=args.control, disease=args.disease,
                                 n=args.n_candidates))
    with open_session(args, need_embedder=True) as session:
        settings = session.settings(args)
        _, alignment = _table_and_alignment(session, settings, expression, extra_genes=candidates)
        result = in_silico_treatment(expression, alignment, conditions, control=args.control, disease=args.disease,
                                     candidates=candidates, seeds=tuple(range(args.seed, args.seed + args.repeats)),
                                     scale=args.scale, epochs=args.epochs, device=_torch_device(args.device),
                                     progress=session.progress)
        record = _record(session, settings, {"data": str(args.data), "input": expression.input_kind.as_dict(),
                                             "condition_key": args.condition_key,
                                             **result.settings, "cs0_per_seed": result.cs0})
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "treatment_ranking.csv", result.table.to_csv(index=False))
    figure = treatment_png(result.table, out / "treatment_top10.png")
    write_task_report(out / "treatment_report.html", title="in-silico treatment", intro=(
        f"Knock-out of each candidate in held-out '{args.disease}' cells; Δ = change of the cosine similarity "
        f"between mean '{args.control}' and mean '{args.disease}' adaptor embeddings (positive: towards control). "
        "p: against non-candidate genes of matched expression (see the method notes in the README)."),
        tables={"Ranking": result.table}, figures=[figure], record=record)
    _write_common(out, record)
    print(result.table.head(10).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"wrote {out} ({time.perf_counter() - started:.1f} s)")
    return 0


def cmd_perturb(args) -> int:
    from scelmo_desktop.cli_support import open_session
    from scelmo_desktop.core.atomic import write_text_atomic
    from scelmo_desktop.core.io import read_data, require_obs_column, select_expression
    from scelmo_desktop.core.perturbation import perturbation_shifts, run_perturbation
    from scelmo_desktop.core.report import metric_bars_png, write_task_report

    started = time.perf_counter()
    adata = read_data(args.data)
    require_obs_column(adata, args.perturbation_key, "perturbation")
    expression = select_expression(adata, args.layer, input_kind=args.input_kind)
    shifts = perturbation_shifts(expression, adata.obs[args.perturbation_key], control=args.control)
    perturbed = sorted({g for genes in shifts.genes for g in genes})
    with open_session(args, need_embedder=True) as session:
        settings = session.settings(args)
        table, alignment = _table_and_alignment(session, settings, expression, extra_genes=perturbed)
        metrics, details = run_perturbation(shifts, table.as_dict(), alignment.matrix, seed=args.seed,
                                            test_fraction=args.test_fraction, device=_torch_device(args.device),
                                            progress=session.progress)
        record = _record(session, settings, {"data": str(args.data), "input": expression.input_kind.as_dict(),
                                             "perturbation_key": args.perturbation_key,
                                             **details})
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "perturbation_metrics.csv", metrics.to_csv(index=False))
    figure = metric_bars_png(metrics.fillna(0.0), ["pearson_all", "pearson_top20", "pearson_downstream_top20"],
                             out / "perturbation_pearson.png",
                             title="Unseen perturbations: Pearson of predicted vs observed shift")
    write_task_report(out / "perturbation_report.html", title="perturbation modelling", intro=(
        f"{details['n_train']} perturbations trained, {details['n_test']} held out (their genes never seen in "
        "training). Lower MSE and higher Pearson are better; 'no change' has no Pearson (constant prediction)."),
        tables={"Metrics on held-out perturbations": metrics}, figures=[figure], record=record)
    _write_common(out, record)
    print(metrics.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"wrote {out} ({time.perf_counter() - started:.1f} s)")
    return 0


def _torch_device(requested: str) -> str:
    from scelmo_desktop.backends.hardware import torch_device

    return torch_device(requested)


def cmd_simulate(args) -> int:
    import scanpy as sc

    from scelmo_desktop.core import simulate
    from scelmo_desktop.core.io import write_h5ad

    adata = sc.datasets.pbmc68k_reduced()  # shipped inside scanpy: no download
    if args.command == "simulate-batches":
        out = simulate.simulate_batches(adata, label_key="bulk_labels", layer="raw", seed=args.seed)
        hint = f"scelmo integrate {args.out} --batch-key batch --label-key bulk_labels --out DIR"
    elif args.command == "simulate-condition":
        out = simulate.simulate_condition(adata, label_key="bulk_labels", layer="raw", seed=args.seed)
        hint = f"scelmo treatment {args.out} --condition-key condition --control control --disease disease --out DIR"
        print("planted genes: " + ", ".join(out.uns["simulation"]["planted_genes"]))
    else:
        out = _simulate_perturbseq(args, adata)
        hint = (f"scelmo perturb {args.out} --perturbation-key perturbation --control control --mode {args.mode} "
                "--max-genes all --out DIR")
    write_h5ad(out, args.out)
    print(f"wrote {args.out}: {out.n_obs} cells x {out.n_vars} genes\nnext: {hint}")
    return 0


def _simulate_perturbseq(args, adata):
    import numpy as np

    from scelmo_desktop.cli_support import open_session
    from scelmo_desktop.core import simulate
    from scelmo_desktop.core.gene_selection import select_genes
    from scelmo_desktop.core.io import select_expression
    from scelmo_desktop.core.pipeline import PipelineSettings, gene_table_for

    expression = select_expression(adata, "raw")
    genes = [expression.var_names[i] for i in sorted(select_genes(expression.matrix, args.genes))]
    args.layer, args.max_genes, args.symbol_column = "raw", args.genes, None
    args.on_flag, args.knowledge = "keep", []
    with open_session(args, need_embedder=True) as session:
        settings = PipelineSettings(max_genes=0, mode=session.mode, seed=args.seed)
        table, _ = gene_table_for([], settings=settings, llm=session.llm, store=session.store,
                                  embedder=session.embedder, extra_genes=genes, progress=session.progress)
    lookup = table.as_dict()
    return simulate.simulate_perturbseq(genes, np.vstack([lookup[g] for g in genes]), n_single=args.singles,
                                        n_double=args.doubles, seed=args.seed)


COMMANDS = {"integrate": cmd_integrate, "treatment": cmd_treatment, "perturb": cmd_perturb,
            "simulate-batches": cmd_simulate, "simulate-condition": cmd_simulate, "simulate-perturbseq": cmd_simulate}
