"""What a gene does, from curated sets shipped inside packages and read at run time: GO biological processes
(``blitzgsea``'s Enrichr GO_Biological_Process_2023, Apache-2.0 with GO data CC BY 4.0) and canonical
pathways and hallmarks (``pegasuspy``'s MSigDB v7.5.1 c2.cp and h.all, BSD-3 under the MSigDB terms; the
academic-only KEGG sets are left out).

A gene's processes are ordered most specific first (the smallest sets), so a short sheet names what the gene
is known for ("B cell proliferation") before what half the genome shares ("regulation of cellular process").
Without the packages :meth:`GeneFunction.load` returns None and sheets stay as they were.

Where Bioconductor's GO databases are installed (``go_database.py``; Debian/Ubuntu), their direct, non-IEA
processes replace blitzgsea's: they are more specific, and raise marker → cell-type retrieval
(benchmarks/gene_text_quality.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from scelmo_desktop.core.knowledge.sources import package_file, source_record

GO_FILE = ("blitzgsea", "blitzgsea", "data/GO_Biological_Process_2023", "Apache-2.0; GO data CC BY 4.0")
PATHWAY_FILES = (
    ("pegasuspy", "pegasus", "data_files/c2.cp.v7.5.1.symbols.gmt", "BSD-3-Clause; MSigDB terms"),
    ("pegasuspy", "pegasus", "data_files/h.all.v7.5.1.symbols.gmt", "BSD-3-Clause; MSigDB terms"),
)
GO_ID = re.compile(r"\s*\(GO:\d+\)\s*$")
# KEGG's licence is academic-use only; the other collections of c2.cp are free to use with attribution
PATHWAY_COLLECTIONS = {
    "REACTOME": "Reactome",
    "WP": "WikiPathways",
    "BIOCARTA": "BioCarta",
    "PID": "PID",
    "HALLMARK": "hallmark",
}
ACRONYMS = {
    "dna",
    "rna",
    "mrna",
    "trna",
    "rrna",
    "atp",
    "gtp",
    "nadh",
    "tcr",
    "bcr",
    "mhc",
    "nk",
    "il",
    "tnf",
    "nfkb",
    "tgf",
    "egfr",
    "erbb",
    "mapk",
    "pi3k",
    "akt",
    "mtor",
    "jak",
    "stat",
    "wnt",
    "vegf",
    "fgfr",
    "gpcr",
    "er",
    "ifn",
    "cd28",
    "ctla4",
    "pd1",
    "tlr",
    "nod",
    "rig",
    "cgas",
    "sting",
    "ecm",
    "g1",
    "g2",
    "m",
    "s",
    "p53",
    "rho",
    "ras",
    "raf",
    "hiv",
    "sars",
    "cov",
    "ii",
    "iii",
    "i",
}


def read_gmt(path: Path) -> dict[str, list[str]]:
    """Gene sets of a GMT file: ``{set name: [genes]}`` (the second column, a URL or empty, is ignored)."""
    sets = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.rstrip("\n").split("\t")
        if len(fields) > 2:
            sets[fields[0]] = [g for g in fields[2:] if g]
    return sets


def go_term_name(raw: str) -> str:
    """``"B Cell Activation (GO:0042113)"`` → ``"B cell activation"`` (Enrichr capitalises every word)."""

    def part(word: str) -> str:
        # a capital after the first letter marks a name to keep (CD4, NK, mRNA, G1/S); B and T name cells
        letters = word.lstrip("'\"(")
        return word if any(c.isupper() for c in letters[1:]) or letters in ("B", "T") else word.lower()

    return " ".join("-".join(part(p) for p in word.split("-")) for word in GO_ID.sub("", raw).split(" "))


def pathway_name(raw: str) -> str | None:
    """``"REACTOME_TCR_SIGNALING"`` → ``"TCR signaling (Reactome)"``; None for collections left out (KEGG)."""
    collection, _, rest = raw.partition("_")
    label = PATHWAY_COLLECTIONS.get(collection)
    if label is None or not rest:
        return None
    words = [w if w.lower() in ACRONYMS or any(c.isdigit() for c in w) else w.lower() for w in rest.split("_")]
    words = [w.upper() if w.lower() in ACRONYMS else w for w in words]
    text = " ".join(words)
    return f"{text[0].upper()}{text[1:]} ({label})"


@dataclass
class GeneFunction:
    """Per gene: GO biological processes and pathways (most specific first), and where they came from."""

    processes: dict[str, list[str]]
    pathways: dict[str, list[str]]
    sources: list[dict] = field(default_factory=list)

    @classmethod
    def load(cls) -> GeneFunction | None:
        """The installed sources, read once per process; None when none of them is installed."""
        return _load()

    def processes_of(self, symbol: str, n: int | None = None) -> list[str]:
        return self.processes.get(symbol, [])[:n]

    def pathways_of(self, symbol: str, n: int | None = None) -> list[str]:
        return self.pathways.get(symbol, [])[:n]


def _by_specificity(sets: dict[str, list[str]], name) -> dict[str, list[str]]:
    per_gene: dict[str, list[tuple[int, str]]] = {}
    for raw, genes in sets.items():
        label = name(raw)
        if label is None:
            continue
        for gene in genes:
            per_gene.setdefault(gene, []).append((len(genes), label))
    return {gene: [label for _, label in sorted(set(terms))] for gene, terms in per_gene.items()}


@lru_cache(maxsize=1)
def _load() -> GeneFunction | None:
    from scelmo_desktop.core.knowledge.go_database import GODatabase

    sources, processes, pathway_sets = [], {}, {}
    database = GODatabase.load()
    distribution, package, relative, licence = GO_FILE
    go = package_file(package, relative)
    if database is not None:
        processes = database.processes
        sources.extend(database.sources)
    elif go is not None:
        processes = _by_specificity(read_gmt(go), go_term_name)
        sources.append(source_record(distribution, go, licence=licence))
    for distribution, package, relative, licence in PATHWAY_FILES:
        path = package_file(package, relative)
        if path is not None:
            pathway_sets.update(read_gmt(path))
            sources.append(source_record(distribution, path, licence=licence))
    if not sources:
        return None
    return GeneFunction(processes=processes, pathways=_by_specificity(pathway_sets, pathway_name), sources=sources)
