"""How the scELMo cell space is built, measured (issue 26): candidate spaces against the scanpy route on every
real labelled set we hold offline, same protocol for every row (kNN 15, Leiden sweep 0.2–2.0 keeping the best
NMI, mean over 5 Leiden seeds).

Data: PBMC 3k and Kang 2018 (``tests/real_files.py``; cache outside the repository), Kang's two conditions each
alone (``kang_control``, ``kang_stimulated``: one 10x run each, 6,359 and 7,217 cells), scanpy's bundled
``pbmc68k_reduced`` (its ``.raw``, log-normalised, 765 genes) and the five other real labelled sets of
``real_files.MORE_LABELLED``. The gene table is the app's default (fact sheets embedded by MiniLM,
``scelmo.tl.embed_cells``).

Candidates (``X``: the log-normalised gene set, ``Xs``: the same genes scaled to unit variance, clipped at 10,
as the scanpy route does; ``E``: the table, ``Ew``: whitened):

* ``scanpy``: PCA 50 of ``Xs`` (the route users would otherwise take);
* ``sum`` (the 0.3 default): PCA 50 of ``X Ew``;
* ``scaled_sum``: PCA 50 of ``Xs Ew``;
* ``smooth w (one-way, raw cosine)``: PCA 50 of ``Xs ((1 - w) I + w K)``, ``K`` the row-normalised graph of
  each gene's 10 nearest genes by text cosine: a gene borrows the scaled signal of the genes its description
  resembles (w → 0 is the scanpy route); at 0.35 the previous default;
* ``smoothed (app) w``: the app's kernel (``cell_vectors.text_neighbour_graph``: neighbours either way, cosine
  of the whitened table) at weight ``w`` for every gene; ``smoothed (app), weight by cells, every gene alike``: the
  same at the weight the app takes for the file's number of cells (``cell_vectors.smoothing_weight``: 0.35 up to
  3,000 cells, then falling as 1 / cells), the previous default; ``smoothed (app), weight by cells and noise
  (default)``: that weight as the mean, each gene's own proportional to its noise share
  (``core/embedding/gene_noise.py``), the default;
* ``concat``: PCA 50 of ``[Xs, Xs Ew / sqrt(d)]`` (expression and text dimensions side by side);
* ``random smooth w`` and ``random smoothed (app), …``: the same smoothings with a random table (does the text
  matter?);
* ``smoothed (app) without anti-correlated edges`` (and ``(renormalised)``): the app's kernel without the text edges
  between genes whose scaled values correlate below 0 across the cells (sister markers such as GCG / GHRL or CD4 /
  CD8B are described alike but expressed in different cells); the rest of each row keeps its weight, or is
  renormalised to sum to 1.
* ``half`` and ``balanced`` (``reweighted_smoothing``): the default with each gene's weight half by its noise share
  and half the mean weight, or with each gene's total weight in the space balanced (a gene's row of the mixing
  summing above 1 divided by the square root of its sum: a gene borrowed by many noisy neighbours otherwise enters
  the space several times over); both measured and dropped (``docs/benchmarks.md``).
* ``learned``: each gene's weight learned from the file (``cell_vectors.shrinkage_weights``: its noise variance
  over the mean squared gap between the gene and its text neighbours' mean, the least-squares mix), falling with
  the number of cells as the default's mean weight does; measured and dropped (``docs/benchmarks.md``).
* ``coherence``: the default with each gene's noise share times ``1 - r^2``, ``r`` its correlation over the cells
  with its text neighbours' mean (``cell_vectors.coherence_weights``: a programme expressed together is not pulled
  into one noise-free axis); measured and not adopted (``docs/benchmarks.md``).

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/space_candidates.py [--sets pbmc3k,kang]
    # the default against the route only, over 20 Leiden seeds, on a 3,000-cell subsample of Kang
    ... space_candidates.py --sets kang --rows scanpy,default --seeds 20 --cells 3000 --draw 0
    # small files: six random 190-cell subsamples of every set, the default against the route
    ... space_candidates.py --rows scanpy,default --cells 190 --draws 6
    # the default against the route over 5 randomized-PCA draws x 2 Leiden seeds (a draw moves Leiden's sweep on
    # Kang as much as a seed does)
    ... space_candidates.py --sets kang_control --rows scanpy,default --pca-draws 5 --seeds 2
    # where two spaces differ, label by label: the share of each cell's 15 nearest neighbours with its label
    ... space_candidates.py --sets kang --rows scanpy,default --purity
    # the cells a default scelmo run kept after its QC (its result file's own matrix and gene table)
    ... space_candidates.py --sets run:RUN_FOLDER:LABEL_KEY --rows scanpy,default,learned --pca-draws 5 --seeds 2

Writes ``benchmarks/results/space_candidates.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
RESULTS = ROOT / "benchmarks" / "results" / "space_candidates.json"
SEEDS = (0, 1, 2, 3, 4)


def real_files_more() -> tuple[str, ...]:
    import real_files

    return real_files.MORE_LABELLED


KANG_HALVES = ("kang_control", "kang_stimulated")  # each condition of Kang 2018 alone: one 10x run each


def load_set(name: str):
    """(AnnData, labels) of a set; ``run:FOLDER:LABEL_KEY`` is the cells a ``scelmo run`` kept (its
    ``scelmo_result.h5ad``: its own log-normalised matrix and gene table, after its QC)."""
    import scanpy as sc

    if name.startswith("run:"):
        import anndata as ad

        _, folder, key = name.split(":")
        adata = ad.read_h5ad(Path(folder) / "scelmo_result.h5ad")
        return adata, adata.obs[key].astype(str).to_numpy()

    if name in KANG_HALVES:
        adata, labels = load_set("kang")
        half = (adata.obs["condition"].astype(str) == name.split("_")[1]).to_numpy()
        return adata[half].copy(), labels[half]
    if name in real_files_more():
        import real_files

        adata = real_files.load_labelled(name)
        return adata, adata.obs["label"].astype(str).to_numpy()
    if name == "pbmc68k":
        adata = sc.datasets.pbmc68k_reduced()
        return adata.raw.to_adata(), adata.obs["bulk_labels"].astype(str).to_numpy()
    import real_files

    adata = real_files.load(name)
    key = "celltype" if name == "pbmc3k" else "cell_type"
    return adata, adata.obs[key].astype(str).to_numpy()


def gene_set_inputs(adata):
    """(X log-normalised gene set, E table rows) from the app's default embedding of ``adata``."""
    import scelmo_desktop as scelmo
    from scelmo_desktop.core.data.io import select_expression

    if "scelmo_gene_embedding" not in adata.varm:  # a run's result carries the table it used
        scelmo.tl.embed_cells(adata)
    expression = select_expression(adata, "auto")
    E = np.asarray(adata.varm["scelmo_gene_embedding"], dtype=np.float32)
    keep = np.flatnonzero(np.any(E != 0, axis=1))
    X = expression.matrix[:, keep]
    return (X.toarray() if sp.issparse(X) else np.asarray(X)).astype(np.float32), E[keep]


