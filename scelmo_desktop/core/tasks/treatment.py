"""In-silico treatment (METHOD.md §3.5), made rigorous.

Protocol per seed: split the control and disease cells 80/20 (stratified, ``random_state=seed``); train the
adaptor on the condition labels of the training cells (40 epochs, no early stopping, as the original); on the
held-out cells take the mean z of control and of disease cells and their cosine similarity CS0. Knocking out
(or scaling by ``scale``) gene g in the held-out disease cells moves their mean z by −(1 − scale)·x̄_g·E'_g (z is
linear in expression), giving CS_g and Δ_g = CS_g − CS0: a positive Δ means removing the gene makes disease cells
look more like control. Δ is computed this way for every gene at once.

What the original lacks, added here:
* repeats over seeds (new split and new adaptor each), reported as mean ± s.d. of Δ;
* a permutation null: for each candidate, the seed-averaged Δ of all non-candidate genes in the same decile of
  mean expression in disease cells (a gene's Δ scales with it, so the null must match it); empirical
  p = (1 + #{null Δ ≥ Δ_g}) / (1 + n_null);
* a ranked table (CSV, with Benjamini–Hochberg q-values over the candidates) and a plot.

Reading the p-value: it asks whether knocking the gene out moves disease cells towards control more than
knocking out a random gene of the same expression level. Default candidates were *selected* as the most
differential genes, which random genes were not, so modest p-values among weakly differential candidates are
expected even without a real effect; rank and effect size matter as much as p.

Candidates: the ``n_candidates`` genes most up in disease (Welch t on the log-normalised expression, the
test scanpy's ``rank_genes_groups`` runs by default), or the user's list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import CancelFlag, check_cancel
from scelmo_desktop.core.settings import default

N_BINS, MIN_NULL = 10, 50


@dataclass
class TreatmentResult:
    """The ranked candidate table, the baseline control–disease cosine per seed and the run settings."""

    table: pd.DataFrame  # one row per candidate gene, ranked by mean Δ
    cs0: list[float]  # baseline control–disease cosine per seed
    settings: dict = field(default_factory=dict)


def _column_means(X, rows) -> np.ndarray:
    block = X[rows]
    return np.asarray(block.mean(axis=0)).ravel()


def welch_t(X, group_a, group_b) -> np.ndarray:
    """Welch t statistic per gene, group a versus group b (positive: higher in a)."""
    stats = []
    for rows in (group_a, group_b):
        block = X[rows]
        mean = np.asarray(block.mean(axis=0)).ravel()
        sq = np.asarray(block.multiply(block).mean(axis=0)).ravel() if sp.issparse(block) else (block**2).mean(axis=0)
        var = np.maximum(sq - mean**2, 0) * len(rows) / max(len(rows) - 1, 1)
        stats.append((mean, var, len(rows)))
    (ma, va, na), (mb, vb, nb) = stats
    return (ma - mb) / np.sqrt(va / na + vb / nb + 1e-12)


def knockout_deltas(
    gene_vectors: np.ndarray,
    mean_expression_disease: np.ndarray,
    m_control: np.ndarray,
    m_disease: np.ndarray,
    *,
    scale: float = 0.0,
) -> tuple[np.ndarray, float]:
    """Δ cosine(mean control z, mean disease z) for knocking out (scale 0) or scaling each gene in disease."""

    def cosine(a, b):
        return (a @ b) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b), 1e-12)

    cs0 = float(cosine(m_disease, m_control))
    moved = m_disease[None, :] - (1.0 - scale) * mean_expression_disease[:, None] * gene_vectors
    return cosine(moved, m_control) - cs0, cs0


def empirical_p(delta: np.ndarray, candidates: np.ndarray, mean_expression: np.ndarray) -> np.ndarray:
    """Per candidate, p = (1 + #{null ≥ Δ}) / (1 + n_null) with the non-candidate genes of its expression bin
    (deciles; fewer, wider bins when there are under 500 non-candidate genes, so p can go below 0.02)."""
    is_candidate = np.zeros(len(delta), dtype=bool)
    is_candidate[candidates] = True
    # at most N_BINS bins, fewer on small gene sets so that every bin holds >= MIN_NULL null genes
    n_bins = int(np.clip((~is_candidate).sum() // MIN_NULL, 1, N_BINS))
    edges = np.quantile(mean_expression, np.linspace(0, 1, n_bins + 1)[1:-1])
    bins = np.digitize(mean_expression, edges)
    p = np.empty(len(candidates))
    for i, g in enumerate(candidates):
        null = delta[(bins == bins[g]) & ~is_candidate]
        p[i] = (1 + np.sum(null >= delta[g])) / (1 + len(null))
    return p


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values of ``p``, in the input order (monotone in p, capped at 1)."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p)
    scaled = p[order] * len(p) / np.arange(1, len(p) + 1)
    q = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty_like(p)
    out[order] = np.minimum(q, 1.0)
    return out


def _two_conditions(expression, conditions, control: str, disease: str):
    conditions = np.asarray(conditions).astype(str)
    for name in (control, disease):
        if not (conditions == name).any():
            raise ScelmoError(
                f"No cell has condition '{name}'; the column holds: {', '.join(sorted(set(conditions))[:20])}."
            )
    cells = np.flatnonzero(np.isin(conditions, [control, disease]))
    return sp.csr_matrix(expression.matrix)[cells], conditions[cells]


def top_candidates(expression, conditions, *, control: str, disease: str, n: int = 20) -> list[str]:
    """The ``n`` genes most up in disease versus control (Welch t)."""
    X, y = _two_conditions(expression, conditions, control, disease)
    t = welch_t(X, np.flatnonzero(y == disease), np.flatnonzero(y == control))
    return [str(expression.var_names[i]) for i in np.argsort(-np.nan_to_num(t, nan=-np.inf))[:n]]


def in_silico_treatment(
    expression,
    alignment,
    conditions,
    *,
    control: str,
    disease: str,
    candidates: list[str] | None = None,
    n_candidates: int = default("n_candidates"),
    seeds=(0, 1, 2),
    scale: float = 0.0,
    epochs: int = default("treatment_epochs"),
    test_fraction: float = 0.2,
    device: str = "cpu",
    progress=None,
    cancel: CancelFlag | None = None,
) -> TreatmentResult:
    """Rank ``candidates`` (default: the ``n_candidates`` top Welch-t genes) by mean Δ cosine over ``seeds``, each
    seed a new split and adaptor, with empirical p and BH q; candidates must be in the data and have a vector."""
    from sklearn.model_selection import train_test_split

    from scelmo_desktop.core.embedding.cell_vectors import genes_with_vectors
    from scelmo_desktop.core.tasks.adaptor import auto_batch_size, train_adaptor

    X, y = _two_conditions(expression, conditions, control, disease)
    given = bool(candidates)
    if candidates:
        in_data = set(map(str, expression.var_names))
        missing = [g for g in candidates if g not in in_data]
        if missing:
            raise ScelmoError(f"Candidate genes not in the data: {', '.join(missing[:10])}.")
    else:
        candidates = top_candidates(expression, conditions, control=control, disease=disease, n=n_candidates)
    # the adaptor learns from the genes with a vector (gene set + candidates); the null is drawn from them too
    X, E, kept = genes_with_vectors(X, alignment.matrix)
    genes = np.asarray(expression.var_names, dtype=object)[kept]
    index = {str(g): i for i, g in enumerate(genes)}
    undescribed = [g for g in candidates if g not in index]
    if undescribed:
        raise ScelmoError(f"Candidate genes without a gene-table vector: {', '.join(undescribed[:10])}.")
    chosen = np.array([index[g] for g in candidates])
    deltas, cs0s = [], []
    report = progress or (lambda *a: None)
    for done, seed in enumerate(seeds):
        check_cancel(cancel)
        report("treatment", done, len(seeds), f"seed {seed}: training the adaptor on conditions")
        train, test = train_test_split(np.arange(len(y)), test_size=test_fraction, random_state=seed, stratify=y)
        adaptor = train_adaptor(
            X[train],
            E,
            y[train],
            genes=list(genes),
            epochs=epochs,
            seed=seed,
            device=device,
            batch_size=auto_batch_size(len(train)),
            early_stopping=False,
            cancel=cancel,
        )
        z = adaptor.embed(X[test], E)
        is_disease = y[test] == disease
        delta, cs0 = knockout_deltas(
            adaptor.gene_vectors(E),
            _column_means(X[test], is_disease),
            z[~is_disease].mean(axis=0),
            z[is_disease].mean(axis=0),
            scale=scale,
        )
        deltas.append(delta)
        cs0s.append(cs0)
    report("treatment", len(seeds), len(seeds), "ranking")
    deltas = np.vstack(deltas)
    mean_delta = deltas.mean(axis=0)
    mean_expression = _column_means(X, np.flatnonzero(y == disease))  # Δ_g scales with the disease mean
    p = empirical_p(mean_delta, chosen, mean_expression)
    t = welch_t(X, np.flatnonzero(y == disease), np.flatnonzero(y == control))
    table = pd.DataFrame(
        {
            "gene": genes[chosen].astype(str),
            "delta_cosine": mean_delta[chosen],
            "delta_sd": deltas[:, chosen].std(axis=0, ddof=1) if len(seeds) > 1 else np.nan,
            "p_value": p,
            "q_value_bh": benjamini_hochberg(p),
            "mean_expression_disease": mean_expression[chosen],
            "t_disease_vs_control": t[chosen],
            "described": np.any(E[chosen] != 0, axis=1),
        }
    )
    table = table.sort_values(["delta_cosine", "gene"], ascending=[False, True]).reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return TreatmentResult(
        table=table,
        cs0=cs0s,
        settings={
            "control": control,
            "disease": disease,
            "seeds": list(seeds),
            "scale": scale,
            "epochs": epochs,
            "test_fraction": test_fraction,
            "n_candidates": len(chosen),
            "genes_in_model": int(len(genes)),
            "candidates_from": "given list" if given else "top Welch t (disease vs control)",
            "null": f"non-candidate genes in the same mean-expression bin (up to {N_BINS} bins, >= {MIN_NULL} genes each)",
        },
    )
