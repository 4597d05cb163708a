"""The report's math: class-balanced samples, PCA / t-SNE maps, nearest neighbours, queries."""

from __future__ import annotations

import numpy as np
import pytest

from anyssl.report.projection import (
    TSNE_MAX_POINTS,
    nearest_neighbours,
    pca_2d,
    pick_queries,
    subsample,
    tsne_2d,
)


def test_subsample_keeps_class_shares_and_small_classes() -> None:
    labels = np.array([0] * 900 + [1] * 90 + [2] * 10)
    idx = subsample(labels, 100, seed=0)
    assert len(idx) == 100 and len(np.unique(idx)) == len(idx)
    assert np.all(np.diff(idx) > 0)
    counts = np.bincount(labels[idx], minlength=3)
    assert counts.tolist() == [90, 9, 1]
    assert subsample(labels, 5000).tolist() == list(range(1000))  # small enough: everything
    odd = subsample(labels, 61)  # shares 54.9, 5.49, 0.61: the remainders fill up to 61
    assert np.bincount(labels[odd], minlength=3).tolist() == [55, 5, 1]
    assert not np.array_equal(subsample(labels, 100, seed=0), subsample(labels, 100, seed=1))


def test_subsample_with_more_classes_than_points() -> None:
    idx = subsample(np.arange(50), 10)
    assert len(idx) == 10
    with pytest.raises(ValueError, match="at least 1"):
        subsample(np.arange(5), 0)


def test_pca_matches_the_covariance_eigenvectors() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)) * np.array([5.0, 3.0, 1.0, 0.5, 0.2, 0.1])
    out = pca_2d(x)
    centred = x - x.mean(0)
    vals, vecs = np.linalg.eigh(np.cov(centred, rowvar=False))
    ref = centred @ vecs[:, ::-1][:, :2]  # the two largest-variance directions
    for j in range(2):  # equal up to the sign of each component
        assert np.allclose(np.abs(out[:, j]), np.abs(ref[:, j]), atol=1e-8)
    assert np.allclose(out.var(0, ddof=1), vals[::-1][:2])
    assert np.array_equal(pca_2d(x), pca_2d(x))  # signs fixed: the same map every time


def test_pca_of_tiny_inputs() -> None:
    assert pca_2d(np.ones((1, 4))).tolist() == [[0.0, 0.0]]
    one_feature = pca_2d(np.array([[0.0], [2.0], [4.0]]))
    assert np.allclose(np.abs(one_feature[:, 0]), [2, 0, 2]) and np.all(one_feature[:, 1] == 0)


def test_tsne_separates_two_clusters_and_bounds_its_size() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (20, 5)), rng.normal(20, 1, (20, 5))])
    out = tsne_2d(x, seed=0)
    assert out.shape == (40, 2)
    a, b = out[:20].mean(0), out[20:].mean(0)
    spread = max(out[:20].std(0).max(), out[20:].std(0).max())
    assert np.linalg.norm(a - b) > 3 * spread
    with pytest.raises(ValueError, match="use pca_2d"):
        tsne_2d(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=str(TSNE_MAX_POINTS)):
        tsne_2d(np.zeros((TSNE_MAX_POINTS + 1, 2)))


def test_nearest_neighbours_match_a_brute_force_cosine_ranking() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 4))
    queries = np.array([0, 7, 29])
    got = nearest_neighbours(x, queries, k=5)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    for q, row in zip(queries, got, strict=True):
        sims = [(float(unit[q] @ unit[j]), j) for j in range(30) if j != q]
        assert row.tolist() == [j for _, j in sorted(sims, reverse=True)[:5]]
    assert nearest_neighbours(x[:3], np.array([0]), k=8).shape == (1, 2)  # capped at N - 1


def test_pick_queries_go_round_the_labels() -> None:
    labels = np.array([2, 2, 2, 0, 0, 1])
    q = pick_queries(labels, 4, seed=0)
    assert len(q) == 4 and len(set(q.tolist())) == 4
    assert labels[q].tolist() == [0, 1, 2, 0]
    assert sorted(pick_queries(labels, 10).tolist()) == list(range(6))
