"""The fine-tuned adaptor: triplet loss by hand and by brute force, best-weights restoring, save/load, determinism."""

import numpy as np
import pytest
import torch
from reference_triplet import brute_force_triplet_loss

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.tasks.adaptor import load_adaptor, train_adaptor, triplet_loss
from scelmo_desktop.core.tasks.adaptor.train import _validation_accuracy


def test_triplet_loss_against_hand_computation():
    z = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6]])  # already unit length
    labels = torch.tensor([0, 0, 1])
    # valid triplets (anchor, positive, negative): (0,1,2) and (1,0,2)
    d01, d02, d12 = np.sqrt(0.8), np.sqrt(0.4), np.sqrt(0.08)
    expected = ((d01 - d02 + 0.05) + (d01 - d12 + 0.05)) / 2
    assert float(triplet_loss(z, labels)) == pytest.approx(expected, rel=1e-5)
    # an easy batch (negatives far beyond the margin) has no non-zero term and a zero loss
    easy = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    assert float(triplet_loss(easy, labels)) == 0.0


LABEL_PATTERNS = {
    "balanced": lambda rng, n: rng.integers(0, 4, n),
    "skewed": lambda rng, n: rng.choice(8, n, p=[0.6, 0.2, 0.1, 0.04, 0.03, 0.01, 0.01, 0.01]),
    "singletons": lambda rng, n: np.r_[np.arange(5), rng.integers(5, 7, n - 5)],  # classes 0-4: no positives
    "all_singletons": lambda rng, n: np.arange(n),  # no positives anywhere
    "one_class": lambda rng, n: np.zeros(n, dtype=int),  # no negatives anywhere
    "two_cells_each": lambda rng, n: np.arange(n) // 2,
}


def cell_vectors(kind, rng, n, dim):
    if kind == "spread":
        return rng.normal(size=(n, dim))
    if kind == "tight":  # close around one centre: distances within the margin, most terms non-zero
        return rng.normal(size=dim) + 0.05 * rng.normal(size=(n, dim))
    return rng.normal(size=(6, dim))[rng.integers(0, 6, n)]  # "duplicates": exact ties and zero distances


@pytest.mark.parametrize("pattern", sorted(LABEL_PATTERNS))
@pytest.mark.parametrize(
    "n, dim, kind, margin",
    [
        (7, 3, "spread", 0.05),
        (96, 32, "spread", 0.05),
        (200, 8, "tight", 0.05),
        (60, 4, "duplicates", 0.05),
        (60, 4, "duplicates", 0.0),  # d(a,n) = d(a,p) + margin exactly: a zero term, which does not count
    ],
)
def test_triplet_loss_and_gradient_match_brute_force(pattern, n, dim, kind, margin):
    rng = np.random.default_rng(n * 31 + dim)
    labels = torch.as_tensor(LABEL_PATTERNS[pattern](rng, n))
    z = torch.tensor(cell_vectors(kind, rng, n, dim), dtype=torch.float32, requires_grad=True)
    fast, reference = triplet_loss(z, labels, margin), brute_force_triplet_loss(z, labels, margin)
    assert fast.item() == pytest.approx(reference.item(), abs=1e-5)
    if pattern in ("all_singletons", "one_class"):
        assert fast.item() == 0.0
    assert fast.requires_grad  # a batch without terms still gives a loss one can call backward() on
    (fast_grad,), (reference_grad,) = torch.autograd.grad(fast, z), torch.autograd.grad(reference, z)
    torch.testing.assert_close(fast_grad, reference_grad, atol=1e-5, rtol=1e-4)


def test_triplet_loss_matches_brute_force_at_training_size():
    """One 512-cell batch shaped like training's: 8 labels, 32-d z with the classes partly apart."""
    rng = np.random.default_rng(0)
    labels = torch.as_tensor(rng.integers(0, 8, 512))
    z = torch.tensor(
        rng.normal(size=(512, 32)) + 0.3 * labels.numpy()[:, None], dtype=torch.float32, requires_grad=True
    )
    fast, reference = triplet_loss(z, labels), brute_force_triplet_loss(z, labels)
    assert fast.item() == pytest.approx(reference.item(), abs=1e-5)
    grads = [torch.autograd.grad(loss, z)[0] for loss in (fast, reference)]
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)


