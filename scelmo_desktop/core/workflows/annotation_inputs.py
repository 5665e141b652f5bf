"""What a door settles before an annotation run: the reference and query (a split of one file), and whether
the run needs the text embedder."""

from __future__ import annotations

import numpy as np

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.data.io import label_values


def resolved_text_scoring(text_scoring: str) -> str:
    """``auto``: the curated markers when the knowledge extra has them (far more accurate than the text-space
    markers: benchmarks/no_reference_annotation.py), else the text-space markers."""
    if text_scoring != "auto":
        return text_scoring
    from scelmo_desktop.core.knowledge.markers import CellMarkers

    return "knowledge" if CellMarkers.load() is not None else "markers"


def needs_embedder(mode: str, text_scoring: str, *, has_table: bool) -> bool:
    """Whether an annotation run embeds text: the curated-marker scoring does not, nor a run given a table."""
    if mode == "text":
        return resolved_text_scoring(text_scoring) != "knowledge"
    return not has_table


def stratified_split(adata, label_key: str, *, query_fraction: float = 0.3, seed: int = 0):
    """A labelled file as reference and query: ``query_fraction`` of each label's cells become the query
    (the app's "split this file"); returns the reference, the query and the query's cell positions."""
    from sklearn.model_selection import train_test_split

    positions = np.arange(adata.n_obs)
    reference_at, query_at = train_test_split(
        positions, test_size=query_fraction, random_state=seed, stratify=label_values(adata, label_key)
    )
    return adata[reference_at].copy(), adata[query_at].copy(), query_at


def split_by_column(adata, column: str, reference_value: str):
    """One file holding both: cells whose ``obs[column] == reference_value`` are the reference."""
    if column not in adata.obs.columns:
        raise ScelmoError(
            f"Split column '{column}' is not in obs; available: {', '.join(map(str, adata.obs.columns))}."
        )
    is_reference = adata.obs[column].astype(str).to_numpy() == reference_value
    if is_reference.all() or not is_reference.any():
        raise ScelmoError(f"Splitting by {column} == '{reference_value}' leaves an empty reference or query.")
    return adata[is_reference].copy(), adata[~is_reference].copy()
