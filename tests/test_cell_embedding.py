"""aa / wa against a hand-computed example (METHOD.md §2.1), sparse/dense/chunked agreement, edge cases."""

import threading

import numpy as np
import pytest
import scipy.sparse as sp

from scelmo_desktop.core._infra.jobs import Cancelled
from scelmo_desktop.core.embedding import cell_embedding, gene_noise
from scelmo_desktop.core.embedding.cell_embedding import ZeroExpressionWarning, average_gene_vectors

# 2 cells x 3 genes; gene 3 has no embedding (zero row) but still counts in both denominators.
X = np.array([[1.0, 2.0, 1.0], [0.0, 3.0, 0.0]], dtype=np.float32)
E = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]], dtype=np.float32)


def test_weighted_average_matches_hand_computation():
    # cell 1: total 4 -> (1/4)[1,0] + (2/4)[0,2] = [0.25, 1.0]; cell 2: total 3 -> (3/3)[0,2] = [0, 2]
    expected = np.array([[0.25, 1.0], [0.0, 2.0]])
    np.testing.assert_allclose(average_gene_vectors(X, E, mode="wa"), expected, rtol=1e-6)


def test_arithmetic_average_divides_by_all_genes():
    # cell 1: ([1,0] + 2*[0,2]) / 3 = [1/3, 4/3]; cell 2: 3*[0,2] / 3 = [0, 2]
    expected = np.array([[1 / 3, 4 / 3], [0.0, 2.0]])
    np.testing.assert_allclose(average_gene_vectors(X, E, mode="aa"), expected, rtol=1e-6)


@pytest.mark.parametrize("mode", ["wa", "aa"])
def test_sparse_dense_and_chunked_agree(mode, monkeypatch):
    rng = np.random.default_rng(0)
    dense = rng.poisson(0.3, size=(257, 120)).astype(np.float32)
    dense[:, 0] += 1  # no empty cells
    table = rng.normal(size=(120, 16)).astype(np.float32)
    table[::7] = 0  # unmatched genes
    reference = (dense / dense.sum(1, keepdims=True)) @ table if mode == "wa" else dense @ table / 120
    np.testing.assert_allclose(average_gene_vectors(dense, table, mode=mode), reference, rtol=1e-4, atol=1e-6)
    csr = sp.csr_matrix(dense)
    np.testing.assert_allclose(
        average_gene_vectors(csr, table, mode=mode, chunk_size=10), reference, rtol=1e-4, atol=1e-6
    )
    monkeypatch.setattr(cell_embedding, "DENSE_CHUNK_DENSITY", 2.0)  # force the sparse-product path
    np.testing.assert_allclose(
        average_gene_vectors(csr, table, mode=mode, chunk_size=64), reference, rtol=1e-4, atol=1e-6
    )


def test_wa_is_invariant_to_per_cell_scaling():
    scaled = X * np.array([[10.0], [0.5]], dtype=np.float32)
    np.testing.assert_allclose(
        average_gene_vectors(scaled, E, mode="wa"), average_gene_vectors(X, E, mode="wa"), rtol=1e-6
    )


def test_zero_total_cells_get_zero_vector_and_a_warning():
    with_empty = np.vstack([X, np.zeros((1, 3), dtype=np.float32)])
    with pytest.warns(ZeroExpressionWarning, match="1 of 3 cells"):
        out = average_gene_vectors(with_empty, E, mode="wa")
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[2], [0.0, 0.0])


def test_cancel_stops_between_chunks():
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        average_gene_vectors(X, E, mode="wa", chunk_size=1, cancel=cancel)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="gene table has 2 rows"):
        average_gene_vectors(X, E[:2], mode="wa")


def test_denormal_totals_give_the_same_wa_as_any_other_scale():
    """A cell whose total is denormal (1e-45: found by hypothesis in CI) has a reciprocal beyond float32; its wa
    must still be finite and equal to the wa of the same cell at any other scale."""
    import scipy.sparse as sp

    E = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    tiny = np.finfo(np.float32).smallest_subnormal  # 1.4e-45: its reciprocal overflows float32
    X = np.array([[tiny, 3 * tiny, 0.0], [1.0, 3.0, 0.0]], dtype=np.float32)
    for matrix in (X, sp.csr_matrix(X)):
        wa = average_gene_vectors(matrix, E, mode="wa")
        assert np.isfinite(wa).all()
        np.testing.assert_allclose(wa[0], wa[1], rtol=1e-5)


