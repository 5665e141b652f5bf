"""GeneTable: one embedding vector per gene symbol, its provenance, and its alignment to a data set's genes.

Alignment (METHOD.md §2.1 uses exact matching only; we add two safer fallbacks and report each):
exact symbol match on ``var_names``, then case-insensitive, then a symbol column of ``var`` (for data indexed
by Ensembl ids). Genes still unmatched become zero rows and are listed in the coverage report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import CancelFlag, Progress, check_cancel, no_progress
from scelmo_desktop.core._infra.provenance import sha256_text
from scelmo_desktop.core.embedding.prebuilt import prebuilt_lookup
from scelmo_desktop.core.protocols import Embedder
from scelmo_desktop.core.text.store import Store

SYMBOL_COLUMNS = ("gene_symbols", "feature_name", "gene_symbol", "gene_name", "symbol", "gene_names")
ENSEMBL_PATTERN = re.compile(r"^ENS[A-Z]*G\d{6,}")
EMBED_BATCH = 64


@dataclass
class GeneTable:
    """Embedding vectors keyed by gene symbol. ``provenance`` says which models and prompt made them."""

    symbols: list[str]
    vectors: np.ndarray  # (n_symbols, d) float32
    provenance: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def as_dict(self) -> dict[str, np.ndarray]:
        return dict(zip(self.symbols, self.vectors))


@dataclass
class Alignment:
    """The table aligned to a data set's genes, plus the coverage report."""

    matrix: np.ndarray  # (n_genes, d); zero rows for genes with no embedding
    matched_symbol: list[str | None]  # which table symbol each gene matched, or None
    how: list[str]  # per gene: exact | case-insensitive | symbol-column:<col> | none

    @property
    def n_genes(self) -> int:
        return len(self.how)

    @property
    def matched(self) -> np.ndarray:
        return np.array([h != "none" for h in self.how], dtype=bool)

    def keep(self, mask: np.ndarray) -> Alignment:
        """The same alignment with the rows outside ``mask`` (one bool per gene) set to no match."""
        mask = np.asarray(mask, dtype=bool)
        return Alignment(
            matrix=np.where(mask[:, None], self.matrix, 0).astype(np.float32),
            matched_symbol=[m if k else None for m, k in zip(self.matched_symbol, mask)],
            how=[h if k else "none" for h, k in zip(self.how, mask)],
        )

    def coverage(self, var_names: list[str], expression_totals: np.ndarray | None = None) -> dict:
        """Counts per match kind, the fraction matched, and (optionally) the share of expression covered."""
        counts = pd.Series(self.how).value_counts().to_dict()
        matched = self.matched
        report = {
            "n_genes": self.n_genes,
            "n_matched": int(matched.sum()),
            "fraction_matched": float(matched.mean()) if self.n_genes else 0.0,
            "by_match_kind": {str(k): int(v) for k, v in counts.items()},
            "unmatched_examples": [g for g, m in zip(var_names, matched) if not m][:25],
        }
        if expression_totals is not None and expression_totals.sum() > 0:
            report["fraction_expression_covered"] = float(expression_totals[matched].sum() / expression_totals.sum())
        return report


def detect_symbol_column(var: pd.DataFrame) -> str | None:
    """The first column of ``var`` named like a gene-symbol column (:data:`SYMBOL_COLUMNS` order), or None."""
    for column in SYMBOL_COLUMNS:
        if column in var.columns:
            return column
    return None


def looks_ensembl(var_names: list[str]) -> bool:
    """Whether more than half of ``var_names`` are Ensembl gene ids (False for an empty list)."""
    return bool(var_names) and float(np.mean([bool(ENSEMBL_PATTERN.match(v)) for v in var_names])) > 0.5


def gene_symbols(
    var_names: list[str], var: pd.DataFrame, symbol_column: str | None = None, ensembl_to_symbol=None
) -> list[str]:
    """The symbol of each gene, used as the LLM entity: the index; or, when the index holds Ensembl ids, a
    symbol column of ``var`` (or the one the user names), else ``ensembl_to_symbol(id)`` (the gene catalog).
    Ids that cannot be mapped stay as they are (and are reported as unmatched)."""
    if symbol_column is None and looks_ensembl(var_names):
        symbol_column = detect_symbol_column(var)
        if symbol_column is None and ensembl_to_symbol is not None:
            return [ensembl_to_symbol(v) or v for v in var_names]
    if symbol_column is None:
        return list(var_names)
    if symbol_column not in var.columns:
        raise ScelmoError(
            f"Symbol column '{symbol_column}' is not in var; available columns: {', '.join(var.columns) or '(none)'}."
        )
    return [str(s) if pd.notna(s) and str(s) else v for s, v in zip(var[symbol_column], var_names)]


def align(
    table: GeneTable,
    var_names: list[str],
    var: pd.DataFrame | None = None,
    symbol_column: str | None = None,
    symbols: list[str] | None = None,
) -> Alignment:
    """Match each gene to the table: exact, case-insensitive, then its symbol (``symbols``, e.g. mapped from
    Ensembl ids, or a symbol column of ``var``)."""
    exact = {s: i for i, s in enumerate(table.symbols)}
    folded: dict[str, int] = {}
    for i, s in enumerate(table.symbols):
        folded.setdefault(s.upper(), i)
    column = symbol_column or (detect_symbol_column(var) if var is not None else None)
    column_values = list(var[column].astype(str)) if column is not None and var is not None else None
    if symbols is not None and column_values is None:
        column, column_values = "mapped", list(symbols)

    rows, matched_symbol, how = [], [], []
    for position, name in enumerate(var_names):
        index, kind = exact.get(name), "exact"
        if index is None:
            index, kind = folded.get(name.upper()), "case-insensitive"
        if index is None and column_values is not None:
            symbol = column_values[position]
            index = exact.get(symbol, folded.get(symbol.upper()))
            kind = f"symbol-column:{column}"
        rows.append(index)
        matched_symbol.append(table.symbols[index] if index is not None else None)
        how.append(kind if index is not None else "none")
    matrix = np.zeros((len(var_names), table.dim), dtype=np.float32)
    hits = [(g, i) for g, i in enumerate(rows) if i is not None]
    if hits:
        genes, indices = zip(*hits)
        matrix[list(genes)] = table.vectors[list(indices)]
    return Alignment(matrix=matrix, matched_symbol=matched_symbol, how=how)


