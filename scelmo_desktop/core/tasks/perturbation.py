"""Perturbation modelling with LLM gene embeddings (METHOD.md §3.6, the GEARS idea), so that perturbations
never seen in training can be predicted.

Data: any AnnData with a perturbation column: the control label, ``GENE``, or ``GENE1+GENE2`` for combinations.
The target is each perturbation's mean shift of log-normalised expression from the control mean.

Model (``ShiftModel``): a perturbation's vector is the sum over its genes of ``MLP(e_g) + r_g`` (``e_g`` the
gene's description embedding, ``r_g`` a learned residual that exists only for genes seen in training and starts
at zero: GEARS' "Linear(E) plus a learned gene embedding"); each measured gene j has ``MLP'(e_j) + t_j``; the
predicted shift of gene j is their dot product plus a per-gene bias, plus a learned self-effect on the
perturbed genes themselves (a knocked-down gene goes down), plus a graph term: each perturbed gene acts on its
10 nearest genes in description-embedding space with a strength (and sign) read from its embedding. That graph
is GEARS' gene-similarity graph built from the LLM embeddings instead of GO; whether it helps on your data is
exactly what the random-table control shows. Full-batch Adam with weight decay; early stopping
on held-out training perturbations with the best weights restored.

Evaluation on held-out perturbations: a quarter of the single-gene perturbations are held out, together with
every combination containing one of their genes, so the test genes are never seen in training. Per test
perturbation: MSE and Pearson of predicted versus observed shift on all genes and on its top-20 genes by
|observed shift|; averaged. Baselines: "no change" (zero shift) and "mean shift of the training perturbations";
control: the same model on a random gene table.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import CancelFlag, check_cancel
from scelmo_desktop.core.settings import default

SEPARATOR = "+"
TOP_DE = 20
KERNEL_NEIGHBOURS, KERNEL_TEMPERATURE = 10, 0.05


def _unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=-1, keepdims=True), 1e-12)


@dataclass
class Shifts:
    """Per perturbation (control excluded): its genes, its cell count and its mean expression shift from control."""

    names: list[str]  # perturbation labels, control excluded
    genes: list[list[str]]  # the perturbed genes of each
    observed: np.ndarray  # (perturbations, measured genes) mean shift from control
    var_names: list[str]
    cells: list[int] = field(default_factory=list)


def perturbation_shifts(expression, labels, *, control: str, min_cells: int = 5) -> Shifts:
    """Each perturbation's mean expression minus the control mean, for perturbations with ``min_cells`` or more cells
    (``GENE1+GENE2`` gives both genes); refuses a missing control label or fewer than 4 perturbations."""
    labels = np.asarray(labels).astype(str)
    if not (labels == control).any():
        raise ScelmoError(
            f"No cell carries the control label '{control}'; labels include: {', '.join(sorted(set(labels))[:15])}."
        )
    X = sp.csr_matrix(expression.matrix)
    control_mean = np.asarray(X[labels == control].mean(axis=0)).ravel()
    names, genes, rows, cells = [], [], [], []
    for name in sorted(set(labels) - {control}):
        members = labels == name
        if members.sum() < min_cells:
            continue  # too few cells for a stable mean
        names.append(name)
        genes.append([g for g in name.split(SEPARATOR) if g])
        rows.append(np.asarray(X[members].mean(axis=0)).ravel() - control_mean)
        cells.append(int(members.sum()))
    if len(names) < 4:
        raise ScelmoError(
            f"Only {len(names)} perturbations have at least {min_cells} cells; at least 4 are needed to train and test."
        )
    return Shifts(
        names=names,
        genes=genes,
        observed=np.vstack(rows).astype(np.float32),
        var_names=list(expression.var_names),
        cells=cells,
    )


def split_unseen(
    shifts: Shifts, *, test_fraction: float = default("test_fraction"), seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out a fraction of the single-gene perturbations and every combination touching their genes."""
    rng = np.random.default_rng(seed)
    singles = [i for i, g in enumerate(shifts.genes) if len(g) == 1]
    if len(singles) < 4:
        raise ScelmoError("At least 4 single-gene perturbations are needed to hold some out.")
    held = set(
        rng.choice(
            [shifts.genes[i][0] for i in singles], size=max(1, int(round(test_fraction * len(singles)))), replace=False
        )
    )
    test = np.array([i for i, g in enumerate(shifts.genes) if held & set(g)])
    train = np.array([i for i in range(len(shifts.names)) if i not in set(test)])
    return train, test


