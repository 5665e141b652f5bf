"""CLI commands for the scELMo tasks beyond clustering and annotation: integration, in-silico treatment,
perturbation modelling, and the simulators that make data for them.

Each analysis command writes into its ``--out`` folder: a metrics/ranking CSV, a PNG, an HTML report section,
and ``provenance.json`` (models with hashes, description mode, seeds, package versions).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

from scelmo_desktop.cli.options import add_setting
from scelmo_desktop.core.settings import SETTINGS


def add_parsers(sub, *, add_data_options, add_model_options) -> None:
    integrate = sub.add_parser(
        "integrate",
        help="batch-effect correction with no labels (obsm['X_scelmo_integrated']), scored beside the uncorrected "
        "scELMo space, PCA and Harmony with scIB-style metrics; with --label-key also bio conservation and the "
        "labelled adaptor",
    )
    integrate.add_argument("data", type=Path)
    integrate.add_argument("--batch-key", required=True, help="obs column with the batch of each cell")
    integrate.add_argument(
        "--label-key",
        help="obs column with cell types: scores bio conservation and trains the labelled adaptor (optional; the "
        "integration itself uses no labels)",
    )
    integrate.add_argument("--out", type=Path, required=True, help="output folder")

    treatment = sub.add_parser("treatment", help="in-silico treatment: which knock-outs move disease towards control")
    treatment.add_argument("data", type=Path)
    treatment.add_argument("--condition-key", required=True, help="obs column with the condition of each cell")
    treatment.add_argument("--control", required=True, help="the control condition's value")
    treatment.add_argument("--disease", required=True, help="the disease condition's value")
    treatment.add_argument("--candidates", help="comma-separated genes (default: the most up in disease)")
    treatment.add_argument("--out", type=Path, required=True, help="output folder")

    perturb = sub.add_parser("perturb", help="predict unseen perturbations' expression shifts from gene embeddings")
    perturb.add_argument("data", type=Path)
    perturb.add_argument("--perturbation-key", required=True, help="obs column: control label, GENE or GENE1+GENE2")
    perturb.add_argument("--control", required=True, help="the control label")
    perturb.add_argument("--out", type=Path, required=True, help="output folder")

    for task, parser in (("integrate", integrate), ("treatment", treatment), ("perturb", perturb)):
        add_data_options(parser, task)
        add_model_options(parser, task)

    for name, text in (
        ("simulate-batches", "two batches from pbmc68k_reduced with gene-specific batch effects"),
        ("simulate-condition", "control/disease cells from pbmc68k_reduced with planted genes"),
        ("simulate-perturbseq", "a Perturb-seq data set over real genes (see core/simulate.py)"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("--out", type=Path, required=True, help="output .h5ad")
        add_setting(command, SETTINGS["seed"], name)
        if name == "simulate-perturbseq":
            command.add_argument("--genes", type=int, default=200, help="genes (most variable of pbmc68k_reduced)")
            command.add_argument("--singles", type=int, default=60, help="single-gene perturbations")
            command.add_argument("--doubles", type=int, default=20, help="two-gene combinations")
            add_model_options(command, name)  # the description mode of the table wiring the network


def _print_genes(record: dict) -> None:
    print(
        f"LLM calls: {record['llm_calls']} (cached: {record['llm_cached']})  description mode: "
        f"{record['description_mode']}  genes with a vector: {record['genes_with_vector']} of {record['n_genes']}"
    )


def _task_command(args, *, check, run, shown, digits: int) -> int:
    """Read the data, check its columns before any model work, run the workflow into ``--out``, print."""
    from scelmo_desktop.cli.session import open_session
    from scelmo_desktop.core.workflows.data import read_data

    started = time.perf_counter()
    adata = read_data(args.data)
    check(adata)
    with open_session(args, need_embedder=True) as session:
        outcome = run(adata, device=args.device, data_name=str(args.data), out=args.out, **session.resources(args))
    _print_genes(outcome.record)
    print(shown(outcome).to_string(index=False, float_format=lambda v: f"{v:.{digits}f}"))
    print(f"wrote {args.out} ({time.perf_counter() - started:.1f} s)")
    return 0


def cmd_integrate(args) -> int:
    from scelmo_desktop.core.workflows.data import check_batch_columns as check_columns
    from scelmo_desktop.core.workflows.integration import integrate

    return _task_command(
        args,
        check=lambda adata: check_columns(adata, args.batch_key, args.label_key),
        run=functools.partial(integrate, batch_key=args.batch_key, label_key=args.label_key),
        shown=lambda result: result.metrics,
        digits=3,
    )


def cmd_treatment(args) -> int:
    from scelmo_desktop.core.workflows.data import require_obs_column
    from scelmo_desktop.core.workflows.treatment import treat

    candidates = [g.strip() for g in args.candidates.split(",") if g.strip()] if args.candidates else None
    return _task_command(
        args,
        check=lambda adata: require_obs_column(adata, args.condition_key, "condition"),
        run=functools.partial(
            treat, condition_key=args.condition_key, control=args.control, disease=args.disease, candidates=candidates
        ),
        shown=lambda outcome: outcome.ranking.head(10),
        digits=4,
    )


def cmd_perturb(args) -> int:
    from scelmo_desktop.core.workflows.data import require_obs_column
    from scelmo_desktop.core.workflows.perturbation import perturb

    return _task_command(
        args,
        check=lambda adata: require_obs_column(adata, args.perturbation_key, "perturbation"),
        run=functools.partial(perturb, perturbation_key=args.perturbation_key, control=args.control),
        shown=lambda outcome: outcome.metrics,
        digits=4,
    )


def cmd_simulate(args) -> int:
    from scelmo_desktop.core.workflows.data import DEMO_LABELS, DEMO_LAYER, load_demo, simulate, write_h5ad

    adata = load_demo()
    if args.command == "simulate-batches":
        out = simulate.simulate_batches(adata, label_key=DEMO_LABELS, layer=DEMO_LAYER, seed=args.seed)
        hint = f"scelmo integrate {args.out} --batch-key batch --label-key {DEMO_LABELS} --out DIR"
    elif args.command == "simulate-condition":
        out = simulate.simulate_condition(adata, label_key=DEMO_LABELS, layer=DEMO_LAYER, seed=args.seed)
        hint = f"scelmo treatment {args.out} --condition-key condition --control control --disease disease --out DIR"
        print("planted genes: " + ", ".join(out.uns["simulation"]["planted_genes"]))
    else:
        out = _simulate_perturbseq(args, adata)
        hint = (
            f"scelmo perturb {args.out} --perturbation-key perturbation --control control --mode {args.mode} "
            "--max-genes all --out DIR"
        )
    write_h5ad(out, args.out)
    print(f"wrote {args.out}: {out.n_obs} cells x {out.n_vars} genes\nnext: {hint}")
    return 0


def _simulate_perturbseq(args, adata):
    from scelmo_desktop.cli.session import open_session
    from scelmo_desktop.core.settings import PipelineSettings
    from scelmo_desktop.core.workflows.data import DEMO_LAYER
    from scelmo_desktop.core.workflows.perturbation import perturbseq_example

    with open_session(args, need_embedder=True) as session:
        settings = PipelineSettings(layer=DEMO_LAYER, mode=session.mode, seed=args.seed)
        return perturbseq_example(
            adata,
            n_genes=args.genes,
            n_single=args.singles,
            n_double=args.doubles,
            settings=settings,
            llm=session.llm,
            embedder=session.embedder,
            store=session.store,
            progress=session.progress,
        )


COMMANDS = {
    "integrate": cmd_integrate,
    "treatment": cmd_treatment,
    "perturb": cmd_perturb,
    "simulate-batches": cmd_simulate,
    "simulate-condition": cmd_simulate,
    "simulate-perturbseq": cmd_simulate,
}
