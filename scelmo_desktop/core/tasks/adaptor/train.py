"""Training the adaptor: cross-entropy + 100 × triplet loss (exact, in O(B² log B)), Adam, early stopping on the
validation 10-NN accuracy with the best weights restored, optional gradient-reversal batch classifier."""

from __future__ import annotations

import copy
import time

import numpy as np

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.jobs import CancelFlag, check_cancel
from scelmo_desktop.core.embedding.cell_vectors import Whitening
from scelmo_desktop.core.settings import default
from scelmo_desktop.core.tasks.adaptor.model import TrainedAdaptor, _dense_rows, _forward
from scelmo_desktop.core.tasks.adaptor.module import _torch, build_module, fold_whitening
from scelmo_desktop.core.tasks.annotate import knn_vote

TRIPLET_WEIGHT, TRIPLET_MARGIN = 100.0, 0.05


def auto_batch_size(n_cells: int) -> int:
    """512 (the paper's) for large data; for small data about 16 optimiser steps an epoch, but never batches
    under 64 cells (with 700 cells, batch 512 gives 2 steps an epoch and the adaptor barely moves; 64 gives 11)."""
    return int(min(512, max(64, n_cells // 16)))


def triplet_loss(z, labels, margin: float = TRIPLET_MARGIN, anchor_chunk: int = 64):
    """Mean over non-zero terms of max(0, d(a,p) − d(a,n) + margin) for all valid (a, p, n), z L2-normalised.

    Exact, in O(B² log B) instead of enumerating the B × B × B triplets, which is slow on a CPU (the brute force
    is kept in benchmarks/bench_adaptor_epoch.py, which times an epoch with each):
    once it is known which terms are non-zero, their sum is linear in the distances, Σ W·d + margin × count
    (see ``_active_triplet_weights``), and so is its gradient. ``anchor_chunk`` is kept for callers; nothing is
    chunked any more (memory is B × B)."""
    torch = _torch()
    z = torch.nn.functional.normalize(z, dim=1)
    distance = torch.cdist(z, z)
    weight, count = _active_triplet_weights(distance.detach(), labels, margin)
    # float64: Σ W·d adds ~B² products up to ±B whose positive and negative parts nearly cancel
    total = (weight * distance.double()).sum()  # all-zero weights still give a zero that backward() accepts
    return ((total + margin * count) / count if count else total).to(z.dtype)


def _active_triplet_weights(distance, labels, margin: float):
    """W (B × B) and the number of non-zero triplet terms, such that the sum of those terms is Σ W·d + margin ×
    count: W[a,p] = c, the number of negatives n with d(a,n) < d(a,p) + margin, and W[a,n] = −(the number of
    positives p for which n is one of those).

    Anchors are taken a class at a time, as they share their negatives: their distances to the negatives are
    sorted once, ``searchsorted`` gives c for every (anchor, positive), and the j-th nearest negative is counted
    by every positive with c > j."""
    torch = _torch()
    weight = torch.zeros(distance.shape, dtype=torch.int64, device=distance.device)
    count = 0
    for label in torch.unique(labels):
        members = labels == label
        anchors, others = members.nonzero()[:, 0], (~members).nonzero()[:, 0]
        if len(anchors) < 2 or len(others) == 0:  # no positive or no negative: no triplet from this class
            continue
        rows = distance[anchors]
        to_negatives = rows[:, others]
        order = _argsort_rows(to_negatives)
        negatives = to_negatives.gather(1, order)
        threshold = rows[:, anchors] + margin
        # left bisection: negatives strictly under the threshold, as only terms > 0 count
        below = torch.searchsorted(negatives, threshold)
        below.fill_diagonal_(0)  # an anchor is not its own positive
        positives_by_c = torch.zeros((len(anchors), len(others) + 1), dtype=torch.int64, device=distance.device)
        positives_by_c.scatter_add_(1, below, torch.ones_like(below))
        covering = positives_by_c.flip(1).cumsum(dim=1).flip(1)[:, 1:]  # [a, j] = #positives with c > j
        weight[anchors[:, None], anchors[None, :]] = below
        weight[anchors[:, None], others[None, :]] = -torch.empty_like(covering).scatter_(1, order, covering)
        count += int(below.sum())
    return weight, count


def _argsort_rows(values):
    """Row-wise argsort; on the CPU through NumPy, whose vectorised sort beats torch's on these rows (epoch
    times: benchmarks/bench_adaptor_epoch.py)."""
    torch = _torch()
    if values.device.type != "cpu":
        return torch.argsort(values, dim=1)
    return torch.from_numpy(np.argsort(values.numpy(), axis=1))


def train_adaptor(
    X,
    E: np.ndarray,
    labels,
    *,
    genes: list[str],
    epochs: int = default("epochs"),
    batch_size: int = 512,
    lr: float = 1e-3,
    val_fraction: float = 0.1,
    check_every: int = 5,
    seed: int = 0,
    device: str = "cpu",
    early_stopping: bool = True,
    batches=None,
    adversarial_weight: float = 1.0,
    progress=None,
    cancel: CancelFlag | None = None,
) -> TrainedAdaptor:
    """Train on cells ``X`` (cells x genes, log-normalised) with table ``E`` (genes x d) and ``labels``.

    ``early_stopping=False`` trains all ``epochs`` and keeps the last weights (the in-silico treatment protocol,
    METHOD.md §3.5); ``batches`` (one value per cell) adds the gradient-reversal batch classifier."""
    from sklearn.model_selection import train_test_split

    torch = _torch()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels).astype(str)
    classes, codes = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ScelmoError("Training needs at least two labels.")
    indices = np.arange(len(labels))
    counts = np.bincount(codes)
    stratify = codes if counts.min() >= 2 else None
    if early_stopping:
        train_idx, val_idx = train_test_split(indices, test_size=val_fraction, random_state=seed, stratify=stratify)
    else:  # no validation: every cell trains
        train_idx, val_idx = indices, indices[:0]
    batch_codes = None
    if batches is not None:
        batch_classes, batch_codes = np.unique(np.asarray(batches).astype(str), return_inverse=True)
        if len(batch_classes) < 2:
            raise ScelmoError("Batch-aware training needs at least two batches.")
        batch_codes = torch.as_tensor(batch_codes, device=device)
    # the MLP learns from the whitened table (sentence embeddings are anisotropic: a few directions dominate and
    # training on the raw table was unstable across seeds: the PBMC 3k -> Kang adaptor of benchmarks/real_data.py);
    # the map is folded into the first layer afterwards, so the module takes the raw table
    whitening = Whitening.fit(E)
    n_batches = 0 if batches is None else len(batch_classes)
    module = build_module(whitening.matrix.shape[1], len(classes), n_batches=n_batches).to(device)
    optimiser = torch.optim.Adam(module.parameters(), lr=lr)
    table = torch.as_tensor(whitening.apply(E), device=device)
    y_all = torch.as_tensor(codes, device=device)
    history, best, best_state, best_epoch = [], -1.0, None, 0
    started = time.perf_counter()
    for epoch in range(epochs):
        check_cancel(cancel)
        if early_stopping and epoch % check_every == 0:
            accuracy = _validation_accuracy(module, X, table.cpu().numpy(), codes, train_idx, val_idx, device)
            history.append({"epoch": epoch, "val_knn_accuracy": accuracy})
            if accuracy > best:
                best, best_state, best_epoch = accuracy, copy.deepcopy(module.state_dict()), epoch
            else:
                break  # patience of one check, as in the paper; the best weights are restored below
        module.train()
        order = rng.permutation(train_idx)
        losses = []
        for start in range(0, len(order), batch_size):
            rows = np.sort(order[start : start + batch_size])
            x = torch.as_tensor(_dense_rows(X, rows), device=device)
            y = y_all[rows]
            logits, z = module(table, x)
            loss = torch.nn.functional.cross_entropy(logits, y) + TRIPLET_WEIGHT * triplet_loss(z, y)
            if batch_codes is not None:
                loss = loss + adversarial_weight * torch.nn.functional.cross_entropy(
                    module.batch_logits(z), batch_codes[rows]
                )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        history.append({"epoch": epoch, "loss": float(np.mean(losses))})
        if progress is not None:
            # the validation accuracy is reported only for the epoch at which it was measured
            checked = [h["val_knn_accuracy"] for h in history if h.get("epoch") == epoch and "val_knn_accuracy" in h]
            metrics = {"loss": float(np.mean(losses)), **({"val_knn_accuracy": checked[0]} if checked else {})}
            progress(
                epoch + 1,
                epochs,
                f"loss {metrics['loss']:.3f}" + (f" val {checked[0]:.3f}" if checked else ""),
                metrics=metrics,
            )
    else:
        accuracy = (
            _validation_accuracy(module, X, table.cpu().numpy(), codes, train_idx, val_idx, device)
            if early_stopping
            else float("nan")
        )
        history.append({"epoch": epochs, "val_knn_accuracy": accuracy})
        if not early_stopping or accuracy > best:
            best, best_state, best_epoch = accuracy, copy.deepcopy(module.state_dict()), epochs
    module.load_state_dict(best_state)
    module = fold_whitening(module, whitening, n_classes=len(classes), n_batches=n_batches).to(device)
    module.eval()
    return TrainedAdaptor(
        module=module,
        classes=list(classes),
        genes=list(genes),
        dim=int(E.shape[1]),
        history=history,
        best_epoch=best_epoch,
        seconds=time.perf_counter() - started,
        device=device,
        provenance={"seed": seed, "epochs": epochs, "batch_size": batch_size, "lr": lr, "best_val_knn_accuracy": best},
        split=(train_idx, val_idx),
    )


def _validation_accuracy(module, X, E, codes, train_idx, val_idx, device) -> float:
    z = _forward(module, X, E, device, 4096)[1]
    vote = knn_vote(z[train_idx], codes[train_idx].astype(str), z[val_idx], k=default("k"))
    return float(np.mean(vote.labels == codes[val_idx].astype(str)))
