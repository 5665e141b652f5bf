"""The commands behind ``scelmo`` (beyond the analysis commands in ``tasks.py``): each parses nothing, calls
the workflow or the store/registry operation, and prints what it did."""

from __future__ import annotations

import json
import time
from pathlib import Path

from scelmo_desktop.cli import tasks as cli_tasks
from scelmo_desktop.core.workflows.environment import ScelmoError


def _cmd_models(args) -> int:
    from scelmo_desktop.app.session import check_model
    from scelmo_desktop.backends import registry

    if args.action == "install-defaults":
        from scelmo_desktop.core.workflows.environment import prepare_install_cache, warm_install_compile_cache

        for path in registry.install_defaults(args.models_dir):
            print(f"installed {path}")
        catalog = prepare_install_cache()  # the first run on a fresh install then reads it instead of parsing
        if catalog is not None:
            print(f"gene catalog ready: {catalog}")
        compiled = warm_install_compile_cache()  # about a minute once; each first run then skips compiling
        print(f"compiled code cached: {compiled}" if compiled else "compiled code not cached (runs compile it)")
        return 0
    if args.action in ("export", "import"):
        return _model_pack(args)
    if args.action == "trust":
        from scelmo_desktop.backends.trust import record

        if not args.target:
            raise ScelmoError("'scelmo models trust' needs the model's name or path.")
        info = registry.find_model("gguf", args.target, args.models_dir)
        record(info)
        print(f"trusted {info.path} (sha256 {info.sha256[:16]}…)")
        return 0
    models = registry.list_models(args.models_dir)
    rows = []
    for model in models:
        row = model.as_dict()
        if args.check:
            row["loads"] = check_model(model)
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no models in {args.models_dir or registry.default_models_dir()}; run 'scelmo models install-defaults'")
    for row in rows:
        verified = {True: "sha256 ok", False: "SHA256 MISMATCH", None: "not in manifest"}[row["verified"]]
        print(f"{row['name']}  [{row['kind']}]{'  default' if row['default'] else ''}")
        print(f"    {row['path']}")
        print(
            f"    {row['size_bytes'] / 1e6:.1f} MB  sha256 {row['sha256'][:16]}…  {verified}"
            + (f"  chat format: {row['chat_format'] or 'from GGUF metadata'}" if row["kind"] == "gguf" else "")
            + (f"  loads: {row['loads']}" if "loads" in row else "")
        )
    return 0


def _model_pack(args) -> int:
    from scelmo_desktop.backends import registry
    from scelmo_desktop.backends.model_packs import export_model_pack, import_model_pack

    if not args.target:
        raise ScelmoError(f"'scelmo models {args.action}' needs the model's name (export) or the pack file (import).")
    if args.action == "import":
        entry = import_model_pack(args.target, args.models_dir or registry.default_models_dir())
        print(f"imported {entry['name']} ({entry['kind']}), every file verified against the pack's sha256")
        return 0
    if args.out is None:
        raise ScelmoError("'scelmo models export' needs --out FILE.zip.")
    info = next(
        (
            m
            for kind in ("gguf", "sentence-transformers")
            for m in registry.list_models(args.models_dir)
            if m.kind == kind and args.target in (m.name, Path(m.path).name)
        ),
        None,
    )
    if info is None:
        raise ScelmoError(f"No model named '{args.target}'; see 'scelmo models'.")
    manifest = export_model_pack(info, args.out, license_text=args.license)
    print(f"exported {info.name}: {len(manifest['files'])} file(s), sha256 {info.sha256[:16]}… → {args.out}")
    return 0


def _cmd_tables(args) -> int:
    from scelmo_desktop.core.workflows.storage import import_table, list_tables

    if args.action == "import":
        if args.file is None:
            raise ScelmoError("'scelmo tables import' needs the FILE to import.")
        name, table = import_table(args.file, args.name)
        print(f"imported '{name}': {len(table.symbols)} genes x {table.dim} dimensions")
        return 0
    rows = list_tables()
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no stored tables; add one with 'scelmo tables import FILE'")
    for row in rows if not args.json else []:
        print(f"{row['name']}: {row['genes']} genes x {row['dim']}  (from {row['imported_from']})")
    return 0


