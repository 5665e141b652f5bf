"""The ``scelmo`` command line: every subcommand, its options and their defaults (from ``core.settings``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from scelmo_desktop import __version__
from scelmo_desktop.cli import tasks as cli_tasks
from scelmo_desktop.core.data.demo import DEMO_LLM_GENES
from scelmo_desktop.core.data.input_kind import CHOICES as INPUT_CHOICES
from scelmo_desktop.core.knowledge.presets import TISSUE_PRESETS
from scelmo_desktop.core.protocols import DEFAULT_LLM_BATCH, DEFAULT_SERVER_PARALLEL
from scelmo_desktop.core.settings import CONDITIONINGS, DEFAULT_CONDITIONING, DEFAULT_GENES, DEFAULT_LLM_GENES
from scelmo_desktop.core.tasks.smoothing import DEFAULT_SMOOTHING, SMOOTHINGS
from scelmo_desktop.core.text.gene_texts import FLAG_POLICIES
from scelmo_desktop.core.text.generation import MODES


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
    annotate.add_argument("--candidates", help="text mode: comma-separated cell types (default: --preset, else the "
                                               "reference labels)")
    annotate.add_argument("--preset", choices=sorted(TISSUE_PRESETS),
                          help="text mode: the candidate cell types of a tissue (blood/pbmc: monocytes, T, NK, B, "
                               "plasma, dendritic cells, megakaryocytes), named by Cell Ontology id")
    annotate.add_argument("--smoothing", choices=SMOOTHINGS, default=DEFAULT_SMOOTHING,
                          help="knowledge scoring: average each cell's marker scores over its neighbours in "
                               "expression (default), in the cell embedding obsm['X_scelmo'] (embedding), or none")
    annotate.add_argument("--text-scoring", choices=("auto", "knowledge", "markers", "centroid"), default="auto",
                          help="text mode: knowledge scores the curated markers of each type's Cell Ontology term "
                               "(no text); markers the genes closest to each type's description in the text space; "
                               "centroid the cosine of cell and description vectors; auto (default): knowledge "
                               "when the knowledge extra is installed, else markers")
    annotate.add_argument("--markers", type=_positive, help="text mode: marker genes per type (default 25 for "
                                                             "knowledge, 10 for the text-space markers)")
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