@pytest.fixture(scope="module")
def data(pbmc):
    X = pbmc.raw.X.toarray().astype(np.float32)
    E = np.random.default_rng(0).normal(size=(X.shape[1], 48)).astype(np.float32)
    return X, E, pbmc.obs["bulk_labels"].astype(str).to_numpy(), list(pbmc.raw.var_names)


@pytest.fixture(scope="module")
def trained(data):
    X, E, labels, genes = data
    return train_adaptor(X, E, labels, genes=genes, epochs=12, check_every=4, seed=0)


def test_training_restores_the_best_checkpoint(trained, data):
    X, E, labels, _ = data
    checks = [h["val_knn_accuracy"] for h in trained.history if "val_knn_accuracy" in h]
    assert len(checks) >= 2 and trained.provenance["best_val_knn_accuracy"] == max(checks)
    codes = np.unique(labels, return_inverse=True)[1]
    train_idx, val_idx = trained.split
    # the weights in the returned model are the best ones, not the last ones
    assert _validation_accuracy(trained.module, X, E, codes, train_idx, val_idx, "cpu") == max(checks)
    assert max(checks) > 0.5  # well above chance (0.1) even on a random gene table, as METHOD §4.2 warns


def test_save_load_identical_predictions_and_gene_overlap(trained, data, tmp_path):
    X, E, labels, genes = data
    trained.save(tmp_path / "adaptor.pt")
    loaded, overlap = load_adaptor(tmp_path / "adaptor.pt", table_dim=E.shape[1], genes=genes[:500] + ["NEW1"])
    before, after = trained.predict(X, E), loaded.predict(X, E)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_allclose(before[1], after[1], rtol=1e-5, atol=1e-6)
    assert overlap["shared"] == 500 and overlap["data_genes"] == 501 and overlap["training_genes"] == len(genes)
    # applied to data with fewer genes: the per-gene MLP maps whatever rows the table has
    labels_subset, _, z = loaded.predict(X[:, :500], E[:500])
    assert z.shape == (X.shape[0], 32) and len(labels_subset) == X.shape[0]
    with pytest.raises(ScelmoError, match="trained on 48-d gene vectors but the gene table has 384-d"):
        load_adaptor(tmp_path / "adaptor.pt", table_dim=384)
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(ScelmoError, match="not a readable scELMo adaptor"):
        load_adaptor(tmp_path / "bad.pt", table_dim=48)


def test_same_run_twice_on_cpu_gives_the_same_labels(trained, data):
    X, E, labels, genes = data
    again = train_adaptor(X, E, labels, genes=genes, epochs=12, check_every=4, seed=0)
    np.testing.assert_array_equal(trained.predict(X, E)[0], again.predict(X, E)[0])
    assert [h for h in again.history] == [h for h in trained.history]


def test_whitening_folded_into_the_first_layer_is_exact():
    """The adaptor trains on the whitened table and is then folded to take raw table rows: same outputs."""
    from scelmo_desktop.core.embedding.cell_vectors import Whitening
    from scelmo_desktop.core.tasks.adaptor.module import build_module, fold_whitening

    rng = np.random.default_rng(0)
    E = (rng.normal(size=(50, 16)) @ rng.normal(size=(16, 16)) + 3).astype(np.float32)  # anisotropic, shifted
    whitening = Whitening.fit(E)
    white = whitening.apply(E)
    np.testing.assert_allclose(white.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(np.cov(white, rowvar=False, bias=True), np.eye(white.shape[1]), atol=1e-3)
    torch.manual_seed(0)
    module = build_module(white.shape[1], 3)
    folded = fold_whitening(module, whitening, n_classes=3)
    X = torch.as_tensor(rng.random((7, 50)).astype(np.float32))
    with torch.no_grad():
        expected = module(torch.as_tensor(white), X)
        got = folded(torch.as_tensor(E), X)
    for a, b in zip(expected, got):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-4)
    # a single gene vector has no direction to whiten: the map is the identity
    single = Whitening.fit(E[:1])
    np.testing.assert_array_equal(single.apply(E[:2]), E[:2])