def test_per_sample_scaling_matched_on_shared_clusters_ignores_a_samples_cell_type_make_up():
    """Two samples hold the same two cell types in opposite proportions (80/20 and 20/80), and the second adds a
    shift to every cell. Plain per-sample scaling leaves the same type at different places in the two samples
    (each sample's gene means follow its make-up); scaling as if both had the pooled make-up of the shared
    clusters puts them at the same place, also when one sample holds a type the other lacks. Exact arithmetic, no
    randomness in the comparison."""
    from scelmo_desktop.core.embedding.cell_vectors import smoothed_expression

    rng = np.random.default_rng(0)
    types = {
        0: rng.poisson(0.5, size=(10, 4)) + np.array([3, 0, 1, 0]),
        1: rng.poisson(0.5, size=(10, 4)) + [0, 3, 0, 1],
    }
    blocks, batches, clusters = [], [], []
    for batch, (n0, n1), shift in (("a", (8, 2), 0.0), ("b", (2, 8), 2.0)):
        for cell_type, copies in ((0, n0), (1, n1)):
            blocks.append(np.tile(types[cell_type], (copies, 1)) + shift)
            batches += [batch] * (10 * copies)
            clusters += [cell_type] * (10 * copies)
    X, batches, clusters = np.vstack(blocks).astype(np.float32), np.array(batches), np.array(clusters)
    table = np.eye(4, 2, dtype=np.float32)

    def type_means(scaled):
        return {(b, t): scaled[(batches == b) & (clusters == t)].mean(axis=0) for b in "ab" for t in (0, 1)}

    plain = type_means(smoothed_expression(X, table, weight=0.0, batches=batches))
    matched = type_means(smoothed_expression(X, table, weight=0.0, batches=batches, clusters=clusters))
    for cell_type in (0, 1):
        assert np.abs(plain["a", cell_type] - plain["b", cell_type]).max() > 0.5  # the make-up moved it
        np.testing.assert_allclose(matched["a", cell_type], matched["b", cell_type], atol=1e-5)
    # a third type only the second sample holds: it enters the first sample's make-up with its pooled moments moved
    # by that sample's shift on the shared types, so the shared types still land at the same place in both samples
    third = rng.poisson(0.5, size=(30, 4)) + np.array([0, 0, 3, 3]) + 2.0
    X3 = np.vstack([X, third]).astype(np.float32)
    batches3, clusters3 = np.append(batches, ["b"] * 30), np.append(clusters, [2] * 30)
    scaled3 = smoothed_expression(X3, table, weight=0.0, batches=batches3, clusters=clusters3)
    for cell_type in (0, 1):
        a = scaled3[: len(X)][(batches == "a") & (clusters == cell_type)].mean(axis=0)
        b = scaled3[: len(X)][(batches == "b") & (clusters == cell_type)].mean(axis=0)
        np.testing.assert_allclose(a, b, atol=1e-5)
    # cells outside every shared cluster (-1) are scaled with their batch, not used to measure it
    outside = np.where(np.arange(len(X)) % 7 == 0, -1, clusters)
    partial = smoothed_expression(X, table, weight=0.0, batches=batches, clusters=outside)
    assert np.isfinite(partial).all()
    # no cluster shared at all: plain per-sample scaling
    none = np.full(len(X), -1)
    np.testing.assert_allclose(
        smoothed_expression(X, table, weight=0.0, batches=batches, clusters=none),
        smoothed_expression(X, table, weight=0.0, batches=batches),
    )


def test_text_neighbour_graph_averages_each_genes_nearest_descriptions_not_itself():
    from scelmo_desktop.core.embedding.cell_vectors import text_neighbour_graph

    # genes 0/1 describe one thing, 2/3 another; each gene's single nearest neighbour is its pair
    table = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]], dtype=np.float32)
    graph = text_neighbour_graph(table, k=1).toarray()
    np.testing.assert_array_equal(graph, np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]))
    wider = text_neighbour_graph(table, k=3).toarray()
    np.testing.assert_allclose(wider.sum(axis=1), 1.0, rtol=1e-6)  # a mean: each row sums to one
    assert not np.diag(wider).any()


