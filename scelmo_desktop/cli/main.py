"""``scelmo``: the headless entry point over the same core the GUI uses.

Errors a user can fix print one line (``error: ...``) and exit 2; ``--debug`` shows the traceback.
Ctrl-C stops a run between genes; every finished description is already stored and a re-run resumes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from scelmo_desktop import __version__
from scelmo_desktop.cli import tasks as cli_tasks
from scelmo_desktop.core.protocols import DEFAULT_LLM_BATCH, DEFAULT_SERVER_PARALLEL
from scelmo_desktop.core.text.generation import MODES
from scelmo_desktop.core.settings import CONDITIONINGS, DEFAULT_CONDITIONING
from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.text.gene_texts import FLAG_POLICIES
from scelmo_desktop.core.settings import DEFAULT_GENES
from scelmo_desktop.core.data.input_kind import CHOICES as INPUT_CHOICES
from scelmo_desktop.core.data.demo import DEMO_LLM_GENES
from scelmo_desktop.core.settings import DEFAULT_LLM_GENES



# ---- argument helpers -------------------------------------------------------------------------------------
def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise argparse.ArgumentTypeError(f"takes a positive whole number (got '{value}')")
    return number


def _count_or_all(value: str, *, minimum: int = 1) -> int | None:
    if value.lower() == "all":
        return None
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise argparse.ArgumentTypeError(f"takes a whole number of at least {minimum}, or 'all' (got '{value}')")
    return number


def _max_genes(value: str) -> int | None:
    return _count_or_all(value, minimum=1)


def _llm_genes(value: str) -> int | None:
    return _count_or_all(value, minimum=0)


def _minutes(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number <= 0:
        raise argparse.ArgumentTypeError(f"takes a positive number of minutes (got '{value}')")
    return number


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("models")
    group.add_argument("--llm", help="GGUF model name (see 'scelmo models') or path; default: the embedded model")
    group.add_argument("--embedder", help="sentence-transformers model name or folder; default: all-MiniLM-L6-v2")
    group.add_argument("--chat-format", help="override the chat template (e.g. gemma, chatml, llama-3)")
    group.add_argument("--threads", type=int, help="LLM threads (default: physical cores, or SCELMO_THREADS)")
    group.add_argument("--gpu-layers", type=int, default=0, help="layers to offload to a GPU (-1: all)")
    group.add_argument("--device", default="auto", help="embedder device: auto, cpu, cuda or mps")
    group.add_argument("--llm-parallel", type=_positive, default=None, metavar="N",
                       help="answers produced together: sequences decoded in one llama.cpp batch (default "
                            f"{DEFAULT_LLM_BATCH}), or concurrent requests to --llm-server (default {DEFAULT_SERVER_PARALLEL})")
    group.add_argument("--llm-server", metavar="URL",
                       help="use an OpenAI-compatible server on your network instead of a GGUF, e.g. "
                            "http://127.0.0.1:8080/v1 (loopback and private addresses only)")
    group.add_argument("--llm-server-model", metavar="NAME", help="model name to ask the server for (default: --llm or 'default')")
    group.add_argument("--llm-timeout", type=float, default=120.0, metavar="S", help="seconds per server request (default 120)")
    group.add_argument("--llm-retries", type=int, default=3, metavar="N", help="retries per server request, with backoff (default 3)")
    group.add_argument("--allow-remote", action="store_true",
                       help="allow an LLM server or Dask scheduler at a public address (data would leave loopback/private networks)")
    group.add_argument("--max-tokens", type=int, default=160, help="maximum tokens per description")
    group.add_argument("--seed", type=int, default=0, help="seed for decoding, clustering and baselines")
    group.add_argument("--store", type=Path, help="description store (SQLite); default: in the user data folder")


def _add_data_options(parser: argparse.ArgumentParser, *, llm_genes_default: int | None = DEFAULT_LLM_GENES,
                      mode_flag: str = "--mode") -> None:
    parser.add_argument("--layer", default="auto", help="input matrix: X, raw or a layer name (default: raw if "
                                                        "present, else X, else a counts layer when X is scaled)")
    parser.add_argument("--input-kind", choices=INPUT_CHOICES, default="auto",
                        help="what the matrix holds: counts and normalized (TPM/CPM) are normalised and log1p-"
                             "transformed, log is used as it is (default auto: detected and reported)")
    parser.add_argument("--symbol-column", help="var column holding gene symbols (auto-detected for Ensembl-indexed data)")
    parser.add_argument("--max-genes", type=_max_genes, default=DEFAULT_GENES,
                        help=f"the gene set the embedding is built on: the N most variable genes, or 'all' "
                             f"(default {DEFAULT_GENES})")
    parser.add_argument("--llm-genes", type=_llm_genes, default=llm_genes_default,
                        help="LLM budget: how many of the gene set (most variable first) the LLM describes; every "
                             f"other gene gets its fact sheet; 0 or 'all' (default {llm_genes_default})")
    parser.add_argument("--llm-minutes", type=_minutes, help="LLM budget in time: stop describing after M minutes "
                                                             "(finished answers are kept; the rest get fact sheets)")
    parser.add_argument("--conditioning", choices=CONDITIONINGS, default=DEFAULT_CONDITIONING,
                        help="cell vectors: standard (gene-set sum with the whitened table, 50 principal "
                             "components) or paper (the original code's wa)")
    _add_description_options(parser, mode_flag)


def _add_description_options(parser: argparse.ArgumentParser, mode_flag: str = "--mode") -> None:
    parser.add_argument(mode_flag, dest="mode", choices=("auto", *MODES), default="auto",
                        help="llm: the paper's prompt; grounded: fact sheet in the prompt; facts: fact sheet only, "
                             "no LLM; auto (default): the model's measured best mode (manifest), else grounded "
                             "when the knowledge extra is installed, else llm")
    parser.add_argument("--on-flag", choices=FLAG_POLICIES, default="keep",
                        help="for a description with quality flags: keep it, or embed the fact sheet instead")
    parser.add_argument("--knowledge", action="append", default=[], metavar="FILE",
                        help="your own gene texts for fact sheets: NCBI gene_info, GenePT JSON, UniProt TSV or "
                             "symbol,text CSV/TSV (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scelmo", description="Offline scELMo: LLM gene descriptions → cell embeddings.")
    parser.add_argument("--version", action="version", version=f"scelmo-desktop {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--models-dir", type=Path, help="models folder (default: SCELMO_MODELS_DIR or ./models)")
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="list local models, install the embedded defaults, or move a model "
                                           "across the air gap as a verified pack")
    models.add_argument("action", nargs="?", choices=("list", "install-defaults", "export", "import", "trust"),
                        default="list")
    models.add_argument("target", nargs="?", help="export/trust: the model's name or path; import: the pack file")
    models.add_argument("--out", type=Path, help="export: the pack file to write (.zip)")
    models.add_argument("--license", help="export: licence text to record when the manifest has none")
    models.add_argument("--check", action="store_true", help="also try loading each model")
    models.add_argument("--json", action="store_true", help="machine-readable output")

    tables = sub.add_parser("tables", help="import precomputed gene-embedding tables, or list the stored ones")
    tables.add_argument("action", choices=("import", "list"))
    tables.add_argument("file", type=Path, nargs="?", help="table to import: .pkl/.pickle, .npz, .csv, .tsv, .parquet")
    tables.add_argument("--name", help="name to store it under (default: the file name)")
    tables.add_argument("--json", action="store_true", help="machine-readable list")

    packs = sub.add_parser("packs", help="export or import a description pack (descriptions + embeddings + hashes)")
    packs.add_argument("action", choices=("export", "import"))
    packs.add_argument("file", type=Path, help="the pack file (.zip)")
    packs.add_argument("--store", type=Path, help="description store (default: in the user data folder)")
    packs.add_argument("--embedder", help="import embeddings made by this embedder (default: the default embedder)")

    edit = sub.add_parser("edit", help="replace a gene's description by hand (kept as its own version)")
    edit.add_argument("gene")
    edit.add_argument("text", help="the new description")
    edit.add_argument("--author", default="", help="who made the edit (recorded)")
    edit.add_argument("--note", default="", help="why (recorded)")
    edit.add_argument("--store", type=Path, help="description store (default: in the user data folder)")

    describe = sub.add_parser("describe", help="describe a data set's genes (or a list of genes) into the store")
    describe.add_argument("data", type=Path, nargs="?", help="data file whose genes to describe")
    describe.add_argument("--data", dest="data_option", type=Path, help="same as the positional DATA")
    describe.add_argument("--genes", help="comma-separated gene symbols to describe instead of a data file")
    describe.add_argument("--out", "--report", dest="out", type=Path,
                          help="write a CSV: one row per entity with its mode, text and quality flags")
    describe.add_argument("--cell-types", metavar="LABEL_KEY",
                          help="also describe each cell-type label in this obs column (cell-type prompt)")
    _add_data_options(describe)
    _add_model_options(describe)

    embed = sub.add_parser("embed", help="cell embeddings (wa and aa) from descriptions or a saved gene table")
    embed.add_argument("data", type=Path)
    embed.add_argument("--out", type=Path, required=True, help="output folder")
    embed.add_argument("--gene-table", help="a stored table name (scelmo tables list) or a table file, instead of describing genes")
    dask = embed.add_argument_group("out of memory (Dask)")
    dask.add_argument("--dask", action="store_true",
                      help="read the .h5ad/.zarr matrix lazily and embed it block by block on a Dask cluster "
                           "(needs --gene-table); the matrix never has to fit in memory")
    dask.add_argument("--scheduler", metavar="ADDRESS",
                      help="a running dask.distributed scheduler (tcp://host:8786, loopback or private networks); "
                           "default: a local cluster on this machine")
    dask.add_argument("--dask-workers", type=_positive, default=1, metavar="N", help="local cluster workers (default 1)")
    dask.add_argument("--chunk-cells", type=_positive, default=20_000, metavar="N",
                      help="cells per block; memory per worker grows with it (default 20000)")
    _add_data_options(embed)
    _add_model_options(embed)

    annotate = sub.add_parser("annotate", help="cell-type annotation: kNN on a labelled reference, or label text")
    annotate.add_argument("--query", type=Path, required=True, help="cells to annotate (.h5ad, …)")
    annotate.add_argument("--reference", type=Path, help="labelled reference file (kNN mode)")
    annotate.add_argument("--split-key", help="use one file: obs column telling reference from query cells")
    annotate.add_argument("--reference-value", help="with --split-key: the value marking reference cells")
    annotate.add_argument("--label-key", help="obs column with the reference labels (and query truth, if present)")
    annotate.add_argument("--mode", dest="annotation_mode", choices=("knn", "text", "adaptor"), default="knn",
                          help="knn: 10-NN on the reference; text: cell-type descriptions; adaptor: fine-tuned")
    annotate.add_argument("--save-adaptor", type=Path, help="adaptor mode: also save the trained adaptor here")
    annotate.add_argument("--adaptor", type=Path, metavar="FILE",
                          help="adaptor mode: reuse an adaptor saved earlier (--save-adaptor, or the app's "
                               "Fine-tuning panel) instead of training; no reference needed (its head labels the "
                               "cells), with one the 10-NN vote runs in the adaptor's space")
    annotate.add_argument("--epochs", type=_positive, default=30,
                          help="adaptor mode: most epochs (early stopping on validation kNN accuracy; default 30)")
    annotate.add_argument("--candidates", help="text mode: comma-separated cell types (default: reference labels)")
    annotate.add_argument("--text-scoring", choices=("markers", "centroid"), default="markers",
                          help="text mode: signature score of each type's closest genes (markers, default) or "
                               "cosine of the cell vector with the type description (centroid)")
    annotate.add_argument("--markers", type=int, default=10, help="text mode: marker genes per type (default 10)")
    annotate.add_argument("--k", type=int, default=10, help="neighbours in the vote (default 10)")
    annotate.add_argument("--threshold", type=float, default=0.0, help="below this confidence a cell is 'Unknown'")
    annotate.add_argument("--gene-table", help="a stored table name or a table file, instead of describing genes")
    annotate.add_argument("--out", type=Path, required=True, help="output .h5ad: the query with the labels written back")
    _add_data_options(annotate, mode_flag="--description-mode")
    _add_model_options(annotate)

    clus = sub.add_parser("cluster", help="kNN + Leiden (+ metrics with labels) + UMAP on an embedding in an .h5ad")
    clus.add_argument("data", type=Path)
    clus.add_argument("--out", type=Path, required=True, help="output folder")
    clus.add_argument("--use-rep", default="X_scelmo", help="obsm key to cluster (default: X_scelmo)")
    clus.add_argument("--label-key", help="obs column with cell labels, for NMI/ARI/ASW")
    clus.add_argument("--resolution", type=float, help="fixed Leiden resolution (default: sweep with labels, else 1.0)")
    clus.add_argument("--seed", type=int, default=0)

    for name, text, default in (("run", "the whole pipeline on your file", DEFAULT_LLM_GENES),
                                ("demo", "the whole pipeline on the shipped pbmc68k_reduced data", DEMO_LLM_GENES)):
        command = sub.add_parser(name, help=text)
        if name == "run":
            command.add_argument("data", type=Path)
            command.add_argument("--label-key", help="obs column with cell labels, for metrics")
        command.add_argument("--out", type=Path, required=name == "run", default=Path("scelmo_demo_out"),
                             help="output folder" + (" (default: scelmo_demo_out)" if name == "demo" else ""))
        command.add_argument("--resolution", type=float, help="fixed Leiden resolution (default: sweep with labels, else 1.0)")
        command.add_argument("--no-baselines", action="store_true", help="skip the PCA and random-table baselines")
        command.add_argument("--gene-table", help="a stored table name or a table file, instead of describing genes")
        _add_data_options(command, llm_genes_default=default)
        _add_model_options(command)
    cli_tasks.add_parsers(sub, add_data_options=_add_data_options, add_model_options=_add_model_options)
    audit = sub.add_parser("audit", help="print the audit trail (who ran what, on which files, with which models)")
    audit.add_argument("--tail", type=int, help="only the last N entries")
    audit.add_argument("--json", action="store_true", help="as JSON")
    return parser


# ---- commands ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status, message = "ok", ""
    try:
        code = COMMANDS[args.command](args)
        return code
    except ScelmoError as exc:
        status, message = "error", _with_flags(_naming_the_file(args, str(exc)))
        if args.debug:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        status, message = "interrupted", "stopped by the user"
        print("\ninterrupted: every finished description is stored; run the same command again to resume.",
              file=sys.stderr)
        return 130
    except BaseException as exc:
        status, message = "crashed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        _audit(args, status, message)


# core names settings in words every door understands; the terminal also gets the flag that sets each one
FLAG_HINTS = {"symbol column setting": "--symbol-column", "layer setting": "--layer", "label column": "--label-key",
              "description store": "--store", "llm description mode": "--mode llm",
              "allow-remote setting": "--allow-remote", "candidate cell types": "--candidates"}


def _with_flags(message: str) -> str:
    flags = [flag for words, flag in FLAG_HINTS.items() if words in message and flag not in message]
    return f"{message} [{', '.join(flags)}]" if flags else message


def _naming_the_file(args, message: str) -> str:
    """Errors about a data file's contents (a layer, NaNs, a column) name the file when they do not already."""
    files = [Path(v) for k in ("data", "data_option", "query") if (v := getattr(args, k, None))]
    if files and not any(f.name in message for f in files) and not any(
            str(getattr(args, k, "") or "") and Path(str(getattr(args, k))).name in message
            for k in ("reference", "file", "llm", "gene_table", "adaptor")):
        return f"{files[0]}: {message}"
    return message


