"""linear_probe(): torch L-BFGS logistic regression against sklearn's LogisticRegression, and the
weight decay chosen by k-fold on small training sets against the old 20% hold-out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from anyssl.eval.linear import (
    HOLDOUT_GRID_V1,
    WEIGHT_DECAY_GRID,
    fit_logistic,
    linear_probe,
    standardize,
)


def _blobs(n: int, classes: int, d: int, spread: float, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, spread, (classes, d))
    y = rng.integers(0, classes, n)
    return (centers[y] + rng.normal(0, 1, (n, d))).astype(np.float32), y


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, ...]:
    x, y = load_digits(return_X_y=True)
    return tuple(train_test_split(x, y, test_size=0.3, random_state=0, stratify=y))


def test_separable_data_is_classified_perfectly() -> None:
    x, y = _blobs(300, 3, 8, spread=20.0, seed=0)
    grid = (1.0, 0.1)  # separable: weak decays run L-BFGS long, so a short grid
    res = linear_probe(x[:200], y[:200], x[200:], y[200:], device="cpu", grid=grid)
    assert res["top1"] == 1.0
    assert "top5" not in res  # only 3 classes
    assert res["weight_decay"] in grid
    assert res["cv_folds"] == 5  # 200 training samples: chosen by 5-fold cross-validation


@pytest.mark.parametrize("C", [0.1, 1.0])
def test_matches_sklearn_on_digits(digits: tuple[np.ndarray, ...], C: float) -> None:
    xtr, xte, ytr, yte = digits
    scaler = StandardScaler().fit(xtr)
    ref = LogisticRegression(C=C, max_iter=5000).fit(scaler.transform(xtr), ytr)
    ref_acc = ref.score(scaler.transform(xte), yte)
    res = linear_probe(xtr, ytr, xte, yte, weight_decay=1 / (C * len(xtr)), device="cpu")
    assert abs(res["top1"] - ref_acc) <= 0.02
    assert res["top1"] <= res["top5"] <= 1.0


def test_chosen_weight_decay_is_good_and_seeded(digits: tuple[np.ndarray, ...]) -> None:
    xtr, xte, ytr, yte = digits
    grid = (1.0, 1e-2)  # a short grid keeps the test fast (5 folds x 2 values)
    a = linear_probe(xtr, ytr, xte, yte, device="cpu", seed=3, grid=grid)
    b = linear_probe(xtr, ytr, xte, yte, device="cpu", seed=3, grid=grid)
    assert a == b
    assert a["top1"] > 0.93


def test_probabilities_match_sklearn_optimum() -> None:
    x, y = _blobs(200, 3, 5, spread=1.5, seed=1)  # overlapping classes: a unique, finite optimum
    xs = standardize(torch.from_numpy(x))[0]
    C = 0.5
    ref = LogisticRegression(C=C, tol=1e-8, max_iter=10_000).fit(xs.numpy(), y)
    w, b = fit_logistic(xs, torch.from_numpy(y), 3, 1 / (C * len(x)))
    probs = torch.softmax(xs @ w + b, dim=1).numpy()
    np.testing.assert_allclose(probs, ref.predict_proba(xs.numpy()), atol=2e-3)


def test_standardize_uses_train_statistics() -> None:
    train = torch.tensor([[1.0, 5.0], [3.0, 5.0]])  # second feature is constant
    test = torch.tensor([[2.0, 6.0]])
    tr, te = standardize(train, test)
    torch.testing.assert_close(tr, torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
    torch.testing.assert_close(te, torch.tensor([[0.0, 1.0]]))


def test_bad_inputs() -> None:
    x, y = _blobs(20, 2, 4, spread=5.0, seed=0)
    with pytest.raises(ValueError, match="features"):
        linear_probe(x, y, x[:, :3], y, device="cpu")
    with pytest.raises(ValueError, match="negative"):
        linear_probe(x, np.full(20, -1), x, y, device="cpu")
    with pytest.raises(ValueError, match="1-D"):
        linear_probe(x, y[:5], x, y, device="cpu")
    with pytest.raises(ValueError, match="weight_decay"):
        linear_probe(x, y, x, y, weight_decay=-1.0, device="cpu")


def _old_probe(x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray) -> tuple[float, ...]:
    """The probe before k-fold selection: one seeded 20% hold-out, grid 1e-1 .. 1e-6 fitted
    strong to weak with warm starts, ties to the stronger; top-1 and the weight decay."""
    xs, xts = standardize(torch.from_numpy(x), torch.from_numpy(xt))
    ys, c = torch.from_numpy(y), int(max(y.max(), yt.max())) + 1
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    n_val = max(1, round(0.2 * len(x)))
    val, fit = perm[:n_val], perm[n_val:]
    scores, init = {}, None
    for wd in (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6):
        init = fit_logistic(xs[fit], ys[fit], c, wd, init=init)
        scores[wd] = ((xs[val] @ init[0] + init[1]).argmax(1) == ys[val]).float().mean().item()
    wd = next(w for w in scores if scores[w] == max(scores.values()))
    w, b = fit_logistic(xs, ys, c, wd)
    return int(((xts @ w + b).argmax(1) == torch.from_numpy(yt)).sum()) / len(yt), wd


def test_holdout_options_reproduce_the_old_probe() -> None:
    x, y = _blobs(130, 3, 5, spread=1.5, seed=2)
    res = linear_probe(x[:100], y[:100], x[100:], y[100:], device="cpu", grid=HOLDOUT_GRID_V1,
                       selection="holdout")
    assert (res["top1"], res["weight_decay"]) == _old_probe(x[:100], y[:100], x[100:], y[100:])
    assert res["holdout"] == 0.2 and "cv_folds" not in res


def test_tiny_label_sets_choose_strong_regularization_by_cv() -> None:
    """50 labels in 100 dimensions (5 classes, weak means): the hold-out of 10 samples picks the
    old grid's 0.1; 5-fold over a grid reaching 10 picks a stronger decay and wins on test."""
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 0.3, (5, 100))
    ytr, yte = np.repeat(np.arange(5), 10), rng.integers(0, 5, 500)
    xtr = (centers[ytr] + rng.normal(0, 1, (50, 100))).astype(np.float32)
    xte = (centers[yte] + rng.normal(0, 1, (500, 100))).astype(np.float32)
    old = linear_probe(xtr, ytr, xte, yte, device="cpu", grid=HOLDOUT_GRID_V1,
                       selection="holdout")
    new = linear_probe(xtr, ytr, xte, yte, device="cpu", grid=(10.0, 1.0, 0.1, 0.01))
    assert new["cv_folds"] == 5 and new["weight_decay"] >= 1.0 > old["weight_decay"]
    assert new["top1"] >= old["top1"] + 0.015
    assert max(WEIGHT_DECAY_GRID) >= 10.0  # = C 2^-10 on 120 labels (GRACE's strongest)


def test_selection_is_seeded_and_bad_selections_raise() -> None:
    x, y = _blobs(60, 3, 4, spread=2.0, seed=3)
    a = linear_probe(x[:40], y[:40], x[40:], y[40:], device="cpu", grid=(1.0, 0.1), seed=1)
    assert a == linear_probe(x[:40], y[:40], x[40:], y[40:], device="cpu", grid=(1.0, 0.1),
                             seed=1)
    with pytest.raises(ValueError, match="grid is empty"):
        linear_probe(x, y, x, y, device="cpu", grid=())
    with pytest.raises(ValueError, match="valid: auto, cv, holdout"):
        linear_probe(x, y, x, y, device="cpu", selection="loo")
    few = linear_probe(x[:3], np.array([0, 1, 1]), x, y, device="cpu", grid=(1.0, 0.1))
    assert few["cv_folds"] == 2  # fewer samples than folds: as many folds as the data allow