def scaled(X):
    Xs = (X - X.mean(axis=0)) / np.maximum(X.std(axis=0), 1e-12)
    return np.clip(Xs, -10, 10).astype(np.float32)


def pca(Z, n=50, seed=0):
    from sklearn.decomposition import PCA

    return PCA(n_components=min(n, min(Z.shape) - 1), random_state=seed).fit_transform(Z).astype(np.float32)


def text_graph(E, k=10):
    En = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    S = En @ En.T
    np.fill_diagonal(S, -np.inf)
    idx = np.argpartition(-S, k, axis=1)[:, :k]
    rows = np.repeat(np.arange(len(E)), k)
    K = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, idx.ravel())), shape=(len(E), len(E)))
    # row-normalised, acting on columns (genes): X @ K.T averages each gene's neighbours
    return K.multiply(1.0 / k).tocsr()


def all_gene_inputs(adata):
    """(scaled expression of every gene with a text vector, their table rows, the gene set's columns among them)."""
    import scelmo_desktop as scelmo
    from scelmo_desktop.core.data.gene_selection import GeneSet
    from scelmo_desktop.core.data.io import select_expression

    work = adata.copy()
    scelmo.tl.embed_cells(work, max_genes=None)
    expression = select_expression(work, "auto")
    E = np.asarray(work.varm["scelmo_gene_embedding"], dtype=np.float32)
    described = np.flatnonzero(np.any(E != 0, axis=1))
    gene_set = set(GeneSet.choose(expression.matrix, 2000).columns().tolist())
    X = expression.matrix[:, described]
    X = (X.toarray() if sp.issparse(X) else np.asarray(X)).astype(np.float32)
    in_set = np.array([g in gene_set for g in described])
    return scaled(X), E[described], np.flatnonzero(in_set)