READ_ONLY = {"audit", "models", "tables"}  # listing commands change nothing and are not audited


def _audit(args, status: str, message: str) -> None:
    from scelmo_desktop.cli.session import audit_models
    from scelmo_desktop.core._infra import audit

    if args.command in READ_ONLY and getattr(args, "action", "list") == "list":
        return
    inputs = [v for k in ("data", "data_option", "query", "reference", "file") if (v := getattr(args, k, None))]
    inputs += list(getattr(args, "knowledge", []) or [])
    inputs += [args.adaptor] if getattr(args, "adaptor", None) else []
    outputs = [v for k in ("out", "save_adaptor") if (v := getattr(args, k, None))]
    parameters = {k: str(v) for k, v in vars(args).items() if k not in ("command",) and v is not None}
    try:
        audit.record(f"scelmo {args.command}", status=status, inputs=inputs, models=audit_models(args),
                     parameters=parameters, outputs=outputs, message=message)
    except OSError as exc:  # an unwritable audit log must be seen, but must not hide the command's own result
        print(f"warning: could not append to the audit log {audit.audit_path()}: {exc}", file=sys.stderr)


def _cmd_models(args) -> int:
    from scelmo_desktop.backends import registry
    from scelmo_desktop.app.session import check_model

    if args.action == "install-defaults":
        for path in registry.install_defaults(args.models_dir):
            print(f"installed {path}")
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
        print(f"    {row['size_bytes'] / 1e6:.1f} MB  sha256 {row['sha256'][:16]}…  {verified}"
              + (f"  chat format: {row['chat_format'] or 'from GGUF metadata'}" if row["kind"] == "gguf" else "")
              + (f"  loads: {row['loads']}" if "loads" in row else ""))
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
    info = next((m for kind in ("gguf", "sentence-transformers") for m in registry.list_models(args.models_dir)
                 if m.kind == kind and args.target in (m.name, Path(m.path).name)), None)
    if info is None:
        raise ScelmoError(f"No model named '{args.target}'; see 'scelmo models'.")
    manifest = export_model_pack(info, args.out, license_text=args.license)
    print(f"exported {info.name}: {len(manifest['files'])} file(s), sha256 {info.sha256[:16]}… → {args.out}")
    return 0