def _build(dim: int, n_targets: int, n_known: int, hidden: int = 64):
    import torch

    nn = torch.nn

    class ShiftModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.perturbation_mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
            self.residual = nn.Embedding(n_known + 1, hidden, padding_idx=0)  # index 0: a gene unseen in training
            nn.init.zeros_(self.residual.weight)
            self.target_mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
            self.target_residual = nn.Parameter(torch.zeros(n_targets, hidden))
            self.bias = nn.Parameter(torch.zeros(n_targets))
            self.self_effect = nn.Parameter(torch.zeros(()))
            self.graph_strength = nn.Linear(dim, 1)  # how strongly (and with which sign) a gene acts on neighbours

        def forward(self, vectors, mask, known, targets, self_mask, kernel):
            # vectors: (P, k, d) perturbed genes' embeddings; mask: (P, k); known: (P, k) residual ids;
            # kernel: (P, k, G) each perturbed gene's embedding-similarity neighbourhood over the measured genes
            u = ((self.perturbation_mlp(vectors) + self.residual(known)) * mask[..., None]).sum(dim=1)
            v = self.target_mlp(targets) + self.target_residual
            graph = ((self.graph_strength(vectors) * mask[..., None]) * kernel).sum(dim=1)
            return u @ v.T / np.sqrt(v.shape[1]) + graph + self.bias + self.self_effect * self_mask

    return ShiftModel()