def embedded_form(text: str) -> str:
    """The text as it is embedded: newlines and runs of spaces become one space, as the original did before
    embedding (METHOD.md §1.1)."""
    return " ".join(text.split())


def text_hash(text: str) -> str:
    """The key of a text's vector in every cache (the store, the prebuilt packs): sha256 of its embedded form."""
    return sha256_text(embedded_form(text))


def embed_texts(
    texts: dict[str, str],
    *,
    embedder: Embedder,
    store: Store,
    progress: Progress = no_progress,
    cancel: CancelFlag | None = None,
) -> tuple[GeneTable, dict]:
    """Embed each non-empty description into a GeneTable. A vector is looked up first in the store's cache, then
    in the prebuilt packs shipped for this embedder (:mod:`~scelmo_desktop.core.embedding.prebuilt`), both keyed
    by the text's hash and the embedder id; only texts neither holds are embedded, in batches of similar length, so each
    batch pads little.

    Returns the table and stats (``n_embedded`` new vectors, ``n_cached`` from the store, ``n_prebuilt`` from
    the packs, ``n_empty`` skipped answers, ``prebuilt`` the packs used).
    """
    usable = {symbol: text for symbol, text in texts.items() if text and text.strip()}
    hashes = {symbol: text_hash(text) for symbol, text in usable.items()}
    unique = sorted(set(hashes.values()))
    cached = store.get_embeddings(embedder.id, unique)
    prebuilt, packs = prebuilt_lookup(embedder.id, [h for h in unique if h not in cached])
    cached.update(prebuilt)
    todo = sorted({h: embedded_form(usable[s]) for s, h in hashes.items() if h not in cached}.items(), key=_by_length)
    total, done = len(todo), 0
    for batch in _alternating_ends([todo[i : i + EMBED_BATCH] for i in range(0, total, EMBED_BATCH)]):
        check_cancel(cancel)
        vectors = embedder.embed([text for _, text in batch])
        fresh = {h: v for (h, _), v in zip(batch, vectors)}
        store.put_embeddings(embedder.id, fresh)  # committed per batch: a crash keeps finished batches
        cached.update(fresh)
        done += len(batch)
        progress(done, total, "embedding descriptions")
    symbols = list(usable)
    vectors = np.stack([cached[hashes[s]] for s in symbols]) if symbols else np.zeros((0, embedder.dim), np.float32)
    n_prebuilt = sum(h in prebuilt for h in hashes.values())
    stats = {
        "n_embedded": total,
        "n_cached": len(usable) - total - n_prebuilt,
        "n_prebuilt": n_prebuilt,
        "n_empty": len(texts) - len(usable),
        "prebuilt": packs,
    }
    return GeneTable(
        symbols=symbols, vectors=vectors.astype(np.float32), provenance={"embedder": embedder.info()}
    ), stats


def _by_length(item: tuple[str, str]) -> tuple[int, str]:
    return len(item[1]), item[0]


def _alternating_ends(batches: list) -> list:
    """Length-sorted batches taken shortest, longest, second shortest, second longest, …: each batch still pads
    little, and the texts done track the work done, so the time left estimated from them holds (shortest first
    alone would promise a finish the long texts at the end then break)."""
    order = []
    low, high = 0, len(batches) - 1
    while low <= high:
        order.append(batches[low])
        if high != low:
            order.append(batches[high])
        low, high = low + 1, high - 1
    return order


def save_gene_table(table: GeneTable, path) -> None:
    """Write a table as ``.npz`` (symbols, vectors, provenance JSON). No pickle: safe to share."""
    import json

    from scelmo_desktop.core._infra.atomic import write_atomic

    def writer(tmp):
        with open(tmp, "wb") as handle:
            np.savez(
                handle,
                symbols=np.array(table.symbols, dtype=str),
                vectors=table.vectors,
                provenance=np.array(json.dumps(table.provenance, default=str)),
            )

    write_atomic(path, writer)


def load_gene_table(path) -> GeneTable:
    """Read a table written by :func:`save_gene_table` (no pickle allowed); refuses a missing file, a file
    without symbols and vectors, or vectors that do not match the symbols."""
    import json
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise ScelmoError(f"Gene table not found: {path}.")
    try:
        with np.load(path, allow_pickle=False) as data:
            symbols = [str(s) for s in data["symbols"]]
            vectors = np.asarray(data["vectors"], dtype=np.float32)
            provenance = json.loads(str(data["provenance"])) if "provenance" in data else {}
    except (ValueError, KeyError, OSError) as exc:
        raise ScelmoError(f"{path} is not a scELMo gene table (.npz with 'symbols' and 'vectors'): {exc}") from exc
    if vectors.ndim != 2 or vectors.shape[0] != len(symbols):
        raise ScelmoError(f"{path}: {len(symbols)} symbols but vectors of shape {vectors.shape}.")
    return GeneTable(symbols=symbols, vectors=vectors, provenance=provenance)