def _cmd_tables(args) -> int:
    from scelmo_desktop.core.embedding.tables import import_table, list_tables

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
    from scelmo_desktop.core.text.packs import export_pack, import_pack
    from scelmo_desktop.core._infra.paths import default_store_path
    from scelmo_desktop.core.text.store import Store

    with Store(args.store or default_store_path()) as store:
        if args.action == "export":
            manifest = export_pack(store, args.file)
            print(f"exported {manifest['n_descriptions']} descriptions and {manifest['n_embeddings']} embeddings "
                  f"to {args.file}")
            return 0
        info = registry.find_model("sentence-transformers", args.embedder, args.models_dir)
        summary = import_pack(store, args.file, embedder_id=registry.embedder_id(info.name, info.sha256))
    print(f"imported {summary['descriptions_new']} new of {summary['descriptions_in_pack']} descriptions and "
          f"{summary['embeddings_imported']} embeddings")
    if summary["embedders_skipped"]:
        print("not imported (made by another embedder; texts will be re-embedded locally): "
              + ", ".join(summary["embedders_skipped"]))
    return 0


def _cmd_edit(args) -> int:
    from scelmo_desktop.core._infra.paths import default_store_path
    from scelmo_desktop.core.text.store import Store

    if not args.text.strip():
        raise ScelmoError("The edited description is empty; give the new text in quotes.")
    with Store(args.store or default_store_path()) as store:
        store.put_edit("gene", args.gene, args.text.strip(), author=args.author, note=args.note)
        versions = store.latest_edits("gene", [args.gene])[args.gene]["version"]
    print(f"stored edit of {args.gene} (edit #{versions}); it is used in every mode from now on")
    return 0