def _cmd_packs(args) -> int:
    from scelmo_desktop.backends import registry
    from scelmo_desktop.core.workflows.environment import default_store_path
    from scelmo_desktop.core.workflows.storage import Store, export_pack, import_pack

    with Store(args.store or default_store_path()) as store:
        if args.action == "export":
            manifest = export_pack(store, args.file)
            print(
                f"exported {manifest['n_descriptions']} descriptions and {manifest['n_embeddings']} embeddings "
                f"to {args.file}"
            )
            return 0
        info = registry.find_model("sentence-transformers", args.embedder, args.models_dir)
        summary = import_pack(store, args.file, embedder_id=registry.embedder_id(info.name, info.sha256))
    print(
        f"imported {summary['descriptions_new']} new of {summary['descriptions_in_pack']} descriptions and "
        f"{summary['embeddings_imported']} embeddings"
    )
    if summary["embedders_skipped"]:
        print(
            "not imported (made by another embedder; texts will be re-embedded locally): "
            + ", ".join(summary["embedders_skipped"])
        )
    return 0


def _cmd_edit(args) -> int:
    from scelmo_desktop.core.workflows.environment import default_store_path
    from scelmo_desktop.core.workflows.storage import Store

    if not args.text.strip():
        raise ScelmoError("The edited description is empty; give the new text in quotes.")
    with Store(args.store or default_store_path()) as store:
        store.put_edit("gene", args.gene, args.text.strip(), author=args.author, note=args.note)
        versions = store.latest_edits("gene", [args.gene])[args.gene]["version"]
    print(f"stored edit of {args.gene} (edit #{versions}); it is used in every mode from now on")
    return 0


def _cmd_describe(args) -> int:
    from scelmo_desktop.cli.session import open_session, print_flag_counts
    from scelmo_desktop.core.workflows.data import read_data
    from scelmo_desktop.core.workflows.describe import describe

    data = args.data or args.data_option
    if (data is None) == (args.genes is None):
        raise ScelmoError("Give either a data file (DATA or --data FILE) or --genes A,B,... to describe.")
    if args.cell_types and data is None:
        raise ScelmoError("--cell-types needs a data file with that obs column.")
    adata = read_data(data) if data else None
    genes = [g.strip() for g in args.genes.split(",") if g.strip()] if args.genes else None
    with open_session(args, need_embedder=False) as session:
        resources = session.resources(args)
        del resources["embedder"]
        outcome = describe(adata, genes=genes, cell_types_key=args.cell_types, out=args.out, **resources)
    print(f"LLM calls: {outcome.n_llm_calls} (cached: {outcome.n_cached})  description mode: {outcome.mode}")
    print_flag_counts(outcome.genes)
    if args.out:
        print(f"wrote {args.out}")
    return 0


def _cmd_embed(args) -> int:
    from scelmo_desktop.cli.session import open_session
    from scelmo_desktop.core.workflows.data import read_data
    from scelmo_desktop.core.workflows.embed import embed
    from scelmo_desktop.core.workflows.storage import resolve_table

    if args.dask:
        return _embed_with_dask(args)
    adata = read_data(args.data)
    table = resolve_table(args.gene_table) if args.gene_table else None
    with open_session(args, need_embedder=table is None) as session:
        outcome = embed(adata, table=table, data_name=str(args.data), out=args.out, **session.resources(args))
    if outcome.described is not None:
        print(
            f"LLM calls: {outcome.described.n_llm_calls} (cached: {outcome.described.n_cached})  "
            f"description mode: {outcome.described.mode}"
        )
    _print_embedding(outcome.coverage, outcome.files, "")
    return 0


def _print_embedding(coverage: dict, files: dict, what: str) -> None:
    print(f"coverage: {coverage['n_matched']} of {coverage['n_genes']} genes have an embedding")
    print(f"wrote {files['h5ad']}{what} and {files['gene_table']}")


