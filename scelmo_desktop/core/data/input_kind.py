"""What kind of values a matrix holds, and the preparation every scELMo step expects from it.

Real files arrive as raw counts (10x), log-normalised values (scanpy's ``log1p`` after ``normalize_total``),
normalised-but-not-logged values (TPM, CPM) or scaled values (z-scores, with negatives). Every step downstream
(gene selection, the weighted average, the adaptor, the PCA baseline) works on log-normalised values, the
scanpy convention, so counts and TPM/CPM are library-size normalised to 10,000 and ``log1p``-transformed on a
copy; log values are used as they are; scaled values cannot be averaged by expression and are refused.

Detection reads a sample of the non-zero values: negatives mean scaled; whole numbers mean counts; other
values above :data:`LOG_MAX` cannot come from a log transform (log1p of a 10^4-normalised cell stays under ~10,
log2(TPM+1) under ~20), so they are normalised values; the rest is log-normalised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from scelmo_desktop.core._infra.errors import ScelmoError

INPUT_KINDS = ("counts", "normalized", "log", "scaled")
CHOICES = ("auto", "counts", "normalized", "log")  # what a user may declare; "log" means: use as it is
LOG_MAX = 50.0
TARGET_SUM = 1e4
SAMPLE_VALUES = 200_000
DESCRIPTIONS = {
    "counts": "raw counts",
    "normalized": "normalised values, not log-transformed (TPM/CPM-like)",
    "log": "log-normalised values",
    "scaled": "scaled values",
}


@dataclass(frozen=True)
class InputKind:
    """The detected (or declared) kind of a matrix and the preparation applied to it."""

    kind: str
    declared: bool
    evidence: str
    preparation: str

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "declared": self.declared,
            "evidence": self.evidence,
            "preparation": self.preparation,
        }

    def summary(self) -> str:
        how = "declared" if self.declared else "detected"
        return f"{DESCRIPTIONS[self.kind]} ({how}: {self.evidence}); {self.preparation}"


def _sample(matrix) -> np.ndarray:
    values = matrix.data if sp.issparse(matrix) else np.asarray(matrix).ravel()
    if values.size > SAMPLE_VALUES:  # evenly spread, deterministic: the same file is always read the same way
        values = values[:: values.size // SAMPLE_VALUES]
    return np.asarray(values, dtype=np.float64)


def detect_input_kind(matrix) -> tuple[str, str]:
    """``(kind, evidence)`` for a cells x genes matrix; ``kind`` is one of :data:`INPUT_KINDS`."""
    values = _sample(matrix)
    values = values[values != 0]
    if values.size == 0:
        return "counts", "no non-zero value"
    minimum, maximum = float(values.min()), float(values.max())
    if minimum < 0:
        return "scaled", f"minimum {minimum:.3g} < 0"
    if np.all(np.mod(values, 1) == 0):
        return "counts", f"whole numbers, maximum {maximum:.0f}"
    if maximum > LOG_MAX:
        return "normalized", f"non-integer values up to {maximum:.3g}, beyond any log scale"
    return "log", f"non-integer values, maximum {maximum:.3g}"


def log_normalize(matrix):
    """Library-size normalisation to :data:`TARGET_SUM` per cell, then ``log1p`` (scanpy's convention), on a
    copy; all-zero cells stay zero."""
    matrix = (
        sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        if sp.issparse(matrix)
        else np.array(matrix, dtype=np.float32)
    )
    totals = np.asarray(matrix.sum(axis=1)).ravel()
    scale = np.where(totals > 0, TARGET_SUM / np.where(totals > 0, totals, 1.0), 0.0).astype(np.float32)
    if sp.issparse(matrix):
        matrix.data *= np.repeat(scale, np.diff(matrix.indptr))
        np.log1p(matrix.data, out=matrix.data)
    else:
        matrix *= scale[:, None]
        np.log1p(matrix, out=matrix)
    return matrix


SCALED_HINT = "Use the counts or log-normalised values instead (the layer setting: raw, or a counts layer)."


def prepare(matrix, declared: str = "auto", *, what: str = "the matrix", scaled_hint: str = SCALED_HINT):
    """Return ``(log-normalised matrix, InputKind)``; ``declared`` overrides detection (:data:`CHOICES`), except
    that scaled values are refused whatever is declared, with ``scaled_hint`` saying where to find others."""
    if declared not in CHOICES:
        raise ScelmoError(f"Unknown input kind '{declared}'; use one of {', '.join(CHOICES)}.")
    detected, evidence = detect_input_kind(matrix)
    kind = effective_kind(detected, declared)
    if kind == "scaled":
        raise ScelmoError(
            f"{what} has negative values ({evidence}), so it holds scaled values: expression cannot be averaged "
            f"from z-scores, whatever input kind is declared. {scaled_hint}"
        )
    if declared != "auto":
        evidence = f"{evidence}; declared {declared}"
    prepared = matrix if kind == "log" else log_normalize(matrix)
    return prepared, InputKind(kind, declared != "auto", evidence, preparation_for(kind))


def effective_kind(detected: str, declared: str = "auto") -> str:
    """The kind a matrix is treated as: the declared one, except that scaled values stay scaled (no declaration
    makes z-scores averageable)."""
    return detected if declared == "auto" or detected == "scaled" else declared


def preparation_for(kind: str) -> str:
    """What :func:`prepare` does with a matrix of ``kind``, in words."""
    if kind == "scaled":
        return "refused: use counts or log-normalised values"
    return "used as it is" if kind == "log" else f"normalised to {TARGET_SUM:,.0f} per cell, then log1p"
