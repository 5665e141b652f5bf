"""Describing as every door does it: a data set's gene set (or a list of genes), optionally its cell types,
in the settings' mode with its flag policy, knowledge files and LLM budget, and a CSV of what was written.

Writes no AnnData key: the texts go to the store (and, with ``out``, a CSV with one row per entity).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from scelmo_desktop.core._infra.atomic import write_text_atomic
from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, no_progress
from scelmo_desktop.core.data.gene_selection import GeneSet
from scelmo_desktop.core.data.io import label_values, select_expression
from scelmo_desktop.core.settings import PipelineSettings
from scelmo_desktop.core.text.describe import describe_cell_types, describe_gene_set, describe_genes_in_budget
from scelmo_desktop.core.text.gene_texts import GeneDescriptions
from scelmo_desktop.core.text.generation import DescribeResult


@dataclass
class DescribeOutcome:
    """What :func:`describe` made: the gene texts, the cell-type texts (None without a label column) and the mode."""

    genes: GeneDescriptions  # how each gene's text was made (mode, LLM or fact sheet, flags, edits)
    cell_types: DescribeResult | None
    mode: str  # the resolved description mode

    @property
    def n_llm_calls(self) -> int:
        return self.genes.n_llm_calls + (self.cell_types.n_llm_calls if self.cell_types else 0)

    @property
    def n_cached(self) -> int:
        return self.genes.n_cached + (self.cell_types.n_cached if self.cell_types else 0)

    def rows(self) -> pd.DataFrame:
        """One row per entity: name, kind, mode, the text used, what the LLM wrote, flags, hand edits."""
        genes = self.genes
        rows = [
            {
                "name": gene,
                "kind": "gene",
                "mode": "facts" if gene in genes.from_facts else self.mode,
                "text": text,
                "llm_text": genes.generated.get(gene, ""),
                "flags": ";".join(genes.flags.get(gene, [])),
                "edited": gene in genes.edited,
            }
            for gene, text in genes.texts.items()
        ]
        if self.cell_types is not None:
            rows += [
                {
                    "name": label,
                    "kind": "cell_type",
                    "mode": self.mode,
                    "text": text,
                    "llm_text": text if self.mode != "facts" else "",
                    "flags": "",
                    "edited": False,
                }
                for label, text in self.cell_types.texts.items()
            ]
        return pd.DataFrame(rows, columns=["name", "kind", "mode", "text", "llm_text", "flags", "edited"])


def describe(
    adata=None,
    *,
    settings: PipelineSettings,
    llm,
    store,
    genes: list[str] | None = None,
    cell_types_key: str | None = None,
    out: str | Path | None = None,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> DescribeOutcome:
    """Describe ``adata``'s gene set, or exactly ``genes`` when given (an empty list: none); with
    ``cell_types_key`` also each label of that obs column of ``adata``. Every text is stored as it finishes (a
    cancelled run keeps them); ``out`` gets the CSV."""
    if adata is None and genes is None:
        raise ScelmoError("Give either a data file or a list of genes to describe.")
    if cell_types_key and adata is None:
        raise ScelmoError("Describing cell types needs a data file with the label column.")
    if cell_types_key:
        label_values(adata, cell_types_key)  # a bad column fails before any LLM work
    if genes is None:
        expression = select_expression(adata, settings.layer, input_kind=settings.input_kind)
        gene_set = GeneSet.choose(expression.matrix, settings.max_genes)
        _, described = describe_gene_set(
            expression, gene_set, settings=settings, llm=llm, store=store, progress=progress, cancel=cancel
        )
    else:
        described = describe_genes_in_budget(
            [g for g in genes if g], settings=settings, llm=llm, store=store, progress=progress, cancel=cancel
        )
    cell_types = None
    if cell_types_key:
        cell_types = describe_cell_types(
            adata, cell_types_key, settings=settings, llm=llm, store=store, progress=progress, cancel=cancel
        )
    outcome = DescribeOutcome(genes=described, cell_types=cell_types, mode=settings.mode)
    if out is not None:
        write_text_atomic(out, outcome.rows().to_csv(index=False))
    return outcome