def _embed_with_dask(args) -> int:
    from scelmo_desktop.cli.session import TqdmProgress
    from scelmo_desktop.core.workflows.embed import embed_out_of_memory
    from scelmo_desktop.core.workflows.storage import dask_client, resolve_table

    if not args.gene_table:
        raise ScelmoError(
            "--dask embeds with an existing gene table: give --gene-table (describe and embed the genes "
            "once, e.g. 'scelmo embed' on a subsample, then see 'scelmo tables list')."
        )
    table = resolve_table(args.gene_table)
    layer = "X" if args.layer == "auto" else args.layer
    progress = TqdmProgress()
    with dask_client(args.scheduler, n_workers=args.dask_workers, allow_remote=args.allow_remote) as client:
        adata, coverage, record = embed_out_of_memory(
            args.data,
            table=table,
            client=client,
            layer=layer,
            symbol_column=args.symbol_column,
            chunk_cells=args.chunk_cells,
            out=args.out,
            scheduler=args.scheduler,
            progress=progress,
        )
    progress.close()
    _print_embedding(
        coverage,
        {"h5ad": args.out / "scelmo_embedded.h5ad", "gene_table": args.out / "gene_table.npz"},
        f" ({adata.n_obs} cells, embeddings only, {record['dask']['workers']} Dask worker(s))",
    )
    return 0


def _cmd_annotate(args) -> int:
    import pandas as pd

    from scelmo_desktop.cli.session import open_session
    from scelmo_desktop.core.workflows.annotation import run_annotation
    from scelmo_desktop.core.workflows.annotation_files import write_annotation_files
    from scelmo_desktop.core.workflows.annotation_inputs import needs_embedder, split_by_column
    from scelmo_desktop.core.workflows.data import read_data
    from scelmo_desktop.core.workflows.storage import resolve_table

    if args.adaptor and args.method != "adaptor":
        raise ScelmoError("--adaptor FILE reuses a saved adaptor: use it with --mode adaptor.")
    if args.method == "markers":
        return _annotate_by_markers(args)
    query = read_data(args.query)
    reference = read_data(args.reference) if args.reference else None
    if args.split_key:
        if args.reference_value is None:
            raise ScelmoError("--split-key needs --reference-value (the value marking reference cells).")
        reference, query = split_by_column(query, args.split_key, args.reference_value)
    table = resolve_table(args.gene_table) if args.gene_table else None
    need_embedder = needs_embedder(args.method, args.text_scoring, has_table=table is not None)
    with open_session(args, need_embedder=need_embedder) as session:
        candidates = [c.strip() for c in args.candidates.split(",") if c.strip()] if args.candidates else None
        annotation, record = run_annotation(
            query,
            reference=reference,
            label_key=args.label_key,
            candidates=candidates,
            table=table,
            device=args.device,
            save_adaptor=args.save_adaptor,
            adaptor_file=args.adaptor,
            **session.resources(args),
        )
    files = write_annotation_files(query, annotation, record, args.out, label_key=args.label_key)
    counts = pd.Series(annotation.labels).value_counts()
    print(
        f"annotated {len(annotation.labels)} cells ({args.method}"
        + (f", saved adaptor {args.adaptor}" if args.adaptor else "")
        + "); "
        + ", ".join(f"{label}: {n}" for label, n in counts.head(12).items())
    )
    if record.get("poorly_mapped"):
        print(
            "mapped weakly to the Cell Ontology (name these as the ontology does, or check their markers in the "
            "report): " + ", ".join(record["poorly_mapped"])
        )
    if "metrics" in record:
        print(
            f"accuracy {record['metrics']['accuracy']:.3f}  macro-F1 {record['metrics']['macro_f1']:.3f}  "
            f"(against query obs['{args.label_key}'])"
        )
        print(f"confusion matrix: {files['confusion']}")
    print(f"report: {files['report']}")
    print(f"wrote {args.out}")
    return 0