def _cmd_describe(args) -> int:
    from scelmo_desktop.cli.session import open_session, print_flag_counts
    from scelmo_desktop.core.data.io import read_data
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
    from scelmo_desktop.core.data.io import read_data
    from scelmo_desktop.core.embedding.tables import resolve_table
    from scelmo_desktop.core.workflows.embed import embed

    if args.dask:
        return _embed_with_dask(args)
    adata = read_data(args.data)
    table = resolve_table(args.gene_table) if args.gene_table else None
    with open_session(args, need_embedder=table is None) as session:
        outcome = embed(adata, table=table, data_name=str(args.data), out=args.out, **session.resources(args))
    if outcome.described is not None:
        print(f"LLM calls: {outcome.described.n_llm_calls} (cached: {outcome.described.n_cached})  "
              f"description mode: {outcome.described.mode}")
    _print_embedding(outcome.coverage, outcome.files, "")
    return 0


def _print_embedding(coverage: dict, files: dict, what: str) -> None:
    print(f"coverage: {coverage['n_matched']} of {coverage['n_genes']} genes have an embedding")
    print(f"wrote {files['h5ad']}{what} and {files['gene_table']}")


def _embed_with_dask(args) -> int:
    from scelmo_desktop.cli.session import TqdmProgress
    from scelmo_desktop.core.embedding.dask_embedding import dask_client
    from scelmo_desktop.core.embedding.tables import resolve_table
    from scelmo_desktop.core.workflows.embed import embed_out_of_memory

    if not args.gene_table:
        raise ScelmoError("--dask embeds with an existing gene table: give --gene-table (describe and embed the genes "
                          "once, e.g. 'scelmo embed' on a subsample, then see 'scelmo tables list').")
    table = resolve_table(args.gene_table)
    layer = "X" if args.layer == "auto" else args.layer
    progress = TqdmProgress()
    with dask_client(args.scheduler, n_workers=args.dask_workers, allow_remote=args.allow_remote) as client:
        adata, coverage, record = embed_out_of_memory(
            args.data, table=table, client=client, layer=layer, symbol_column=args.symbol_column,
            chunk_cells=args.chunk_cells, out=args.out, scheduler=args.scheduler, progress=progress)
    progress.close()
    _print_embedding(coverage, {"h5ad": args.out / "scelmo_embedded.h5ad", "gene_table": args.out / "gene_table.npz"},
                     f" ({adata.n_obs} cells, embeddings only, {record['dask']['workers']} Dask worker(s))")
    return 0


