"""The ``scelmo`` command line: every subcommand and its arguments; the settings' flags, defaults and help are
built from their declarations (``core.settings``, through ``cli.options``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from scelmo_desktop import __version__
from scelmo_desktop.cli import tasks as cli_tasks
from scelmo_desktop.cli.options import add_global_settings, add_settings
from scelmo_desktop.core.settings import ANALYSIS, MODELS


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise argparse.ArgumentTypeError(f"takes a positive whole number (got '{value}')")
    return number


def _add_data_paths(parser: argparse.ArgumentParser) -> None:
    """One or several data paths (Cell Ranger .h5 or matrix folders, .h5ad, .csv): several become samples."""
    parser.add_argument(
        "data",
        type=Path,
        nargs="+",
        help="data file(s) or Cell Ranger matrix folder(s); several are joined as samples (obs['sample'])",
    )
    parser.add_argument(
        "--sample-names",
        metavar="A,B,…",
        help="comma-separated names, one per data path (default: from each file or folder name)",
    )


def _add_model_options(parser: argparse.ArgumentParser, task: str) -> None:
    add_settings(parser, task, scope=MODELS)
    parser.add_argument("--store", type=Path, help="description store (SQLite); default: in the user data folder")


def _add_data_options(parser: argparse.ArgumentParser, task: str) -> None:
    add_settings(parser, task, scope=ANALYSIS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scelmo", description="Offline scELMo: LLM gene descriptions → cell embeddings."
    )
    parser.add_argument("--version", action="version", version=f"scelmo-desktop {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    add_global_settings(parser)
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser(
        "models",
        help="list local models, install the embedded defaults (and the gene catalog's install-time cache), or move "
        "a model across the air gap as a verified pack",
    )
    models.add_argument(
        "action", nargs="?", choices=("list", "install-defaults", "export", "import", "trust"), default="list"
    )
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
    describe.add_argument(
        "--out",
        "--report",
        dest="out",
        type=Path,
        help="write a CSV: one row per entity with its mode, text and quality flags",
    )
    describe.add_argument(
        "--cell-types",
        metavar="LABEL_KEY",
        help="also describe each cell-type label in this obs column (cell-type prompt)",
    )
    _add_data_options(describe, "describe")
    _add_model_options(describe, "describe")

    embed = sub.add_parser("embed", help="cell embeddings (wa and aa) from descriptions or a saved gene table")
    embed.add_argument("data", type=Path)
    embed.add_argument("--out", type=Path, required=True, help="output folder")
    embed.add_argument(
        "--gene-table", help="a stored table name (scelmo tables list) or a table file, instead of describing genes"
    )
    dask = embed.add_argument_group("out of memory (Dask)")
    dask.add_argument(
        "--dask",
        action="store_true",
        help="read the .h5ad/.zarr matrix lazily and embed it block by block on a Dask cluster "
        "(needs --gene-table); the matrix never has to fit in memory",
    )
    dask.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a running dask.distributed scheduler (tcp://host:8786, loopback or private networks); "
        "default: a local cluster on this machine",
    )
    _add_data_options(embed, "embed")
    _add_model_options(embed, "embed")

    annotate = sub.add_parser("annotate", help="cell-type annotation: kNN on a labelled reference, or label text")
    annotate.add_argument("--query", type=Path, required=True, help="cells to annotate (.h5ad, …)")
    annotate.add_argument("--reference", type=Path, help="labelled reference file (kNN mode)")
    annotate.add_argument("--split-key", help="use one file: obs column telling reference from query cells")
    annotate.add_argument("--reference-value", help="with --split-key: the value marking reference cells")
    annotate.add_argument("--save-adaptor", type=Path, help="adaptor mode: also save the trained adaptor here")
    annotate.add_argument(
        "--adaptor",
        type=Path,
        metavar="FILE",
        help="adaptor mode: reuse an adaptor saved earlier (--save-adaptor, or the app's "
        "Fine-tuning panel) instead of training; no reference needed (its head labels the "
        "cells), with one the 10-NN vote runs in the adaptor's space",
    )
    annotate.add_argument(
        "--candidates", help="text mode: comma-separated cell types (default: --preset, else the reference labels)"
    )
    annotate.add_argument("--gene-table", help="a stored table name or a table file, instead of describing genes")
    annotate.add_argument(
        "--groupby",
        default="scelmo_leiden",
        help="markers mode: the obs column of the groups to name (default: scelmo_leiden)",
    )
    annotate.add_argument(
        "--out", type=Path, required=True, help="output .h5ad: the query with the labels written back"
    )
    _add_data_options(annotate, "annotate")
    _add_model_options(annotate, "annotate")

    clus = sub.add_parser("cluster", help="kNN + Leiden (+ metrics with labels) + UMAP on an embedding in an .h5ad")
    clus.add_argument("data", type=Path)
    clus.add_argument("--out", type=Path, required=True, help="output folder")
    clus.add_argument("--use-rep", default="X_scelmo", help="obsm key to cluster (default: X_scelmo)")
    _add_data_options(clus, "cluster")

    mark = sub.add_parser(
        "markers",
        help="marker genes of each cluster (or any obs column) against the rest: scanpy's rank_genes_groups, "
        "filtered; writes markers.csv (every gene of every group) and the .h5ad with uns['rank_genes_groups']",
    )
    mark.add_argument("data", type=Path, help="an .h5ad with the groups in obs (e.g. scelmo run's scelmo_result.h5ad)")
    mark.add_argument("--groupby", default="scelmo_leiden", help="obs column of the groups (default: scelmo_leiden)")
    mark.add_argument(
        "--compare",
        nargs=2,
        metavar=("GROUP", "REFERENCE"),
        help="differential expression of one group of --groupby against another (not the rest): writes "
        "comparison.csv and volcano.png",
    )
    mark.add_argument(
        "--within", metavar="COLUMN=VALUE", help="with --compare: only these cells (one cell type across conditions)"
    )
    mark.add_argument("--out", type=Path, required=True, help="output folder")
    _add_data_options(mark, "markers")

    qc = sub.add_parser(
        "qc",
        help="quality control of Cell Ranger output or any counts file: scanpy's QC metrics, Scrublet doublets and "
        "thresholds per sample; writes the QC table, plots, a report and the filtered .h5ad",
    )
    _add_data_paths(qc)
    qc.add_argument("--out", type=Path, required=True, help="output folder")
    _add_data_options(qc, "qc")

    for name, text in (
        ("run", "the whole pipeline on your file, or on several samples at once (one Cell Ranger run each)"),
        ("demo", "the whole pipeline on the shipped pbmc68k_reduced data"),
    ):
        command = sub.add_parser(name, help=text)
        if name == "run":
            _add_data_paths(command)
        command.add_argument(
            "--out",
            type=Path,
            required=name == "run",
            default=Path("scelmo_demo_out"),
            help="output folder" + (" (default: scelmo_demo_out)" if name == "demo" else ""),
        )
        command.add_argument("--gene-table", help="a stored table name or a table file, instead of describing genes")
        _add_data_options(command, name)
        _add_model_options(command, name)
    cli_tasks.add_parsers(sub, add_data_options=_add_data_options, add_model_options=_add_model_options)
    audit = sub.add_parser("audit", help="print the audit trail (who ran what, on which files, with which models)")
    audit.add_argument("--tail", type=int, help="only the last N entries")
    audit.add_argument("--json", action="store_true", help="as JSON")
    return parser