class PerturbationModel:
    """Fit on some perturbations' shifts, predict any perturbation whose genes have table vectors."""

    def __init__(
        self,
        table_lookup: dict[str, np.ndarray],
        target_matrix: np.ndarray,
        var_names: list[str],
        *,
        seed: int = 0,
        epochs: int = 3000,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        patience: int = 200,
        device: str = "cpu",
    ):
        self.lookup, self.targets, self.var_names = table_lookup, np.asarray(target_matrix, np.float32), var_names
        self.dim = self.targets.shape[1]
        matched = np.any(self.targets != 0, axis=1)
        self.center = self.targets[matched].mean(axis=0) if matched.any() else np.zeros(self.dim, np.float32)
        self.unit_targets = _unit(np.where(matched[:, None], self.targets - self.center, 0.0))
        self.seed, self.epochs, self.lr, self.weight_decay = seed, epochs, lr, weight_decay
        self.patience, self.device = patience, device
        self.known: dict[str, int] = {}
        self.module = None
        self.history: list[dict] = []

    def _inputs(self, gene_lists: list[list[str]]):
        import torch

        k = max(len(g) for g in gene_lists)
        vectors = np.zeros((len(gene_lists), k, self.dim), np.float32)
        mask = np.zeros((len(gene_lists), k), np.float32)
        known = np.zeros((len(gene_lists), k), np.int64)
        self_mask = np.zeros((len(gene_lists), len(self.var_names)), np.float32)
        kernel = np.zeros((len(gene_lists), k, len(self.var_names)), np.float32)
        position = {g: i for i, g in enumerate(self.var_names)}
        for i, genes in enumerate(gene_lists):
            for j, gene in enumerate(genes):
                mask[i, j] = 1.0
                known[i, j] = self.known.get(gene, 0)
                if gene in position:
                    self_mask[i, position[gene]] = 1.0
                if gene in self.lookup:
                    vectors[i, j] = self.lookup[gene]
                    kernel[i, j] = self._neighbourhood(self.lookup[gene], position.get(gene))
        return tuple(torch.as_tensor(a, device=self.device) for a in (vectors, mask, known, self_mask, kernel))

    def _neighbourhood(self, vector: np.ndarray, own: int | None) -> np.ndarray:
        """Weights over the measured genes: softmax of cosine similarity (centred vectors, temperature
        ``KERNEL_TEMPERATURE``) over the ``KERNEL_NEIGHBOURS`` most similar genes, the gene itself excluded. This
        is the GEARS gene-similarity graph, built from the description embeddings instead of GO."""
        similarity = self.unit_targets @ _unit((vector - self.center)[None, :])[0]
        if own is not None:
            similarity[own] = -np.inf
        top = np.argsort(-similarity)[:KERNEL_NEIGHBOURS]
        weights = np.exp((similarity[top] - similarity[top].max()) / KERNEL_TEMPERATURE)
        row = np.zeros(len(similarity), np.float32)
        row[top] = weights / weights.sum()
        return row

    def fit(
        self, gene_lists: list[list[str]], observed: np.ndarray, *, cancel: CancelFlag | None = None, progress=None
    ) -> PerturbationModel:
        import torch

        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.known = {g: i + 1 for i, g in enumerate(sorted({g for genes in gene_lists for g in genes}))}
        order = rng.permutation(len(gene_lists))
        n_val = max(1, int(round(0.15 * len(gene_lists))))
        val, train = order[:n_val], order[n_val:]
        self.module = _build(self.dim, len(self.var_names), len(self.known)).to(self.device)
        optimiser = torch.optim.Adam(self.module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        inputs = self._inputs(gene_lists)
        targets = torch.as_tensor(self.targets, device=self.device)
        y = torch.as_tensor(np.asarray(observed, np.float32), device=self.device)
        best, best_state, since = np.inf, None, 0
        for epoch in range(self.epochs):
            if epoch % 50 == 0:
                check_cancel(cancel)
            self.module.train()
            prediction = self.module(*inputs[:3], targets, *inputs[3:])
            loss = torch.mean((prediction[train] - y[train]) ** 2)
            with torch.no_grad():
                val_loss = float(torch.mean((prediction[val] - y[val]) ** 2))
            if val_loss < best - 1e-7:  # the weights that made this prediction, kept before the step moves them
                best, best_state, since = val_loss, copy.deepcopy(self.module.state_dict()), 0
            else:
                since += 1
                if since > self.patience:
                    break
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if epoch % 50 == 0:
                self.history.append({"epoch": epoch, "train_mse": float(loss.detach()), "val_mse": val_loss})
                if progress is not None:
                    progress(epoch, self.epochs, f"val MSE {val_loss:.4f}")
        if best_state is not None:  # a validation loss that was never finite keeps the last weights
            self.module.load_state_dict(best_state)
        self.module.eval()
        self.best_val_mse = best
        return self

    def predict(self, gene_lists: list[list[str]]) -> np.ndarray:
        import torch

        with torch.no_grad():
            vectors, mask, known, self_mask, kernel = self._inputs(gene_lists)
            targets = torch.as_tensor(self.targets, device=self.device)
            return self.module(vectors, mask, known, targets, self_mask, kernel).cpu().numpy()


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if np.std(a) < 1e-12 or np.std(b) < 1e-12:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def evaluate(predicted: np.ndarray, observed: np.ndarray, perturbed: list[np.ndarray], *, top: int = TOP_DE) -> dict:
    """Mean over perturbations of MSE and Pearson, on all genes and on each one's top genes by |shift|; and the
    Pearson on the downstream genes only (the perturbed genes themselves left out: their own drop is trivial to
    predict and would otherwise dominate)."""
    rows = []
    for p, o, own in zip(predicted, observed, perturbed):
        top_genes = np.argsort(-np.abs(o))[:top]
        downstream = np.setdiff1d(np.arange(len(o)), own)
        down_top = downstream[np.argsort(-np.abs(o[downstream]))[:top]]
        rows.append(
            {
                "mse_all": float(np.mean((p - o) ** 2)),
                "pearson_all": _pearson(p, o),
                f"mse_top{top}": float(np.mean((p[top_genes] - o[top_genes]) ** 2)),
                f"pearson_top{top}": _pearson(p[top_genes], o[top_genes]),
                f"mse_downstream_top{top}": float(np.mean((p[down_top] - o[down_top]) ** 2)),
                f"pearson_downstream_top{top}": _pearson(p[down_top], o[down_top]),
            }
        )
    frame = pd.DataFrame(rows)
    return {k: float(frame[k].mean()) if frame[k].notna().any() else float("nan") for k in frame.columns}


def random_lookup(symbols, dim: int, *, seed: int = 0) -> dict[str, np.ndarray]:
    """The random-table control: uniform [0, 1) vectors (METHOD.md §3.4's control) for the same symbols."""
    rng = np.random.default_rng(seed)
    return {s: rng.random(dim, dtype=np.float32) for s in sorted(set(symbols))}


def run_perturbation(
    shifts: Shifts,
    lookup: dict[str, np.ndarray],
    target_matrix: np.ndarray,
    *,
    seed: int = 0,
    test_fraction: float = default("test_fraction"),
    device: str = "cpu",
    progress=None,
    cancel: CancelFlag | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Train on the seen perturbations, score the unseen ones; one row per method."""
    train, test = split_unseen(shifts, test_fraction=test_fraction, seed=seed)
    lists = [shifts.genes[i] for i in range(len(shifts.names))]
    missing = sorted({g for genes in lists for g in genes if g not in lookup})
    observed_test = shifts.observed[test]
    position = {g: i for i, g in enumerate(shifts.var_names)}
    own = [np.array([position[g] for g in shifts.genes[i] if g in position], dtype=int) for i in test]
    rows = {
        "no change": evaluate(np.zeros_like(observed_test), observed_test, own),
        "mean shift of training perturbations": evaluate(
            np.broadcast_to(shifts.observed[train].mean(axis=0), observed_test.shape), observed_test, own
        ),
    }
    dim = target_matrix.shape[1]
    all_symbols = list(lookup) + list(shifts.var_names)
    random_rows = random_lookup(all_symbols, dim, seed=seed)
    random_targets = np.vstack([random_rows[g] for g in shifts.var_names])
    models = {"scELMo gene table": (lookup, target_matrix), "random gene table": (random_rows, random_targets)}
    fitted = {}
    for done, (name, (table_lookup, targets)) in enumerate(models.items()):
        check_cancel(cancel)
        if progress is not None:
            progress("perturbation", done, len(models), f"training on {name}")
        model = PerturbationModel(table_lookup, targets, shifts.var_names, seed=seed, device=device).fit(
            [lists[i] for i in train], shifts.observed[train], cancel=cancel
        )
        fitted[name] = model
        rows[name] = evaluate(model.predict([lists[i] for i in test]), observed_test, own)
    table = pd.DataFrame([{"method": name, **values} for name, values in rows.items()])
    record = {
        "n_perturbations": len(shifts.names),
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "test_perturbations": [shifts.names[i] for i in test],
        "genes_without_vector": missing,
        "seed": seed,
        "test_fraction": test_fraction,
        "best_val_mse": {name: float(m.best_val_mse) for name, m in fitted.items()},
    }
    return table, record
