"""anyssl.eval.selection: k-fold on small training sets, one hold-out on large ones, against
sklearn's StratifiedKFold and a hand-written LogisticRegression cross-validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from anyssl.eval.linear import choose_weight_decay, standardize
from anyssl.eval.selection import (
    FOLDS,
    MAX_CV_SAMPLES,
    VAL_FRACTION,
    best,
    cross_validate,
    holdout_split,
    selection_splits,
)


def _labels(counts: list[int]) -> torch.Tensor:
    return torch.cat([torch.full((c,), i) for i, c in enumerate(counts)])


def test_small_sets_get_sklearn_stratified_folds() -> None:
    y = _labels([20, 13, 7])
    splits, how = selection_splits(y, seed=4)
    assert how == {"cv_folds": float(FOLDS)}
    ref = StratifiedKFold(FOLDS, shuffle=True, random_state=4).split(np.zeros(len(y)), y.numpy())
    for (fit, val), (rfit, rval) in zip(splits, ref, strict=True):
        assert fit.tolist() == rfit.tolist() and val.tolist() == rval.tolist()
    assert sorted(torch.cat([v for _, v in splits]).tolist()) == list(range(len(y)))  # each once
    again, _ = selection_splits(y, seed=4)
    other, _ = selection_splits(y, seed=5)
    assert all(torch.equal(a[1], b[1]) for a, b in zip(splits, again, strict=True))
    assert not all(torch.equal(a[1], b[1]) for a, b in zip(splits, other, strict=True))


def test_large_sets_keep_one_seeded_holdout() -> None:
    y = _labels([30, 30])
    splits, how = selection_splits(y, seed=2, max_cv_samples=59)  # 60 > 59: "large"
    assert how == {"holdout": VAL_FRACTION} and len(splits) == 1
    fit, val = splits[0]
    perm = torch.randperm(60, generator=torch.Generator().manual_seed(2))  # the old probe's split
    assert val.tolist() == perm[:12].tolist() and fit.tolist() == perm[12:].tolist()
    assert selection_splits(y, seed=2)[1] == {"cv_folds": 5.0}  # 60 <= MAX_CV_SAMPLES
    assert MAX_CV_SAMPLES >= 1000
    forced, how = selection_splits(y, seed=2, selection="holdout")
    assert how == {"holdout": VAL_FRACTION} and torch.equal(forced[0][1], val)
    assert selection_splits(_labels([5000, 5001]), selection="cv")[1] == {"cv_folds": 5.0}


def test_fewer_samples_than_folds_fall_back_and_say_so() -> None:
    splits, how = selection_splits(_labels([2, 1]), seed=0)  # 3 samples, largest class 2
    assert how == {"cv_folds": 2.0} and len(splits) == 2
    splits, how = selection_splits(_labels([1, 1, 1]), seed=0)  # nothing to stratify
    assert how == {"holdout": VAL_FRACTION}
    fit, val = splits[0]
    assert len(val) == 1 and len(fit) == 2


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="at least 2 training samples"):
        selection_splits(_labels([1]))
    with pytest.raises(ValueError, match="folds must be >= 2"):
        selection_splits(_labels([5, 5]), folds=1)
    with pytest.raises(ValueError, match="valid: auto, cv, holdout"):
        selection_splits(_labels([5, 5]), selection="kfold")
    with pytest.raises(ValueError, match="no splits"):
        cross_validate([], lambda fit, val: {1: 1.0})
    with pytest.raises(ValueError, match="no candidates"):
        best({}, [])


def test_cross_validate_averages_and_best_breaks_ties_by_preference() -> None:
    splits = [holdout_split(10, seed) for seed in range(3)]
    scores = cross_validate(splits, lambda fit, val: {"a": float(len(val)), "b": float(val[0])})
    firsts = [float(v[0]) for _, v in splits]
    assert scores == {"a": 2.0, "b": pytest.approx(sum(firsts) / 3)}
    assert best({"x": 0.5, "y": 0.7, "z": 0.7}, ["x", "z", "y"]) == "z"
    assert best({"x": 0.5, "y": 0.7, "z": 0.7}, ["y", "z"]) == "y"


def test_weight_decay_cv_matches_sklearn_logistic_regression() -> None:
    """The probe's 5-fold scores equal sklearn's LogisticRegression(C = 1 / (wd * n_fit)) on
    the same folds (the same objective up to a factor), and so does the choice."""
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 0.6, (3, 10))
    y = np.repeat(np.arange(3), 20)
    x = standardize(torch.from_numpy(centers[y] + rng.normal(0, 1, (60, 10))).float())[0]
    grid = (3.0, 0.3, 0.03)
    splits, _ = selection_splits(torch.from_numpy(y), seed=1)
    chosen, scores = choose_weight_decay(x, torch.from_numpy(y), 3, splits, grid=grid)
    xn, ref = x.numpy(), {}
    for wd in grid:
        accs = []
        for fit, val in StratifiedKFold(5, shuffle=True, random_state=1).split(xn, y):
            clf = LogisticRegression(C=1 / (wd * len(fit)), tol=1e-8, max_iter=10_000)
            accs.append(clf.fit(xn[fit], y[fit]).score(xn[val], y[val]))
        ref[wd] = float(np.mean(accs))
    assert len(set(ref.values())) > 1  # the grid matters on this data
    for wd in grid:  # at most one validation sample of one fold apart (L-BFGS vs lbfgs tolerance)
        assert scores[wd] == pytest.approx(ref[wd], abs=1 / 12 / 5 + 1e-9)
    assert chosen == max(grid, key=lambda wd: (ref[wd], wd))  # sklearn's pick; ties: stronger
