"""Documented simulated data for the tasks no shipped data set covers: batches, a disease condition, Perturb-seq.

Every simulator is seeded, writes its parameters (and the planted truth) into ``uns['simulation']`` and returns
plain AnnData that the analysis code treats like any user file.

* :func:`simulate_batches`: cells are split into two batches (stratified by label); batch ``B`` gets a
  gene-specific multiplicative effect (log-normal, σ = ``effect_sd``) on the un-logged expression and a
  gene-specific extra dropout (rate ~ Beta(1, 9) × ``dropout_scale``): the kind of platform/protocol effect
  integration methods are meant to remove, while cell types stay the same.
* :func:`simulate_condition`: cells are split into ``control`` / ``disease`` (stratified by label); in disease
  cells ``n_planted`` moderately expressed genes are scaled up ``fold``-times (and switched on in a fraction of
  cells that had none): the planted disease genes an in-silico knock-out should find.
* :func:`simulate_perturbseq`: a sparse gene-regulatory network over genes of a gene table, wired so that a
  gene's regulators are preferentially genes with similar description embeddings (that is what makes LLM gene
  embeddings informative about unseen perturbations); single and double knock-downs propagate through it,
  counts are sampled and log-normalised.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

CONTROL = "control"


def _split_stratified(labels, fraction: float, rng) -> np.ndarray:
    """Boolean mask choosing ``fraction`` of the cells of every label."""
    labels = np.asarray(labels).astype(str)
    chosen = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        cells = np.flatnonzero(labels == label)
        chosen[rng.choice(cells, size=int(round(fraction * len(cells))), replace=False)] = True
    return chosen


def _dense(X) -> np.ndarray:
    return np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float32)


def _from_log_normalised(adata, layer: str):
    from scelmo_desktop.core.data.io import select_expression

    expression = select_expression(adata, layer)
    return _dense(expression.matrix), expression.var_names


def simulate_batches(
    adata, *, label_key: str, layer: str = "auto", effect_sd: float = 0.5, dropout_scale: float = 1.0, seed: int = 0
):
    """Two batches from one labelled log-normalised data set (see the module docstring)."""
    import anndata as ad

    rng = np.random.default_rng(seed)
    X, genes = _from_log_normalised(adata, layer)
    in_b = _split_stratified(adata.obs[label_key], 0.5, rng)
    factor = rng.lognormal(0.0, effect_sd, X.shape[1]).astype(np.float32)
    dropout = np.clip(rng.beta(1, 9, X.shape[1]) * dropout_scale, 0, 0.9).astype(np.float32)
    shifted = np.log1p(np.expm1(X[in_b]) * factor)
    shifted[rng.random(shifted.shape) < dropout] = 0.0
    X = X.copy()
    X[in_b] = shifted
    obs = adata.obs[[label_key]].copy()
    obs["batch"] = pd.Categorical(np.where(in_b, "B", "A"))
    out = ad.AnnData(X=sp.csr_matrix(X), obs=obs, var=pd.DataFrame(index=genes))
    out.uns["simulation"] = {
        "kind": "batches",
        "seed": seed,
        "effect_sd": effect_sd,
        "dropout_scale": dropout_scale,
        "batch_key": "batch",
        "label_key": label_key,
        "description": "batch B: per-gene log-normal multiplicative effect on expm1(x), "
        "per-gene extra dropout ~ Beta(1,9)*scale",
    }
    return out


def simulate_condition(
    adata,
    *,
    label_key: str | None = None,
    layer: str = "auto",
    n_planted: int = 10,
    fold: float = 3.0,
    switch_on: float = 0.3,
    seed: int = 0,
):
    """Control and disease cells with ``n_planted`` genes up in disease (see the module docstring)."""
    import anndata as ad

    rng = np.random.default_rng(seed)
    X, genes = _from_log_normalised(adata, layer)
    strata = adata.obs[label_key] if label_key else np.zeros(adata.n_obs)
    disease = _split_stratified(strata, 0.5, rng)
    detected = (X > 0).mean(axis=0)
    # moderately expressed genes: detected in 10–60 % of cells, so both up-scaling and switching on show
    pool = np.flatnonzero((detected > 0.1) & (detected < 0.6))
    planted = np.sort(rng.choice(pool, size=min(n_planted, len(pool)), replace=False))
    X = X.copy()
    block = np.expm1(X[np.ix_(disease, planted)]) * fold
    level = np.array([np.expm1(X[:, g][X[:, g] > 0]).mean() for g in planted], dtype=np.float32)
    switch = (block == 0) & (rng.random(block.shape) < switch_on)
    block[switch] = np.broadcast_to(level * fold, block.shape)[switch]
    X[np.ix_(disease, planted)] = np.log1p(block)
    obs = pd.DataFrame({"condition": pd.Categorical(np.where(disease, "disease", CONTROL))}, index=adata.obs_names)
    if label_key:
        obs[label_key] = adata.obs[label_key].to_numpy()
    out = ad.AnnData(X=sp.csr_matrix(X), obs=obs, var=pd.DataFrame(index=genes))
    out.uns["simulation"] = {
        "kind": "condition",
        "seed": seed,
        "fold": fold,
        "switch_on": switch_on,
        "condition_key": "condition",
        "control": CONTROL,
        "disease": "disease",
        "planted_genes": [str(genes[g]) for g in planted],
    }
    return out


def regulatory_network(
    vectors: np.ndarray,
    *,
    n_regulators: int = 3,
    temperature: float = 0.05,
    repressor_fraction: float = 0.3,
    strength: float = 0.4,
    seed: int = 0,
) -> np.ndarray:
    """W[i, j]: effect of regulator i on target j (log scale). Each target draws ``n_regulators`` regulators
    with probability ∝ exp(cos(e_i, e_j) / temperature) on centred gene vectors, so similar genes regulate
    each other. A regulator represses (negative weights) when its vector points along a fixed random direction
    (the top ``repressor_fraction``), so the sign too can be read from the embedding."""
    rng = np.random.default_rng(seed)
    V = vectors - vectors.mean(axis=0)
    V = V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)
    similarity = V @ V.T
    n = len(V)
    direction = rng.standard_normal(V.shape[1])
    projection = V @ direction
    sign = np.where(projection >= np.quantile(projection, 1 - repressor_fraction), -1.0, 1.0)
    W = np.zeros((n, n))
    for target in range(n):
        logits = similarity[:, target] / temperature
        logits[target] = -np.inf
        p = np.exp(logits - logits[np.isfinite(logits)].max())
        regulators = rng.choice(n, size=min(n_regulators, n - 1), replace=False, p=p / p.sum())
        W[regulators, target] = sign[regulators] * rng.uniform(0.5, 1.0, len(regulators)) * strength
    return W


def knockdown_effect(W: np.ndarray, perturbed: list[int], *, knockdown: float = 0.8, steps: int = 3) -> np.ndarray:
    """Log-expression change of every gene when ``perturbed`` genes lose ``knockdown`` of their expression,
    propagated ``steps`` times through the network (direct effects, then effects of effects, …)."""
    delta0 = np.zeros(len(W))
    delta0[perturbed] = np.log(1 - knockdown)
    delta, wave = delta0.copy(), delta0.copy()
    for _ in range(steps):
        wave = wave @ W
        wave[perturbed] = 0.0  # the knocked-down genes stay knocked down
        delta += wave
    return delta


def simulate_perturbseq(
    symbols: list[str],
    vectors: np.ndarray,
    *,
    n_single: int = 60,
    n_double: int = 20,
    cells_per_perturbation: int = 40,
    n_control: int = 400,
    library_size: float = 4000.0,
    seed: int = 0,
):
    """A Perturb-seq-style AnnData over ``symbols`` (with their gene-table ``vectors``); see the module docstring.

    ``obs['perturbation']``: ``control``, ``GENE`` or ``GENE1+GENE2``; ``layers['counts']`` the sampled counts;
    ``X`` log1p of counts normalised to 10,000 per cell; ``uns['simulation']`` the parameters and true shifts.
    """
    import anndata as ad

    rng = np.random.default_rng(seed)
    vectors = np.asarray(vectors, dtype=np.float64)
    n = len(symbols)
    W = regulatory_network(vectors, seed=seed)
    base = rng.lognormal(0.0, 1.0, n)
    base = base / base.sum() * library_size
    singles = rng.choice(n, size=min(n_single, n), replace=False)
    doubles = [tuple(sorted(rng.choice(singles, size=2, replace=False))) for _ in range(n_double)]
    doubles = list(dict.fromkeys(doubles))
    perturbations = (
        [(CONTROL, [])]
        + [(symbols[g], [g]) for g in singles]
        + [(f"{symbols[a]}+{symbols[b]}", [a, b]) for a, b in doubles]
    )
    counts, labels, truth = [], [], {}
    for name, genes in perturbations:
        delta = knockdown_effect(W, genes) if genes else np.zeros(n)
        truth[name] = delta
        size = n_control if not genes else cells_per_perturbation
        depth = rng.lognormal(0.0, 0.2, size)[:, None]
        counts.append(rng.poisson(base * np.exp(delta) * depth))
        labels += [name] * size
    counts = np.vstack(counts).astype(np.float32)
    normalised = np.log1p(counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) * 1e4)
    obs = pd.DataFrame({"perturbation": pd.Categorical(labels)}, index=[f"cell{i}" for i in range(len(labels))])
    out = ad.AnnData(X=sp.csr_matrix(normalised), obs=obs, var=pd.DataFrame(index=list(symbols)))
    out.layers["counts"] = sp.csr_matrix(counts)
    out.uns["simulation"] = {
        "kind": "perturbseq",
        "seed": seed,
        "perturbation_key": "perturbation",
        "control": CONTROL,
        "n_single": len(singles),
        "n_double": len(doubles),
        "knockdown": 0.8,
        "propagation_steps": 3,
        "regulators_per_gene": 3,
        "description": "regulators drawn by gene-embedding similarity; counts Poisson",
    }
    return out