def _cmd_cluster(args) -> int:
    from scelmo_desktop.core.workflows.cluster import cluster
    from scelmo_desktop.core.workflows.data import read_data

    adata = read_data(args.data)
    if args.use_rep not in adata.obsm:
        raise ScelmoError(
            f"{args.data} has no obsm['{args.use_rep}']; run 'scelmo embed' first or pass --use-rep "
            f"(available: {', '.join(adata.obsm.keys()) or 'none'})."
        )
    outcome = cluster(
        adata, use_rep=args.use_rep, label_key=args.label_key, resolution=args.resolution, seed=args.seed, out=args.out
    )
    print(outcome.metrics.to_string(index=False))
    return 0


def _compare(args, adata) -> int:
    from scelmo_desktop.cli.options import pipeline_settings
    from scelmo_desktop.core.workflows.comparison import (
        CELL_LEVEL_NOTE,
        compare_in_data,
        parse_within,
        write_comparison,
    )

    group, reference = args.compare
    markers = compare_in_data(
        adata,
        groupby=args.groupby,
        group=group,
        reference=reference,
        within=parse_within(args.within),
        settings=pipeline_settings(args, mode="facts"),
    )
    table = markers.table
    up = table[(table["p_adjusted"] < 0.05) & (table["log2_fold_change"] >= 1)]
    down = table[(table["p_adjusted"] < 0.05) & (table["log2_fold_change"] <= -1)]
    print(f"{markers.groupby} ({markers.method}): {len(up)} genes up, {len(down)} down (adjusted p < 0.05, 2-fold)")
    print(f"  up:   {', '.join(up['gene'].head(10)) or '(none)'}")
    print(f"  down: {', '.join(down.sort_values('score')['gene'].head(10)) or '(none)'}")
    print(f"note: {CELL_LEVEL_NOTE}.")
    for name, path in write_comparison(markers, args.out).items():
        print(f"{name}: {path}")
    return 0


def _annotate_by_markers(args) -> int:
    """``annotate --mode markers``: name each group of ``--groupby`` from its markers (no reference, no models)."""
    from scelmo_desktop.cli.options import pipeline_settings
    from scelmo_desktop.cli.session import open_session, print_markers
    from scelmo_desktop.core.workflows.data import read_data
    from scelmo_desktop.core.workflows.markers import markers_of_file

    if args.reference or args.candidates:
        raise ScelmoError("--mode markers names groups from their markers alone: drop --reference/--candidates.")
    settings = pipeline_settings(args, mode="facts")  # annotate takes the tissue hint; test and naming: defaults
    adata = read_data(args.query)
    if settings.naming_llm == "off":
        found, files = markers_of_file(adata, groupby=args.groupby, settings=settings, out=args.out)
    else:
        with open_session(args, need_embedder=False) as session:
            found, files = markers_of_file(
                adata, groupby=args.groupby, settings=settings, out=args.out, llm=session.llm
            )
    print_markers(found.markers, None, naming=found.naming)
    if "explanations" in found.notes:
        print(f"explanations: not written ({found.notes['explanations']})")
    for name, path in files.items():
        print(f"{name.replace('_', ' ')}: {path}")
    return 0


