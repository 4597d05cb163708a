"""linear_probe(): torch L-BFGS logistic regression against sklearn's LogisticRegression."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from anyssl.eval.linear import WEIGHT_DECAY_GRID, fit_logistic, linear_probe, standardize


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
    res = linear_probe(x[:200], y[:200], x[200:], y[200:], device="cpu")
    assert res["top1"] == 1.0
    assert "top5" not in res  # only 3 classes
    assert res["weight_decay"] in WEIGHT_DECAY_GRID


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
    a = linear_probe(xtr, ytr, xte, yte, device="cpu", seed=3)
    b = linear_probe(xtr, ytr, xte, yte, device="cpu", seed=3)
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