def borrow_scan(Xs_all, E_all, set_columns, weights, k=10, seed=0):
    """Each gene-set gene mixed with the mean of its k nearest genes by text among *every* described gene."""
    En = E_all / np.maximum(np.linalg.norm(E_all, axis=1, keepdims=True), 1e-12)
    S = En[set_columns] @ En.T
    S[np.arange(len(set_columns)), set_columns] = -np.inf
    idx = np.argpartition(-S, k, axis=1)[:, :k]
    borrowed = np.stack([Xs_all[:, row].mean(axis=1) for row in idx], axis=1)
    own = Xs_all[:, set_columns]
    return {f"borrow all genes {w}": pca(own * (1 - w) + w * borrowed, seed=seed) for w in weights}


def without_anticorrelated_edges(X, E, *, renormalise: bool, seed=0):
    """PCA 50 of the app's smoothing of ``X`` with the text edges between anti-correlated genes removed."""
    from scelmo_desktop.core.embedding.cell_vectors import smoothing_weight, text_neighbour_graph

    Xs = scaled(X)
    graph = text_neighbour_graph(E).tocoo()
    standard = (X - X.mean(axis=0)) / np.maximum(X.std(axis=0), 1e-12)
    correlation = np.einsum("ij,ij->j", standard[:, graph.row], standard[:, graph.col]) / len(X)
    keep = correlation >= 0
    kept = sp.csr_matrix((graph.data[keep], (graph.row[keep], graph.col[keep])), shape=graph.shape)
    if renormalise:
        kept = sp.diags(1.0 / np.maximum(np.asarray(kept.sum(axis=1)).ravel(), 1e-12)) @ kept
    w = smoothing_weight(len(X))
    return pca((1 - w) * Xs + w * np.asarray((kept @ Xs.T).T), seed=seed)


def weight_scan(X, E, weights, seed=0):
    """The app's ``smoothed`` conditioning (``core.embedding.cell_vectors``) at each weight, every gene alike."""
    from scelmo_desktop.core.embedding.cell_vectors import smoothed_expression

    return {
        f"smoothed (app) {w}": pca(smoothed_expression(X, E, weight=w, gene_weights="alike"), seed=seed)
        for w in weights
    }


def candidates(X, E, seed=0):
    from scelmo_desktop.core.embedding.cell_vectors import SMOOTHING_WEIGHT, Whitening, smoothed_expression

    Xs = scaled(X)
    Ew = Whitening.fit(E).apply(E)
    out = {"scanpy": pca(Xs, seed=seed), "sum (0.3 default)": pca(X @ Ew, seed=seed)}
    out["scaled_sum"] = pca(Xs @ Ew, seed=seed)
    K = text_graph(E)
    for w in (0.25, 0.35, 0.5):
        out[f"smooth {w} (one-way, raw cosine)"] = pca(Xs * (1 - w) + w * np.asarray((K @ Xs.T).T), seed=seed)
    out[default_row()] = pca(smoothed_expression(X, E), seed=seed)
    out[UNIFORM_ROW] = pca(smoothed_expression(X, E, gene_weights="alike"), seed=seed)
    out.update(weight_scan(X, E, [SMOOTHING_WEIGHT], seed=seed))
    out["concat"] = pca(np.hstack([Xs, Xs @ Ew / np.sqrt(Ew.shape[1])]), seed=seed)
    R = np.random.default_rng(seed).random(E.shape, dtype=np.float32)
    Kr = text_graph(R - R.mean(axis=0))
    out["random smooth 0.5"] = pca(Xs * 0.5 + 0.5 * np.asarray((Kr @ Xs.T).T), seed=seed)
    out[f"random {default_row()}"] = pca(smoothed_expression(X, R), seed=seed)
    dropped = "smoothed (app) without anti-correlated edges"
    out[dropped] = without_anticorrelated_edges(X, E, renormalise=False, seed=seed)
    out[f"{dropped} (renormalised)"] = without_anticorrelated_edges(X, E, renormalise=True, seed=seed)
    return out


