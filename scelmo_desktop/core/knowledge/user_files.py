"""Knowledge files users bring: NCBI ``gene_info``, GenePT's ``NCBI_cleaned_summary_of_genes.json``, a UniProt
TSV export, or a plain two-column CSV/TSV (symbol, text). Each becomes symbol → text with a named source."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.provenance import sha256_file


@dataclass
class UserKnowledge:
    """A user's knowledge file as gene symbol → text, with its source (name, format, file, sha256, gene count)."""

    texts: dict[str, str]
    source: dict  # name, format, file, sha256

    def text_for(self, symbol: str) -> str | None:
        return self.texts.get(symbol) or self.texts.get(symbol.upper())


def _clean(value) -> str:
    return "" if pd.isna(value) or str(value).strip() in ("", "-") else " ".join(str(value).split())


def load_user_knowledge(path: str | Path) -> UserKnowledge:
    """Read a knowledge file (.json: GenePT symbol → text; .csv or tab-separated: NCBI gene_info, UniProt TSV or
    a symbol/text table); refuses a file with no gene texts."""
    path = Path(path)
    if not path.is_file():
        raise ScelmoError(f"Knowledge file not found: {path}.")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ScelmoError(f"{path}: expected a JSON object of gene symbol -> text (GenePT format).")
            texts, kind = {str(k): _clean(v) for k, v in data.items()}, "json symbol->text (GenePT)"
        else:
            sep = "," if path.suffix.lower() == ".csv" else "\t"
            frame = pd.read_csv(path, sep=sep, dtype=str, comment=None)
            texts, kind = _from_frame(frame, path)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ScelmoError(f"Could not read knowledge file {path}: {exc}") from exc
    texts = {symbol: text for symbol, text in texts.items() if symbol and text}
    if not texts:
        raise ScelmoError(f"{path}: no gene texts found; expected gene_info, GenePT JSON, UniProt TSV or symbol,text.")
    return UserKnowledge(
        texts, {"name": path.stem, "format": kind, "file": str(path), "sha256": sha256_file(path), "genes": len(texts)}
    )


def _from_frame(frame: pd.DataFrame, path: Path) -> tuple[dict[str, str], str]:
    columns = {c.lstrip("#").strip(): c for c in frame.columns}
    if "Symbol" in columns and "description" in columns:  # NCBI gene_info
        texts = {}
        for _, row in frame.iterrows():
            parts = [_clean(row[columns["description"]])]
            for label, column in (("type", "type_of_gene"), ("location", "map_location"), ("synonyms", "Synonyms")):
                if column in columns and _clean(row[columns[column]]):
                    parts.append(f"{label}: {_clean(row[columns[column]]).replace('|', ', ')}")
            texts[_clean(row[columns["Symbol"]])] = "; ".join(p for p in parts if p) + "."
        return texts, "NCBI gene_info"
    function = next((c for c in frame.columns if c.lower().startswith("function")), None)
    names = next((c for c in frame.columns if c.lower().startswith("gene names")), None)
    if function and names:  # UniProt TSV export: first gene name is the primary symbol
        return (
            {
                _clean(n).split(" ")[0]: _clean(f).removeprefix("FUNCTION: ")
                for n, f in zip(frame[names], frame[function])
                if _clean(n)
            },
            "UniProt TSV",
        )
    if frame.shape[1] >= 2:
        return dict(zip(frame.iloc[:, 0].map(_clean), frame.iloc[:, 1].map(_clean))), "symbol,text table"
    raise ScelmoError(f"{path}: unrecognised columns {list(frame.columns)}.")