def test_text_neighbours_ignore_what_every_description_shares_and_go_both_ways():
    """The graph is built on the whitened table, so a component that every description shares (the fact sheets'
    common wording) or a direction that dominates the table's variance cannot decide who neighbours whom: any
    invertible linear map of the table plus a common shift gives the same graph. And the relation is symmetric,
    so a gene that many others pick (a generic description) averages over them in turn."""
    from scelmo_desktop.core.embedding.cell_vectors import text_neighbour_graph

    rng = np.random.default_rng(0)
    table = rng.normal(size=(40, 5)).astype(np.float32)
    mixed = table @ rng.normal(size=(5, 5)).astype(np.float32) * [50.0, 1.0, 1.0, 1.0, 1.0] + 1000.0
    graph = text_neighbour_graph(table, k=3).toarray()
    np.testing.assert_allclose(text_neighbour_graph(mixed, k=3).toarray(), graph, atol=1e-6)
    raw = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
    assert np.allclose(raw @ raw.T, 1.0, atol=0.01)  # raw cosines: every pair alike, no neighbour to tell
    np.testing.assert_array_equal(graph > 0, (graph > 0).T)
    np.testing.assert_allclose(graph.sum(axis=1), 1.0, rtol=1e-6)
    assert (np.count_nonzero(graph, axis=1) >= 3).all() and not np.diag(graph).any()


def test_smoothed_expression_is_the_scanpy_scaling_at_weight_zero_and_mixes_text_neighbours_above():
    from scelmo_desktop.core.embedding.cell_vectors import smoothed_expression, text_neighbour_graph

    rng = np.random.default_rng(0)
    counts = rng.poisson(1.0, size=(60, 4)).astype(np.float32)
    table = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]], dtype=np.float32)
    scaled = (counts - counts.mean(axis=0)) / counts.std(axis=0)  # sc.pp.scale: population sd, then the clip
    np.testing.assert_allclose(smoothed_expression(sp.csr_matrix(counts), table, weight=0.0), scaled, atol=1e-5)
    half = smoothed_expression(counts, table, weight=0.5, gene_weights="alike")
    neighbours = text_neighbour_graph(table).toarray()  # 4 genes: each gene's 3 others, equally
    np.testing.assert_allclose(half, 0.5 * scaled + 0.5 * scaled @ neighbours.T, atol=1e-5)
    np.testing.assert_allclose(half[:, 0], 0.5 * scaled[:, 0] + 0.5 * scaled[:, 1:].mean(axis=1), atol=1e-5)
    # by noise share (the default): gene g keeps 1 - w_g of itself and takes w_g of its neighbours' mean, w_g following
    # its noise share, their mean the weight (more genes than components, so that the share is not 0 everywhere)
    many = np.log1p(rng.poisson(1.0, size=(60, 80))).astype(np.float32)
    wide_table = rng.normal(size=(80, 8)).astype(np.float32)
    many_scaled = (many - many.mean(axis=0)) / many.std(axis=0)
    per_gene = gene_noise.gene_weights(gene_noise.noise_share(many_scaled, many.mean(axis=0), many.var(axis=0)), 0.35)
    assert per_gene.mean() == pytest.approx(0.35, abs=1e-6) and per_gene.std() > 0.01
    mean_of_neighbours = many_scaled @ text_neighbour_graph(wide_table).toarray().T
    np.testing.assert_allclose(
        smoothed_expression(many, wide_table, weight=0.35),
        many_scaled * (1 - per_gene) + mean_of_neighbours * per_gene,
        atol=1e-3,  # the share from float32 scaling in the app, float64 here
    )
    np.testing.assert_array_equal(  # the default is the noise share
        smoothed_expression(many, wide_table, weight=0.35),
        smoothed_expression(many, wide_table, weight=0.35, gene_weights="noise"),
    )
    # per batch: every gene is centred and unit-variance within each batch, so a batch's shift is gone
    batches = np.repeat(["a", "b"], 30)
    shifted = counts + (batches == "b")[:, None] * 5.0
    within = smoothed_expression(shifted, table, weight=0.0, batches=batches)
    for batch in ("a", "b"):
        np.testing.assert_allclose(within[batches == batch].mean(axis=0), 0.0, atol=1e-5)
    constant = np.ones((5, 4), dtype=np.float32)
    assert not smoothed_expression(constant, table).any()  # a constant gene scales to zero, never NaN


