"""The k-NN vote, its tie-breaking and threshold, and text matching, on tiny hand-made examples."""

import numpy as np

from scelmo_desktop.core.annotate import UNKNOWN, knn_vote, scores, text_match


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
