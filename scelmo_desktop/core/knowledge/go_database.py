"""GO annotations with evidence codes and GO term definitions from Bioconductor's two SQLite files, as Debian
ships them (``r-bioc-org.hs.eg.db``, ``r-bioc-go.db``; Artistic-2.0, GO data CC BY 4.0). R is not needed: the
files are plain SQLite, read-only.

``packaging/setup.sh`` puts them under ``.venv/share/scelmo-desktop/go`` on Debian/Ubuntu (``apt-get download``
+ ``dpkg-deb``), and says so when it cannot. They are also found where a normal ``apt-get install`` puts them,
or in the folder ``SCELMO_GO_DB`` names. Where they are absent (Windows, macOS, other Linux), gene sheets use
blitzgsea's GO process names (``function.py``), without definitions or molecular functions.

Only direct, non-IEA annotations are read (electronic inferences are the bulk of GO and the least specific), and
a gene's terms are ordered most specific first: the fewest genes annotated directly to the term. The
molecular functions and definitions are read too (``definition()``); the gene sheets use the processes only,
as the functions and definitions measured worse there (``facts.function_sentences``).
"""

from __future__ import annotations

import os
import sqlite3
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from scelmo_desktop.core.knowledge.sources import source_record

GENES_FILE, TERMS_FILE = "org.Hs.eg.sqlite", "GO.sqlite"
DEBIAN_PACKAGES = {GENES_FILE: "r-bioc-org.hs.eg.db", TERMS_FILE: "r-bioc-go.db"}
LICENCE = "Artistic-2.0; GO data CC BY 4.0"
SYSTEM_PATHS = {
    GENES_FILE: Path("/usr/lib/R/site-library/org.Hs.eg.db/extdata") / GENES_FILE,
    TERMS_FILE: Path("/usr/lib/R/site-library/GO.db/extdata") / TERMS_FILE,
}


def go_database_folder() -> Path:
    """Where the set-up puts the two files (inside the environment, never in the repository)."""
    return Path(sys.prefix) / "share" / "scelmo-desktop" / "go"


def go_database_files() -> dict[str, Path] | None:
    """The two SQLite files: from ``SCELMO_GO_DB``, the set-up's folder, or a system install; None if absent."""
    folders = [Path(os.environ["SCELMO_GO_DB"])] if os.environ.get("SCELMO_GO_DB") else []
    folders.append(go_database_folder())
    for folder in folders:
        if (folder / GENES_FILE).is_file() and (folder / TERMS_FILE).is_file():
            return {GENES_FILE: folder / GENES_FILE, TERMS_FILE: folder / TERMS_FILE}
    if all(path.is_file() for path in SYSTEM_PATHS.values()):
        return dict(SYSTEM_PATHS)
    return None


@dataclass
class GODatabase:
    """Per gene symbol: GO biological processes and molecular functions (non-IEA, most specific first); per
    term name its definition; the two files' provenance."""

    processes: dict[str, list[str]]
    functions: dict[str, list[str]]
    definitions: dict[str, str]
    sources: list[dict] = field(default_factory=list)

    @classmethod
    def load(cls) -> GODatabase | None:
        """The installed databases, read once per process; None when they are not installed."""
        return _load()

    def definition(self, term: str) -> str:
        """The first sentence of ``term``'s GO definition ("" when GO has none)."""
        text = self.definitions.get(term, "")
        return text.split(". ")[0].rstrip(".") + "." if text else ""


def _version(folder: Path, package: str) -> str:
    """The Debian version the set-up wrote beside the files (``VERSIONS``: ``package version`` lines)."""
    versions = folder / "VERSIONS"
    if versions.is_file():
        for line in versions.read_text(encoding="utf-8").splitlines():
            name, _, version = line.partition(" ")
            if name == package:
                return version.strip()
    return "unknown"


def _per_gene(db: sqlite3.Connection, table: str, names: dict[str, str]) -> dict[str, list[str]]:
    rows = db.execute(
        f"SELECT DISTINCT i.symbol, a.go_id FROM gene_info i JOIN {table} a ON a._id = i._id WHERE a.evidence != 'IEA'"
    ).fetchall()
    size: dict[str, int] = {}
    for _, go_id in rows:
        size[go_id] = size.get(go_id, 0) + 1
    per_gene: dict[str, list[tuple[int, str]]] = {}
    for symbol, go_id in rows:
        if go_id in names:
            per_gene.setdefault(symbol, []).append((size[go_id], names[go_id]))
    return {symbol: [name for _, name in sorted(set(terms))] for symbol, terms in per_gene.items()}


@lru_cache(maxsize=1)
def _load() -> GODatabase | None:
    files = go_database_files()
    if files is None:
        return None
    terms = sqlite3.connect(f"file:{files[TERMS_FILE]}?mode=ro", uri=True)
    genes = sqlite3.connect(f"file:{files[GENES_FILE]}?mode=ro", uri=True)
    try:
        rows = terms.execute("SELECT go_id, term, ontology, definition FROM go_term").fetchall()
        names = {go_id: term for go_id, term, _, _ in rows}
        definitions = {term: definition or "" for _, term, _, definition in rows}
        processes = _per_gene(genes, "go_bp", names)
        functions = _per_gene(genes, "go_mf", names)
    finally:
        terms.close()
        genes.close()
    sources = [
        source_record(
            DEBIAN_PACKAGES[name], path, licence=LICENCE, version=_version(path.parent, DEBIAN_PACKAGES[name])
        )
        for name, path in files.items()
    ]
    return GODatabase(processes=processes, functions=functions, definitions=definitions, sources=sources)
