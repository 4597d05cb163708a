"""knn_classify(): weighted kNN (InstDisc / MoCo monitor) against a per-point loop, and k and T
chosen on the training split."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from anyssl.eval import evaluate
from anyssl.eval.knn import K_GRID, TEMPERATURE_GRID, knn_classify, knn_grid_accuracy, knn_scores


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


def test_grid_accuracy_matches_loop_reference(data: tuple[np.ndarray, ...]) -> None:
    """One top-max(k) pass scores every (k, T) as the per-point loop does for each pair."""
    xtr, ytr, xte, yte = data
    bank = torch.nn.functional.normalize(torch.from_numpy(xtr), dim=1)
    query = torch.nn.functional.normalize(torch.from_numpy(xte), dim=1)
    ks, ts = [40, 7, 1], [0.5, 0.07, 0.02]
    got = knn_grid_accuracy(query, torch.from_numpy(yte), bank, torch.from_numpy(ytr), 8, ks, ts,
                            batch_size=4)
    assert set(got) == {(k, t) for k in ks for t in ts}
    for (k, t), acc in got.items():
        assert acc == pytest.approx(_accuracy(_reference_scores(xtr, ytr, xte, 8, k, t), yte, 1))
    assert len(set(got.values())) > 1  # the pairs differ on this data


def test_explicit_k_reproduces_the_fixed_protocol(data: tuple[np.ndarray, ...]) -> None:
    """k=200 (T 0.07 by default) is today's fixed protocol, through the function and evaluate()."""
    xtr, ytr, xte, yte = data
    ref = _reference_scores(xtr, ytr, xte, 8, 60, 0.07)  # k=200 capped at the 60 train points
    res = knn_classify(xtr, ytr, xte, yte, k=200, device="cpu")
    assert res == {"top1": _accuracy(ref, yte, 1), "top5": _accuracy(ref, yte, 5), "k": 60,
                   "temperature": 0.07}
    sets = [torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
            for x, y in ((xtr, ytr), (xte, yte))]
    out = evaluate(torch.nn.Identity(), None, *sets, protocols=("knn",), device="cpu",
                   options={"knn": {"k": 200}})
    assert out["pretrained"]["knn"] == res
    chosen = evaluate(torch.nn.Identity(), None, *sets, protocols=("knn",), device="cpu")
    assert chosen["pretrained"]["knn"]["cv_folds"] == 5  # the default chooses k and T


def _distractor_data(seed: int) -> tuple[np.ndarray, ...]:
    """6 classes of two tight, far-apart clusters of 3 points, all near a common direction, and
    one large distractor class of 150 points nearer that direction than the clusters are to each
    other: k=200 (T 0.07) votes the distractor, a small k the query's own cluster."""
    rng = np.random.default_rng(seed)
    d = 32
    common = np.eye(d)[0]
    centers = 0.8 * common + 0.6 * np.linalg.qr(rng.normal(size=(d, d)))[0][1:13]  # 12 x D
    def cluster_points(per: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.repeat(np.arange(12), per)
        return centers[idx] + 0.05 * rng.normal(size=(len(idx), d)), idx // 2
    x_small, y_small = cluster_points(3)
    x_big = 0.87 * common + 0.5 * rng.normal(size=(150, d)) / np.sqrt(d)
    xtr = np.concatenate([x_small, x_big]).astype(np.float32)
    ytr = np.concatenate([y_small, np.full(150, 6)])
    xte, yte = cluster_points(5)
    return xtr, ytr, xte.astype(np.float32), yte


def test_small_k_is_chosen_where_it_is_right() -> None:
    xtr, ytr, xte, yte = _distractor_data(0)
    fixed = knn_classify(xtr, ytr, xte, yte, k=200, device="cpu")
    assert fixed["top1"] < 0.5  # the old default loses to the distractor
    k_only = knn_classify(xtr, ytr, xte, yte, temperature=0.07, device="cpu")
    assert k_only["k"] <= 5 and k_only["temperature"] == 0.07 and k_only["top1"] > 0.9
    both = knn_classify(xtr, ytr, xte, yte, device="cpu")
    assert both["top1"] > 0.9 and both["cv_folds"] == 5
    assert both["temperature"] in TEMPERATURE_GRID  # here T=0.02 also rescues a large k (tie:
    assert both["k"] in (*K_GRID, 148)  # the larger k wins), capped at the 148 fitted points
    assert both == knn_classify(xtr, ytr, xte, yte, device="cpu", seed=0, batch_size=7)


def test_small_training_sets_fall_back_and_never_crash(data: tuple[np.ndarray, ...]) -> None:
    xtr, ytr, xte, yte = data
    few = knn_classify(xtr[:3], np.array([0, 1, 1]), xte, yte, device="cpu")
    assert few["cv_folds"] == 2 and few["k"] == 1  # a fit part of 1 caps every k at 1
    held = knn_classify(xtr, ytr, xte, yte, device="cpu", selection="holdout")
    assert held["holdout"] == 0.2 and held["k"] <= 48  # k capped at the 48 fitted points
    with pytest.raises(ValueError, match="at least 2 training samples"):
        knn_classify(xtr[:1], ytr[:1], xte, yte, device="cpu")
    assert knn_classify(xtr[:1], ytr[:1], xte, yte, k=5, device="cpu")["k"] == 1  # fixed k: ok


def test_bad_grids(data: tuple[np.ndarray, ...]) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        knn_classify(*data, k_grid=(), device="cpu")
    with pytest.raises(ValueError, match="must not be empty"):
        knn_classify(*data, temperature_grid=(), device="cpu")
    with pytest.raises(ValueError, match="k must be"):
        knn_classify(*data, k_grid=(0, 5), device="cpu")
    with pytest.raises(ValueError, match="temperature"):
        knn_classify(*data, temperature_grid=(0.07, -1.0), device="cpu")
    with pytest.raises(ValueError, match="valid: auto, cv, holdout"):
        knn_classify(*data, selection="best", device="cpu")