def chosen_rows(X, E, names, seed=0):
    """Only the named rows: ``scanpy`` (the route), ``default`` (the app's space) and ``uniform`` (the previous
    default, every gene at the file's weight); anything else is computed with every candidate and picked from them."""
    from scelmo_desktop.core.embedding.cell_vectors import smoothed_expression

    out = {}
    if "scanpy" in names:
        out["scanpy"] = pca(scaled(X), seed=seed)
    if "default" in names:
        out[default_row()] = pca(smoothed_expression(X, E), seed=seed)
    if "uniform" in names:
        out[UNIFORM_ROW] = pca(smoothed_expression(X, E, gene_weights="alike"), seed=seed)
    if "half" in names:
        out[HALF_ROW] = pca(reweighted_smoothing(X, E, alike=0.5), seed=seed)
    if "balanced" in names:
        out[BALANCED_ROW] = pca(reweighted_smoothing(X, E, balanced=True), seed=seed)
    if "learned" in names:
        out[LEARNED_ROW] = pca(smoothed_expression(X, E, gene_weights="learned"), seed=seed)
    if "coherence" in names:
        out[COHERENCE_ROW] = pca(smoothed_expression(X, E, gene_weights="coherence"), seed=seed)
    named = ("scanpy", "default", "uniform", "half", "balanced", "learned", "coherence")
    rest = [name for name in names if name not in named]
    if rest:
        out.update({name: Z for name, Z in candidates(X, E, seed=seed).items() if name in rest})
    return out


def reweighted_smoothing(X, E, *, alike: float = 0.0, balanced: bool = False):
    """The app's smoothing (each gene's weight by its noise share) with two changes, each measured and dropped.
    ``alike``: the share of each gene's weight that is the file's mean weight (0.5: half by noise share, half
    alike; the share is an estimate, and this shrinks it toward its mean). ``balanced``: a gene whose row of the
    mixing (its share in every smoothed gene) sums to more than 1 has the row divided by the square root of that
    sum, so that a gene borrowed by many noisy text neighbours does not enter the space several times over."""
    from scelmo_desktop.core.embedding import cell_vectors

    Xs = cell_vectors.smoothed_expression(X, E, weight=0.0)
    weight = cell_vectors.smoothing_weight(len(X))
    per_gene = ((1 - alike) * cell_vectors.noise_weights(X, Xs, weight) + alike * weight).astype(np.float32)
    mixing = cell_vectors.text_mixing(E, per_gene)
    if balanced:
        total = np.asarray(mixing.sum(axis=1)).ravel()
        mixing = sp.diags(1.0 / np.sqrt(np.maximum(total, 1.0))) @ mixing
    return np.asarray((mixing.T @ Xs.T).T, dtype=np.float32)


def default_row() -> str:
    """The name of the app's default space among the rows: the app's smoothing at the mean weight it takes for the
    file's number of cells (``cell_vectors.smoothing_weight``), each gene's weight by its noise share."""
    return "smoothed (app), weight by cells and noise (default)"


