"""svm_cv() (InfoGraph / GraphCL protocol) and svm_split() (TS2Vec protocol)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_circles
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC

from anyssl.eval.svm import C_GRID, TS2VEC_C_GRID, svm_cv, svm_split


def _blobs(n: int, classes: int, spread: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, spread, (classes, 4))
    y = np.arange(n) % classes
    return centers[y] + rng.normal(size=(n, 4)), y


def _reference_cv(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[float, float]:
    """Nested CV by hand: outer 10 stratified folds, inner 5-fold choice of C (first best)."""
    accs = []
    for tr, te in StratifiedKFold(10, shuffle=True, random_state=seed).split(x, y):
        inner = list(StratifiedKFold(5).split(x[tr], y[tr]))
        means = []
        for c in C_GRID:
            scores = [SVC(kernel="linear", C=c).fit(x[tr][a], y[tr][a]).score(x[tr][b], y[tr][b])
                      for a, b in inner]
            means.append(np.mean(scores))
        best = C_GRID[int(np.argmax(means))]
        accs.append(SVC(kernel="linear", C=best).fit(x[tr], y[tr]).score(x[te], y[te]))
    return float(np.mean(accs)), float(np.std(accs))


def test_svm_cv_separable_data() -> None:
    x, y = _blobs(100, 2, spread=10.0, seed=0)
    res = svm_cv(x, y)
    assert res["mean"] >= 0.99 and res["std"] <= 0.03


def test_svm_cv_matches_hand_written_nested_cv() -> None:
    x, y = _blobs(80, 2, spread=1.0, seed=3)  # overlapping: accuracy varies across folds
    res = svm_cv(x, y, seed=5)
    mean, std = _reference_cv(x, y, seed=5)
    assert res["mean"] == pytest.approx(mean)
    assert res["std"] == pytest.approx(std)
    assert 0.5 < res["mean"] < 1.0 and res["std"] > 0


def test_svm_split_rbf_beats_linear_on_circles() -> None:
    x, y = make_circles(300, noise=0.05, factor=0.4, random_state=0)
    rbf = svm_split(x[:200], y[:200], x[200:], y[200:])
    lin = svm_split(x[:200], y[:200], x[200:], y[200:], kernel="linear",
                    C_grid=(0.01, 0.1, 1.0))
    assert rbf["top1"] > 0.95 and lin["top1"] < 0.8
    assert rbf["C"] in TS2VEC_C_GRID


def test_svm_split_small_train_skips_search() -> None:
    x, y = _blobs(60, 3, spread=10.0, seed=1)
    res = svm_split(x[:30], y[:30], x[30:], y[30:])  # < 50 training samples: C = max(grid)
    assert res == {"top1": 1.0}


def test_bad_inputs() -> None:
    x, y = _blobs(40, 2, spread=5.0, seed=0)
    with pytest.raises(ValueError, match="folds"):
        svm_cv(x, y, folds=1)
    with pytest.raises(ValueError, match="N labels"):
        svm_cv(x, y[:10])
    with pytest.raises(ValueError, match="features"):
        svm_split(x, y, x[:, :2], y)
    with pytest.raises(ValueError, match="C_grid"):
        svm_split(x, y, x, y, C_grid=())
