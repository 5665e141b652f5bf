"""The gene table's rows in a data set's gene order, restricted to its gene set, with the coverage report."""

from __future__ import annotations

import numpy as np

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.data.gene_selection import GeneSet
from scelmo_desktop.core.data.io import Expression
from scelmo_desktop.core.embedding.gene_table import ENSEMBL_PATTERN, Alignment, GeneTable, align, looks_ensembl
from scelmo_desktop.core.embedding.symbols import data_symbols


def gene_alignment(
    expression: Expression, table: GeneTable, *, symbol_column: str | None = None, totals: np.ndarray | None = None
) -> tuple[Alignment, dict]:
    """The table's rows in the data's gene order, and the coverage report; raises when no gene matches."""
    symbols = data_symbols(expression, symbol_column)
    alignment = align(table, expression.var_names, expression.var, symbol_column, symbols=symbols)
    coverage = alignment.coverage(expression.var_names, totals)
    if looks_ensembl(expression.var_names):
        coverage["ensembl_ids_unmapped"] = sum(bool(ENSEMBL_PATTERN.match(s)) for s in symbols)
    if coverage["n_matched"] == 0:
        raise ScelmoError(
            f"None of the {alignment.n_genes} genes in the data match the {len(table.symbols)} symbols of the gene "
            "table (exact, case-insensitive or symbol column). Check that var_names hold gene symbols, or set "
            "the symbol column setting to the var column that does."
        )
    return alignment, coverage


def restrict_to_gene_set(alignment: Alignment, gene_set: GeneSet | None) -> Alignment:
    """Keep table rows only for the ``gene_set`` (None: every gene): a table that knows more genes (an imported
    GenePT table) must not pull the embedding back onto the noise genes."""
    if gene_set is None or gene_set.is_every_gene:
        return alignment
    if gene_set.total != alignment.n_genes:
        raise ValueError(
            f"the gene set is of a matrix with {gene_set.total} genes, the alignment has {alignment.n_genes}"
        )
    return alignment.keep(gene_set.mask())


def gene_set_coverage(alignment: Alignment, gene_set: GeneSet | None, totals: np.ndarray) -> dict:
    """The gene set the embedding is built on: its size, how many of its genes have a vector, its share of
    the expression."""
    size = alignment.n_genes if gene_set is None else min(gene_set.size, alignment.n_genes)
    matched = alignment.matched
    share = float(totals[matched].sum() / totals.sum()) if totals.sum() > 0 else 0.0
    return {"gene_set": {"size": int(size), "with_vector": int(matched.sum()), "fraction_expression": share}}


def align_expression(table: GeneTable, expression: Expression, symbol_column: str | None = None) -> Alignment:
    """The table's rows in ``expression``'s gene order, matching by symbol; Ensembl ids are mapped to symbols
    first (an Ensembl-indexed file would otherwise match no gene)."""
    return align(
        table, expression.var_names, expression.var, symbol_column, symbols=data_symbols(expression, symbol_column)
    )