def test_a_genes_noise_share_is_low_when_it_carries_the_main_axes_or_a_rare_types_marker():
    rng = np.random.default_rng(0)
    n, genes = 400, 400
    kind = rng.integers(0, 2, n)  # two common types
    rare = np.zeros(n, dtype=bool)
    rare[:12] = True  # and twelve cells of a rare one
    # genes 4.. carry sampling noise only, over a range of means (the floor rises with the mean)
    X = np.log1p(rng.poisson(np.linspace(0.05, 3.0, genes), size=(n, genes))).astype(np.float32)
    X[:, 0] = np.log1p(rng.poisson(np.where(kind == 1, 8.0, 0.5)))  # a common type's marker, with two more
    X[:, 2:4] = np.log1p(rng.poisson(np.where(kind == 1, 6.0, 0.5)[:, None], size=(n, 2)))
    X[:, 1] = np.log1p(rng.poisson(np.where(rare, 30.0, 0.0)))  # the rare type's marker, low mean
    scaled = (X - X.mean(axis=0)) / X.std(axis=0)
    outside = gene_noise.share_outside_components(scaled)
    at_floor = gene_noise.share_at_mean_floor(X.mean(axis=0), X.var(axis=0))
    assert outside.shape == at_floor.shape == (genes,) and ((outside >= 0) & (outside <= 1)).all()
    assert outside[0] < 0.5 < np.median(outside[4:])  # the common marker is what the main axes reproduce
    assert at_floor[1] < 0.3 < np.median(at_floor[4:])  # the rare marker varies far above its mean's floor
    share = gene_noise.noise_share(scaled, X.mean(axis=0), X.var(axis=0))
    np.testing.assert_allclose(share, np.minimum(outside, at_floor))
    weights = gene_noise.gene_weights(share, 0.35)
    assert weights.mean() == pytest.approx(0.35, abs=1e-6) and max(weights[0], weights[1]) < 0.35
    assert (weights <= 1).all() and (gene_noise.gene_weights(np.zeros(genes), 0.35) == np.float32(0.35)).all()
    assert (gene_noise.share_outside_components(scaled[:1]) == 1).all()  # one cell: no component
    assert (gene_noise.share_outside_components(scaled[:, :20]) == 0).all()  # no more genes than components


def test_the_text_priors_weight_is_full_up_to_its_cell_count_and_falls_as_one_over_cells_above():
    from scelmo_desktop.core.embedding.cell_vectors import (
        SMOOTHING_FULL_CELLS,
        SMOOTHING_WEIGHT,
        smoothed_expression,
        smoothing_weight,
        space_settings,
    )

    assert smoothing_weight(1) == smoothing_weight(SMOOTHING_FULL_CELLS) == SMOOTHING_WEIGHT
    assert smoothing_weight(2 * SMOOTHING_FULL_CELLS) == pytest.approx(SMOOTHING_WEIGHT / 2)
    assert 0 < smoothing_weight(1_000_000) < smoothing_weight(10 * SMOOTHING_FULL_CELLS)
    # smoothed_expression takes the weight for its own number of cells unless one is given
    rng = np.random.default_rng(0)
    table = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]], dtype=np.float32)
    many = rng.poisson(1.0, size=(2 * SMOOTHING_FULL_CELLS, 4)).astype(np.float32)
    np.testing.assert_allclose(
        smoothed_expression(many, table), smoothed_expression(many, table, weight=SMOOTHING_WEIGHT / 2), atol=1e-6
    )
    assert not np.allclose(smoothed_expression(many, table), smoothed_expression(many, table, weight=SMOOTHING_WEIGHT))
    # and provenance records the weight a file got
    assert space_settings("smoothed", 2 * SMOOTHING_FULL_CELLS)["smoothing_weight"] == round(SMOOTHING_WEIGHT / 2, 4)
    assert space_settings("standard", 10) == {"conditioning": "standard"}