# the previous default: every gene at the file's weight
UNIFORM_ROW = "smoothed (app), weight by cells, every gene alike"
# measured and dropped (reweighted_smoothing): the default's weights shrunk halfway to their mean, or balanced
HALF_ROW = "smoothed (app), weight by cells, half by noise and half alike"
BALANCED_ROW = "smoothed (app), weight by cells and noise, each gene's total weight balanced"
# each gene's weight learned from the file: its noise variance over its gap to its text neighbours' mean
LEARNED_ROW = "smoothed (app), each gene's weight learned (noise / gap to its text neighbours)"
# each gene's noise share discounted by 1 - r^2 of its correlation with its text neighbours' mean
COHERENCE_ROW = "smoothed (app), weight by cells and noise, discounted where a gene moves with its text neighbours"


def paired_difference(rows) -> str:
    """Mean of (default - route), NMI and ARI, each with its standard error: over Leiden seeds (one seed is one
    draw of Leiden's noise for both spaces, so the difference is paired), or with several PCA draws over those
    draws (each a mean over the seeds: a draw perturbs the embedding, which moves Leiden's sweep as much as its
    seed does, 0.015 NMI on Kang's control run)."""
    parts = []
    unit = "per_draw" if rows["scanpy"].get("pca_draws", 1) > 1 else "per_seed"
    for metric in ("nmi", "ari"):
        default = rows[default_row()][f"{metric}_{unit}"]
        diff = np.subtract(default, rows["scanpy"][f"{metric}_{unit}"])
        parts.append(f"{metric.upper()} {diff.mean():+.4f} ± {diff.std(ddof=1) / np.sqrt(len(diff)):.4f}")
    return ", ".join(parts)


def score(Z, labels, seed):
    import anndata as ad

    from scelmo_desktop.core.tasks import cluster

    adata = ad.AnnData(np.zeros((len(Z), 1), np.float32))
    adata.obsm["Z"] = Z
    result = cluster.leiden_on_embedding(adata, "Z", labels=labels, seed=seed)
    return result.scores["nmi"], result.scores["ari"]


def neighbour_purity(Z, labels, k=15) -> dict:
    """The share of each cell's ``k`` nearest neighbours (Euclidean, as the Leiden graph) that carry its label:
    overall and per label. A finer reading than NMI of where two spaces differ, with no clustering noise."""
    from sklearn.neighbors import NearestNeighbors

    neighbours = NearestNeighbors(n_neighbors=k + 1).fit(Z).kneighbors(Z, return_distance=False)[:, 1:]
    same = labels[neighbours] == labels[:, None]
    return {"all": float(same.mean()), **{str(name): float(same[labels == name].mean()) for name in np.unique(labels)}}


def spaces_of(adata, args) -> tuple[list[dict], int]:
    """The rows ``args`` asks for, computed on ``adata`` once per PCA draw (``args.pca_draws``: the randomized
    PCA's seed, and the random table's); and the number of genes in the gene set."""
    seeds = range(args.pca_draws)
    if args.borrow:
        Xs_all, E_all, columns = all_gene_inputs(adata)
        weights = [float(w) for w in args.borrow.split(",")]
        return [borrow_scan(Xs_all, E_all, columns, weights, seed=seed) for seed in seeds], len(columns)
    X, E = gene_set_inputs(adata)
    if args.rows:
        return [chosen_rows(X, E, args.rows.split(","), seed=seed) for seed in seeds], X.shape[1]
    if args.weights:
        weights = [float(w) for w in args.weights.split(",")]
        return [weight_scan(X, E, weights, seed=seed) for seed in seeds], X.shape[1]
    return [candidates(X, E, seed=seed) for seed in seeds], X.shape[1]


