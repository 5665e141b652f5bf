"""Integration metrics on cases with a known answer: batches perfectly mixed versus fully separated."""

import numpy as np
import pytest

from scelmo_desktop.core.tasks import batch_metrics as bm


def _two_labels(offset_batch: float, seed: int = 0):
    """Two well-separated label clusters (40 cells each, 5-d); within each, batch 'b' is shifted by
    ``offset_batch`` along a direction orthogonal to the label axis (0 = perfectly mixed)."""
    rng = np.random.default_rng(seed)
    X, labels, batches = [], [], []
    for label, centre in (("T", 0.0), ("B", 20.0)):
        for batch in ("a", "b"):
            points = rng.normal(0, 1, (40, 5))
            points[:, 0] += centre
            if batch == "b":
                points[:, 1] += offset_batch
            X.append(points)
            labels += [label] * 40
            batches += [batch] * 40
    return np.vstack(X), np.array(labels), np.array(batches)


def _mixed_and_separated() -> tuple[dict, dict]:
    """The batch-removal scores of the mixed case and of the separated one (each against the separated data)."""
    unintegrated = _two_labels(12.0)[0]
    X, labels, batches = _two_labels(0.0)
    mixed = bm.batch_removal(X, batches, labels, X_unintegrated=unintegrated)
    X, labels, batches = _two_labels(12.0)
    return mixed, bm.batch_removal(X, batches, labels, X_unintegrated=unintegrated)


def test_mixed_batches_score_high_and_separated_batches_low():
    mixed, separated = _mixed_and_separated()
    assert mixed["asw_batch"] > 0.9 and separated["asw_batch"] < 0.3
    assert mixed["ilisi"] > 0.8 and separated["ilisi"] < 0.05
    assert mixed["kbet"] > 0.8 and separated["kbet"] < 0.05
    assert mixed["pcr_batch"] > 0.9 and separated["pcr_batch"] == pytest.approx(0.0, abs=1e-9)
    # labels stay connected either way in the mixed case; the shifted batches split each label in two
    assert mixed["graph_connectivity"] == 1.0
    assert separated["graph_connectivity"] == pytest.approx(0.5, abs=0.01)


def test_pcr_is_one_when_batch_is_all_the_variance():
    batches = np.repeat(["a", "b"], 50)
    X = np.zeros((100, 3))
    X[batches == "b", 0] = 5.0
    assert bm.pcr(X, batches, n_comps=1) == pytest.approx(1.0)


def test_clisi_and_aggregate():
    X, labels, batches = _two_labels(0.0)
    assert bm.clisi(X, labels) > 0.95  # every neighbourhood holds one label
    row = {
        "nmi": 1.0,
        "ari": 1.0,
        "asw_label": 1.0,
        "clisi": 1.0,
        "asw_batch": 0.5,
        "ilisi": 0.5,
        "kbet": 0.5,
        "graph_connectivity": 0.5,
        "pcr_batch": float("nan"),
    }
    assert bm.aggregate(row) == {"S_bio": 1.0, "S_batch": 0.5, "overall": pytest.approx(0.8)}


def test_hand_computed_kbet_on_a_tiny_neighbourhood():
    # one label, 2 batches in a line: a-cells at 0..4, b-cells at 100..104; with k = 4 every cell's neighbours
    # are its own batch: χ² = (4-2)²/2 + (0-2)²/2 = 4 > 3.84 (α = 0.05, 1 dof) → rejected
    X = np.concatenate([np.arange(5), 100 + np.arange(5)])[:, None].astype(float)
    assert bm.kbet(X, ["a"] * 5 + ["b"] * 5, ["T"] * 10, k=4) == 0.0


def test_large_data_is_scored_on_a_seeded_subset_that_keeps_the_verdict(monkeypatch):
    """Silhouettes and LISI cost time quadratic in the cells (most of an hour for harmonypy's LISI on 100,000
    cells), so above ``METRIC_MAX_CELLS`` they score a seeded random subset. The limit is lowered here so that the
    rule runs on 160 cells: the subset is fixed, and mixed and separated batches keep scores far apart."""
    from scelmo_desktop.core.tasks import metrics

    assert np.array_equal(metrics.metric_cells(100), np.arange(100))
    monkeypatch.setattr(metrics, "METRIC_MAX_CELLS", 60)
    first, again = metrics.metric_cells(160), metrics.metric_cells(160)
    assert len(first) == 60 and np.array_equal(first, again) and np.all(np.diff(first) > 0)
    assert len(bm.lisi(*_two_labels(0.0)[::2])) == 60
    mixed, separated = _mixed_and_separated()
    assert mixed["asw_batch"] > 0.9 and separated["asw_batch"] < 0.3
    # 60 cells leave LISI's 90 neighbours at the whole subset, which blurs a separation; still far apart
    assert mixed["ilisi"] > 0.7 and separated["ilisi"] < 0.3
    X, labels, _ = _two_labels(12.0)
    assert metrics.silhouette_label(X, labels) > 0.8  # two labels 20 apart, on the subset too