def test_the_learned_weight_is_the_mix_that_best_recovers_a_genes_signal():
    """A planted gene ``x = s + n`` and its text neighbours' mean ``m`` (another noisy copy of ``s``, or an
    unrelated signal): the weight :func:`gene_noise.shrinkage` gives from the noise variance and the gap
    ``E[(x - m)^2]`` is the one whose ``(1 - w) x + w m`` is closest to ``s``, to within the grid step (0.01) plus
    the sampling noise of 20,000 cells (about 0.01 at these variances; measured over seeds 0-9: the largest
    difference 0.015, asserted below 0.03). A neighbour mean that goes its own way earns a weight near 0, a
    faithful one a large weight."""
    rng = np.random.default_rng(0)
    cells, noise = 20_000, 0.6
    signal = rng.normal(size=cells)
    x = signal + rng.normal(scale=np.sqrt(noise), size=cells)
    neighbours = {
        "faithful": signal + rng.normal(scale=np.sqrt(noise / 10), size=cells),
        "its own way": rng.normal(size=cells),
    }
    grid = np.linspace(0, 1, 101)
    learned = {}
    for name, m in neighbours.items():
        (learned[name],) = gene_noise.shrinkage(np.array([noise]), np.array([np.mean((x - m) ** 2)]))
        errors = [np.mean(((1 - w) * x + w * m - signal) ** 2) for w in grid]
        assert abs(learned[name] - grid[int(np.argmin(errors))]) < 0.03
    assert learned["faithful"] > 0.8 and learned["its own way"] < 0.3
    assert gene_noise.shrinkage(np.array([1.0, 0.5]), np.array([0.0, 0.25])).tolist() == [0.0, 1.0]  # clipped


def test_genes_that_already_move_with_their_text_neighbours_borrow_less():
    """``gene_weights="coherence"`` (a candidate, measured and not the default: docs/benchmarks.md): a programme
    of genes described alike and expressed together (as Baron's ER-stress genes are) keeps its own values: its
    genes' weights are discounted by 1 - r^2 of their correlation with their neighbours' mean, the mean weight
    unchanged, while genes whose neighbours do not track them keep their noise-share weight's rank."""
    from scelmo_desktop.core.embedding.cell_vectors import (
        coherence_weights,
        neighbour_correlation,
        noise_weights,
        smoothed_expression,
        text_neighbour_graph,
    )

    rng = np.random.default_rng(0)
    n, genes, module = 300, 120, np.arange(6)
    stressed = rng.random(n) < 0.3
    X = np.log1p(rng.poisson(1.0, size=(n, genes))).astype(np.float32)
    X[:, module] = np.log1p(rng.poisson(np.where(stressed, 4.0, 0.5)[:, None], size=(n, len(module))))
    table = rng.normal(size=(genes, 16)).astype(np.float32)
    table[module] = table[0] + 0.05 * rng.normal(size=(len(module), 16))  # the programme is described alike
    graph = text_neighbour_graph(table)
    scaled = smoothed_expression(X, table, weight=0.0)
    r = neighbour_correlation(scaled, graph)
    means = np.asarray((graph @ scaled.T).T)
    expected = [np.corrcoef(scaled[:, g], means[:, g])[0, 1] for g in range(genes)]
    np.testing.assert_allclose(r, expected, atol=1e-4)
    assert r[module].min() > 0.5 > 0.3 > np.quantile(r[len(module) :], 0.9)  # 0.62-0.69 against 0.2 at most
    plain, discounted = noise_weights(X, scaled, 0.35), coherence_weights(X, scaled, 0.35, graph)
    assert discounted.mean() == pytest.approx(0.35, abs=1e-5)
    assert (discounted[module] < 0.7 * plain[module]).all()  # the programme borrows less of itself (1 - r^2 < 0.62)
    rest = np.arange(len(module), genes)
    assert np.corrcoef(plain[rest], discounted[rest])[0, 1] > 0.9
    np.testing.assert_allclose(
        smoothed_expression(X, table, weight=0.35, gene_weights="coherence"),
        scaled * (1 - discounted) + means * discounted,
        atol=1e-3,
    )