def _cmd_run(args, *, adata=None, data_name: str | None = None) -> int:
    from scelmo_desktop.cli.session import open_paths, open_session, print_markers, print_metrics, print_run_summary
    from scelmo_desktop.core.workflows.cluster import split_summary
    from scelmo_desktop.core.workflows.pipeline import run_pipeline
    from scelmo_desktop.core.workflows.storage import resolve_table

    started = time.perf_counter()
    intake = None
    if adata is None:
        intake = open_paths(args)
        adata, data_name = intake.adata, ", ".join(map(str, args.data))
    table = resolve_table(args.gene_table) if args.gene_table else None
    if intake is not None:  # before the run, so that its report shows them
        intake.write_barcode_rank_plots(args.out)
    with open_session(args, need_embedder=table is None) as session:
        result = run_pipeline(adata, data_name=data_name, table=table, out=args.out, **session.resources(args))
    print_run_summary(result.record)
    print_metrics(result.metrics)
    for line in split_summary(result.record.get("split_clusters", {})):
        print(f"{line} (--no-split-mixed keeps it)")
    print_markers(result.markers, result.record.get("markers"), naming=result.naming)
    if result.naming is None and "naming" in result.record:
        print(f"cell types: not named ({result.record['naming'].get('reason', '')})")
    if "explanations" in result.record:
        print(f"explanations: not written ({result.record['explanations'].get('reason', '')})")
    for name in ("markers", "cell_types"):
        if name in result.files:
            print(f"{name.replace('_', ' ')}: {result.files[name]}")
    print(f"report: {result.files['report']}")
    print(f"data:   {result.files['h5ad']}")
    print(f"wall time: {time.perf_counter() - started:.1f} s")
    return 0


def _cmd_markers(args) -> int:
    from scelmo_desktop.cli.options import pipeline_settings
    from scelmo_desktop.cli.session import print_markers
    from scelmo_desktop.core.workflows.data import read_data
    from scelmo_desktop.core.workflows.markers import markers_of_file

    adata = read_data(args.data)
    if args.compare:
        return _compare(args, adata)
    if args.within:
        raise ScelmoError("--within restricts a comparison: use it with --compare GROUP REFERENCE.")
    found, files = markers_of_file(
        adata, groupby=args.groupby, settings=pipeline_settings(args, mode="facts"), out=args.out
    )
    print_markers(found.markers, None, naming=found.naming)
    for name, path in files.items():
        print(f"{name.replace('_', ' ')}: {path}")
    return 0


def _cmd_qc(args) -> int:
    from scelmo_desktop.cli.options import pipeline_settings
    from scelmo_desktop.cli.session import open_paths, print_qc
    from scelmo_desktop.core.workflows.qc import run_qc

    intake = open_paths(args)
    outcome = run_qc(intake.adata, settings=pipeline_settings(args, mode="facts"), out=args.out)
    intake.write_barcode_rank_plots(args.out)
    print_qc(outcome.record)
    print(f"QC table: {outcome.files['qc_table']}  report: {outcome.files['report']}")
    print(f"wrote {args.out}")
    return 0


def _cmd_demo(args) -> int:
    from scelmo_desktop.core.workflows.data import DEMO_LABELS, DEMO_LAYER, DEMO_NAME, load_demo

    args.label_key = DEMO_LABELS
    if args.layer == "auto":
        args.layer = DEMO_LAYER
    return _cmd_run(args, adata=load_demo(), data_name=DEMO_NAME)


def _cmd_audit(args) -> int:
    from scelmo_desktop.core.workflows.environment import audit_path, read_entries

    entries = read_entries(args.tail)
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    if not entries:
        print(f"no audit entries yet ({audit_path()})")
    for e in entries:
        inputs = ", ".join(f"{Path(i['path']).name} (sha256 {i.get('sha256', '-')[:12]})" for i in e["inputs"]) or "-"
        models = ", ".join(f"{m['name']} ({m['sha256'][:12]})" for m in e["models"]) or "-"
        print(
            f"{e['time']}  {e['user']}@{e['host']}  {e['operation']}  [{e['status']}]\n"
            f"    inputs: {inputs}\n    models: {models}\n    outputs: {', '.join(e['outputs']) or '-'}"
            + (f"\n    message: {e['message']}" if e.get("message") else "")
        )
    return 0


COMMANDS = {
    "audit": _cmd_audit,
    "annotate": _cmd_annotate,
    "models": _cmd_models,
    "tables": _cmd_tables,
    "packs": _cmd_packs,
    "edit": _cmd_edit,
    "describe": _cmd_describe,
    "embed": _cmd_embed,
    "cluster": _cmd_cluster,
    "markers": _cmd_markers,
    "run": _cmd_run,
    "qc": _cmd_qc,
    "demo": _cmd_demo,
    **cli_tasks.COMMANDS,
}
