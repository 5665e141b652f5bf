"""Which human genes a data set's var names are: symbols, Ensembl ids mapped through the gene catalog, and the
checks that refuse a file whose genes are not recognised (another species or an unknown id scheme)."""

from __future__ import annotations

import re

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.data.io import Expression
from scelmo_desktop.core.embedding.gene_table import ENSEMBL_PATTERN, gene_symbols, looks_ensembl

ID_COLUMNS = ("gene_ids", "gene_id", "ensembl_id")  # var columns holding each gene's Ensembl id (Cell Ranger's first)


def data_symbols(expression: Expression, symbol_column: str | None = None) -> list[str]:
    """Gene symbols of the data; Ensembl ids without a symbol column are mapped through the gene catalog, and
    symbols the catalog does not know are replaced by the current symbol of their Ensembl id when ``var`` has
    one (:func:`current_symbols`)."""
    mapper = None
    if symbol_column is None and looks_ensembl(expression.var_names):
        from scelmo_desktop.core.knowledge.genes import GeneCatalog

        catalog = GeneCatalog.load()
        mapper = catalog.symbol_for_ensembl if catalog is not None else None
    symbols = gene_symbols(expression.var_names, expression.var, symbol_column, ensembl_to_symbol=mapper)
    if mapper is None:
        symbols = current_symbols(symbols, expression.var)
    if looks_ensembl(expression.var_names) and all(ENSEMBL_PATTERN.match(s) for s in symbols):
        raise ScelmoError(
            "The genes are Ensembl ids and none of them could be mapped to a gene symbol ("
            + (
                "the gene catalog knows none of them"
                if mapper
                else "the knowledge extra with the gene catalog is not installed"
            )
            + "). Set the symbol column setting to the var column with symbols, or install the "
            "knowledge extra."
        )
    return symbols


def current_symbols(symbols: list[str], var) -> list[str]:
    """``symbols`` with each one the gene catalog does not know replaced by the current symbol of the gene's
    Ensembl id (a var column of :data:`ID_COLUMNS`), unless that symbol is already in use. Older Cell Ranger
    references name genes by retired symbols (IL8, IGJ, SDPR) and clone names (RP11-…); the id is the same gene,
    so it gets the current gene's knowledge (and its prebuilt vector) rather than a bare "Gene IL8."."""
    column = next((c for c in ID_COLUMNS if var is not None and c in var.columns), None)
    if column is None:
        return symbols
    from scelmo_desktop.core.knowledge.genes import GeneCatalog

    catalog = GeneCatalog.load()
    if catalog is None:
        return symbols
    used, current = set(symbols), list(symbols)
    for position, (symbol, gene_id) in enumerate(zip(symbols, var[column].astype(str))):
        if catalog.resolve(symbol)[0] is not None or not ENSEMBL_PATTERN.match(gene_id):
            continue
        renamed = catalog.symbol_for_ensembl(gene_id)
        if renamed is not None and renamed not in used:
            current[position] = renamed
            used.add(renamed)
    return current


def catalog_spelling(symbols: list[str]) -> list[str]:
    """``symbols`` with each one the gene catalog knows only when case is ignored written as the catalog writes it
    (mouse and rat ``Cd3e`` -> ``CD3E``, the human namesake the knowledge describes, as :func:`species_note` says);
    the others unchanged, and all of them unchanged without the catalog. A spelling another gene of the data already
    has is not taken (two genes would share a name). The curated marker tables key their genes by the human
    spelling, so cell-type naming reads the data's genes through this."""
    from scelmo_desktop.core.knowledge.genes import GeneCatalog

    catalog = GeneCatalog.load()
    if catalog is None:
        return list(symbols)
    used, spelled = set(symbols), []
    for symbol in symbols:
        record, how = catalog.resolve(symbol)
        if how == "case-insensitive" and record.symbol not in used:
            used.add(record.symbol)
            symbol = record.symbol
        spelled.append(symbol)
    return spelled


# Below this share of recognised genes a file is not human symbols/Ensembl ids (another species, or ids of some
# other scheme): its fact sheets would all be "Gene X." and the embedding noise, so it is refused.
MIN_RECOGNISED_FRACTION = 0.2


MOUSE_STYLE = re.compile(r"^[A-Z][a-z][a-z0-9]*$")  # Cd79a, Lyz2: mouse/rat symbols; human ones are upper case


def species_note(symbols: list[str]) -> str | None:
    """A warning when most gene symbols are written the mouse way: the knowledge is human, so each gene is
    described by its human namesake (a fair guess for most orthologs, wrong for some)."""
    named = [s for s in symbols if any(c.isalpha() for c in s)]
    if named and sum(bool(MOUSE_STYLE.match(s)) for s in named) > 0.5 * len(named):
        return (
            "most gene symbols are written the mouse/rat way (e.g. "
            + ", ".join([s for s in named if MOUSE_STYLE.match(s)][:3])
            + "); the knowledge is human, so each gene is "
            "described by its human namesake"
        )
    return None


def recognised_genes(symbols: list[str]) -> tuple[int, list[str]] | None:
    """How many ``symbols`` the gene catalog knows, and examples of unknown ones; None without the catalog."""
    from scelmo_desktop.core.knowledge.genes import GeneCatalog

    catalog = GeneCatalog.load()
    if catalog is None:
        return None
    unknown = [s for s in symbols if catalog.resolve(s)[0] is None]
    return len(symbols) - len(unknown), unknown[:5]


def require_known_genes(gene_set: list[str], *, total: int) -> None:
    """Refuse a gene set the catalog barely knows (no human symbols or Ensembl ids), naming what to do."""
    found = recognised_genes(gene_set)
    if found is None or not gene_set:
        return
    known, examples = found
    if known >= MIN_RECOGNISED_FRACTION * len(gene_set):
        return
    raise ScelmoError(
        f"Only {known} of the {len(gene_set)} selected genes (of {total}) are recognised as human gene symbols or "
        f"Ensembl ids (unrecognised examples: {', '.join(examples)}). Point the symbol column setting at the var "
        "column that holds gene symbols, or check the species: the knowledge covers human genes."
    )