def _cmd_annotate(args) -> int:
    import pandas as pd

    from scelmo_desktop.cli.session import open_session
    from scelmo_desktop.core.data.io import read_data
    from scelmo_desktop.core.embedding.tables import resolve_table
    from scelmo_desktop.core.workflows.annotation import run_annotation, split_by_column, write_annotation_files

    if args.adaptor and args.annotation_mode != "adaptor":
        raise ScelmoError("--adaptor FILE reuses a saved adaptor: use it with --mode adaptor.")
    query = read_data(args.query)
    reference = read_data(args.reference) if args.reference else None
    if args.split_key:
        if args.reference_value is None:
            raise ScelmoError("--split-key needs --reference-value (the value marking reference cells).")
        reference, query = split_by_column(query, args.split_key, args.reference_value)
    table = resolve_table(args.gene_table) if args.gene_table else None
    with open_session(args, need_embedder=table is None or args.annotation_mode == "text") as session:
        candidates = [c.strip() for c in args.candidates.split(",") if c.strip()] if args.candidates else None
        annotation, record = run_annotation(
            query, mode=args.annotation_mode, reference=reference, label_key=args.label_key,
            candidates=candidates, table=table, k=args.k, threshold=args.threshold,
            text_scoring=args.text_scoring, n_markers=args.markers, device=args.device,
            save_adaptor=args.save_adaptor, epochs=args.epochs, adaptor_file=args.adaptor, **session.resources(args))
    files = write_annotation_files(query, annotation, record, args.out, label_key=args.label_key)
    counts = pd.Series(annotation.labels).value_counts()
    print(f"annotated {len(annotation.labels)} cells ({args.annotation_mode}"
          + (f", saved adaptor {args.adaptor}" if args.adaptor else "") + "); "
          + ", ".join(f"{label}: {n}" for label, n in counts.head(12).items()))
    if "metrics" in record:
        print(f"accuracy {record['metrics']['accuracy']:.3f}  macro-F1 {record['metrics']['macro_f1']:.3f}  "
              f"(against query obs['{args.label_key}'])")
        print(f"confusion matrix: {files['confusion']}")
    print(f"report: {files['report']}")
    print(f"wrote {args.out}")
    return 0