def measure(name: str, args, draw: int, results: dict) -> tuple[dict, bool]:
    """Score every row on set ``name`` (subsample ``draw`` when ``args.cells`` is below its size); updates
    ``results``. Returns the rows and whether the set was subsampled."""
    t0 = time.perf_counter()
    adata, labels = load_set(name)
    subsampled = bool(args.cells) and args.cells < adata.n_obs
    if subsampled:
        picked = np.sort(np.random.default_rng(draw).choice(adata.n_obs, args.cells, replace=False))
        adata, labels = adata[picked].copy(), labels[picked]
    per_draw, n_genes = spaces_of(adata, args)
    key = f"{name}, {args.cells} cells (draw {draw})" if subsampled else name
    rows = results.get(key, {}).get("rows", {})
    for method in per_draw[0]:
        # runs[d, s] = (NMI, ARI) of PCA draw d at Leiden seed s
        runs = np.array([[score(spaces[method], labels, seed) for seed in range(args.seeds)] for spaces in per_draw])
        nmi, ari = runs[..., 0], runs[..., 1]
        rows[method] = {
            "nmi": float(nmi.mean()),
            "ari": float(ari.mean()),
            "nmi_sd": float(nmi.std()),
            "seeds": args.seeds,
            "pca_draws": args.pca_draws,
            "nmi_per_seed": nmi.mean(axis=0).round(4).tolist(),
            "ari_per_seed": ari.mean(axis=0).round(4).tolist(),
            "nmi_per_draw": nmi.mean(axis=1).round(4).tolist(),
            "ari_per_draw": ari.mean(axis=1).round(4).tolist(),
        }
        print(f"{key:8s} {method:20s} NMI {nmi.mean():.3f}±{nmi.std():.3f}  ARI {ari.mean():.3f}", flush=True)
        if args.purity:
            rows[method]["neighbour_purity"] = purity = neighbour_purity(per_draw[0][method], labels)
            print("    kNN-15 label purity: " + ", ".join(f"{name} {v:.3f}" for name, v in purity.items()), flush=True)
    if {"scanpy", default_row()} <= rows.keys() and args.seeds * args.pca_draws > 1:
        print(f"{key}: default - route, paired: {paired_difference(rows)}", flush=True)
    results[key] = {"rows": rows, "genes": int(n_genes), "cells": int(adata.n_obs)}
    print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    return rows, subsampled


def over_draws(name: str, per_draw: list[dict]) -> str:
    """One line: the default minus the route, mean over subsample draws, and how many draws are at or above."""
    if not all({"scanpy", default_row()} <= rows.keys() for rows in per_draw):
        return f"{name}: needs the rows 'scanpy' and 'default'"
    parts = []
    for metric in ("nmi", "ari"):
        diff = np.array([rows[default_row()][metric] - rows["scanpy"][metric] for rows in per_draw])
        parts.append(f"{metric.upper()} {diff.mean():+.3f} ({int((diff >= 0).sum())} of {len(diff)} draws at or above)")
    return f"{name}, default - route over {len(per_draw)} draws: " + ", ".join(parts)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(("pbmc3k", "kang", *KANG_HALVES, "pbmc68k", *real_files_more())))
    parser.add_argument("--weights", help="only the app's smoothed conditioning at these comma-separated weights")
    parser.add_argument("--borrow", help="only: the gene set borrowing from every described gene, at these weights")
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help="Leiden seeds 0..N-1 (default 5)")
    parser.add_argument(
        "--rows",
        help="only these rows: comma-separated 'scanpy', 'default', 'uniform', 'half', 'balanced', 'learned', "
        "'coherence', or candidate names",
    )
    parser.add_argument("--cells", type=int, help="a random subsample of this many cells (draw --draw) per set")
    parser.add_argument("--draw", type=int, default=0, help="the subsample's random seed (the first, with --draws)")
    parser.add_argument("--draws", type=int, default=1, help="with --cells: this many draws from --draw on")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the results file (two runs side by side: one each)")
    parser.add_argument("--purity", action="store_true", help="also each row's kNN-15 label purity, per label")
    parser.add_argument(
        "--pca-draws",
        type=int,
        default=1,
        help="randomized-PCA seeds 0..N-1 per row (each scored on every Leiden seed)",
    )
    args = parser.parse_args(argv)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    draws = range(args.draw, args.draw + (args.draws if args.cells else 1))
    summary = []
    for name in args.sets.split(","):
        per_draw = []
        for draw in draws:
            rows, subsampled = measure(name, args, draw, results)
            per_draw.append(rows)
            if not subsampled:  # the whole set: every draw would be the same
                break
        if len(per_draw) > 1:
            summary.append(over_draws(name, per_draw))
    for line in summary:
        print(line, flush=True)


if __name__ == "__main__":
    main()
