"""knn_classify(): weighted kNN (InstDisc / MoCo monitor) against a per-point loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from anyssl.eval.knn import knn_classify, knn_scores


def _reference_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                      classes: int, k: int, t: float) -> np.ndarray:
    """Per test point: cosine similarity to every train point, top-k, exp(sim/T) votes."""
    out = np.zeros((len(test_x), classes))
    for i, q in enumerate(test_x):
        sims = [float(q @ v) / (np.linalg.norm(q) * np.linalg.norm(v)) for v in train_x]
        order = sorted(range(len(sims)), key=lambda j: -sims[j])[:k]
        for j in order:
            out[i, train_y[j]] += math.exp(sims[j] / t)
    return out


def _accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    top = np.argsort(-scores, axis=1)[:, :k]
    return float(np.mean([labels[i] in top[i] for i in range(len(labels))]))


@pytest.fixture
def data() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    return (rng.normal(size=(60, 6)).astype(np.float32), rng.integers(0, 8, 60),
            rng.normal(size=(25, 6)).astype(np.float32), rng.integers(0, 8, 25))


@pytest.mark.parametrize("k", [10, 40])
def test_matches_loop_reference(data: tuple[np.ndarray, ...], k: int) -> None:
    xtr, ytr, xte, yte = data
    t = 0.1
    ref = _reference_scores(xtr, ytr, xte, 8, k, t)
    bank = torch.nn.functional.normalize(torch.from_numpy(xtr), dim=1)
    query = torch.nn.functional.normalize(torch.from_numpy(xte), dim=1)
    scores = knn_scores(query, bank, torch.from_numpy(ytr), 8, k=k, temperature=t)
    np.testing.assert_allclose(scores.numpy(), ref, rtol=1e-4)
    res = knn_classify(xtr, ytr, xte, yte, k=k, temperature=t, device="cpu")
    assert res["top1"] == pytest.approx(_accuracy(ref, yte, 1))
    assert (ref > 0).all() == (k == 40)  # k=10: some classes get no vote, tied in the top-5
    if k == 40:
        assert res["top5"] == pytest.approx(_accuracy(ref, yte, 5))


def test_batch_size_does_not_change_result(data: tuple[np.ndarray, ...]) -> None:
    a = knn_classify(*data, k=7, batch_size=3, device="cpu")
    b = knn_classify(*data, k=7, batch_size=1000, device="cpu")
    assert a == b


def test_k_is_capped_at_train_size(data: tuple[np.ndarray, ...]) -> None:
    xtr, ytr, xte, yte = data
    capped = knn_classify(xtr[:20], ytr[:20], xte, yte, k=10_000, device="cpu")
    assert capped["k"] == 20
    assert capped == knn_classify(xtr[:20], ytr[:20], xte, yte, k=20, device="cpu")


def test_separable_clusters() -> None:
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(3, 16)) * 10
    y = rng.integers(0, 3, 150)
    x = centers[y] + rng.normal(size=(150, 16))
    res = knn_classify(x[:100], y[:100], x[100:], y[100:], k=20, device="cpu")
    assert res["top1"] == 1.0 and "top5" not in res


def test_bad_arguments(data: tuple[np.ndarray, ...]) -> None:
    with pytest.raises(ValueError, match="k must be"):
        knn_classify(*data, k=0, device="cpu")
    with pytest.raises(ValueError, match="temperature"):
        knn_classify(*data, temperature=0.0, device="cpu")
    xtr, ytr, xte, yte = data
    with pytest.raises(ValueError, match="features"):
        knn_classify(xtr, ytr, xte[:, :4], yte, device="cpu")