def _cmd_cluster(args) -> int:
    from scelmo_desktop.core.data.io import read_data
    from scelmo_desktop.core.workflows.cluster import cluster_embedding

    adata = read_data(args.data)
    if args.use_rep not in adata.obsm:
        raise ScelmoError(f"{args.data} has no obsm['{args.use_rep}']; run 'scelmo embed' first or pass --use-rep "
                          f"(available: {', '.join(adata.obsm.keys()) or 'none'}).")
    outcome = cluster_embedding(adata, use_rep=args.use_rep, label_key=args.label_key, resolution=args.resolution,
                                seed=args.seed, out=args.out)
    print(outcome.metrics.to_string(index=False))
    return 0


def _cmd_run(args, *, adata=None, data_name: str | None = None) -> int:
    from scelmo_desktop.cli.session import open_session, print_metrics, print_run_summary
    from scelmo_desktop.core.data.io import read_data
    from scelmo_desktop.core.embedding.tables import resolve_table
    from scelmo_desktop.core.workflows.pipeline import run_pipeline

    started = time.perf_counter()
    if adata is None:
        adata = read_data(args.data)
        data_name = str(args.data)
    table = resolve_table(args.gene_table) if args.gene_table else None
    with open_session(args, need_embedder=table is None) as session:
        result = run_pipeline(adata, data_name=data_name, table=table, out=args.out, **session.resources(args))
    print_run_summary(result.record)
    print_metrics(result.metrics)
    print(f"report: {result.files['report']}")
    print(f"data:   {result.files['h5ad']}")
    print(f"wall time: {time.perf_counter() - started:.1f} s")
    return 0


