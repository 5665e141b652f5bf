"""The k-NN vote, its tie-breaking and threshold, and text matching, on tiny hand-made examples."""

import numpy as np
import pytest

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.tasks.annotate import UNKNOWN, knn_vote, scores, signature_match, text_markers, text_match


def test_vote_majority_confidence_and_threshold():
    # reference: three cells near x (label A), two near y (label B)
    reference = np.array([[1, 0], [1, 0.1], [1, -0.1], [0, 1], [0.1, 1]], dtype=np.float32)
    labels = ["A", "A", "A", "B", "B"]
    query = np.array([[1, 0.05], [0.05, 1]], dtype=np.float32)
    result = knn_vote(reference, labels, query, k=3)
    assert list(result.labels) == ["A", "B"]
    np.testing.assert_allclose(result.confidence, [1.0, 2 / 3])
    assert result.similarity[0] > 0.99
    strict = knn_vote(reference, labels, query, k=3, threshold=0.9)
    assert list(strict.labels) == ["A", UNKNOWN]


def test_ties_are_broken_by_similarity_then_alphabet():
    reference = np.array([[1, 0], [0, 1]], dtype=np.float32)
    closer_to_b = knn_vote(reference, ["A", "B"], np.array([[0.4, 0.6]], dtype=np.float32), k=2)
    assert closer_to_b.labels[0] == "B" and closer_to_b.confidence[0] == 0.5
    exact_tie = knn_vote(reference, ["B", "A"], np.array([[1, 1]], dtype=np.float32), k=2)
    assert exact_tie.labels[0] == "A"  # equal votes and similarity: alphabetical, the same on every run


def test_text_match_with_and_without_centering():
    types = np.array([[1, 0, 1], [0, 1, 1]], dtype=np.float32)  # a shared component (anisotropy) in dim 3
    cells = np.array([[0.9, 0.1, 1], [0.2, 0.8, 1]], dtype=np.float32)
    plain = text_match(cells, types, ["T", "B"])
    centred = text_match(cells, types, ["T", "B"], center=np.array([0, 0, 1], dtype=np.float32))
    assert list(plain.labels) == ["T", "B"] == list(centred.labels)
    assert (centred.confidence >= plain.confidence - 1e-6).all()  # removing the shared part sharpens the call
    result = scores(["T", "B"], plain.labels)
    assert result["accuracy"] == 1.0 and result["macro_f1"] == 1.0


def test_text_markers_pick_the_genes_closest_to_each_type_description():
    # gene vectors: g1, g2 point like type T; g3 like type B; g4 has no vector (unmatched) and is never chosen
    table = np.array([[1, 0, 1], [0.9, 0.1, 1], [0, 1, 1], [0, 0, 0]], dtype=np.float32)
    types = np.array([[1, 0, 1], [0, 1, 1]], dtype=np.float32)
    markers = text_markers(table, ["g1", "g2", "g3", "g4"], types, ["T", "B"], n_markers=2)
    assert markers["T"] == ["g1", "g2"]
    assert markers["B"][0] == "g3" and "g4" not in markers["B"]


def test_signature_match_scores_cells_by_their_markers_expression():
    import scipy.sparse as sp

    # cells 0-1 express g1/g2 (T markers), cells 2-3 express g3 (B marker)
    X = sp.csr_matrix(np.array([[3, 2, 0], [2, 3, 0], [0, 0, 3], [0, 0.5, 2]], dtype=np.float32))
    result = signature_match(X, ["g1", "g2", "g3"], {"T": ["g1", "g2"], "B": ["g3", "missing"]})
    assert list(result.labels) == ["T", "T", "B", "B"]
    assert ((result.confidence > 0.5) & (result.confidence <= 1)).all()
    strict = signature_match(X, ["g1", "g2", "g3"], {"T": ["g1", "g2"], "B": ["g3"]}, threshold=1.01)
    assert set(strict.labels) == {UNKNOWN}
    with pytest.raises(ScelmoError, match="no marker gene|None of the cell types"):
        signature_match(X, ["g1", "g2", "g3"], {"T": ["absent"]})