def _cmd_demo(args) -> int:
    from scelmo_desktop.core.data.demo import DEMO_LABELS, DEMO_LAYER, DEMO_NAME, load_demo

    args.label_key = DEMO_LABELS
    if args.layer == "auto":
        args.layer = DEMO_LAYER
    return _cmd_run(args, adata=load_demo(), data_name=DEMO_NAME)


def _cmd_audit(args) -> int:
    from scelmo_desktop.core._infra.audit import audit_path, read_entries

    entries = read_entries(args.tail)
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    if not entries:
        print(f"no audit entries yet ({audit_path()})")
    for e in entries:
        inputs = ", ".join(f"{Path(i['path']).name} (sha256 {i.get('sha256', '-')[:12]})" for i in e["inputs"]) or "-"
        models = ", ".join(f"{m['name']} ({m['sha256'][:12]})" for m in e["models"]) or "-"
        print(f"{e['time']}  {e['user']}@{e['host']}  {e['operation']}  [{e['status']}]\n"
              f"    inputs: {inputs}\n    models: {models}\n    outputs: {', '.join(e['outputs']) or '-'}"
              + (f"\n    message: {e['message']}" if e.get("message") else ""))
    return 0


COMMANDS = {"audit": _cmd_audit, "annotate": _cmd_annotate, "models": _cmd_models, "tables": _cmd_tables, "packs": _cmd_packs, "edit": _cmd_edit, "describe": _cmd_describe, "embed": _cmd_embed, "cluster": _cmd_cluster,
            "run": _cmd_run, "demo": _cmd_demo, **cli_tasks.COMMANDS}

if __name__ == "__main__":
    sys.exit(main())
