"""Choosing a frozen-feature protocol's hyper-parameters (the probe's weight decay, kNN's k and
temperature) on the training split only, never on the test set.

Small training sets are cross-validated: stratified ``FOLDS``-fold, each candidate scored by its
mean validation accuracy over the folds, as GRACE (Zhu et al. 2020, ``CRIPAC-DIG/GRACE``
``eval.py`` l. 61-67: ``GridSearchCV(..., cv=5)``) and TS2Vec (Yue et al. 2022,
``yuezhihan/ts2vec`` ``tasks/_eval_protocols.py`` l. 18-39, 5-fold on at most 10,000 samples)
choose their classifier's ``C``. Larger sets keep one seeded ``VAL_FRACTION`` hold-out (the
linear evaluation of Kornblith et al. 2019 and SimCLR appendix B.5), which costs one fit per
candidate instead of ``FOLDS``.

Why ``MAX_CV_SAMPLES = 5_000``: above it the 20% hold-out holds more than 1,000 samples, and an
accuracy measured on it has a standard error of at most ``sqrt(.25 / 1000)`` = 1.6 points; below
it the error grows to about 9 points on the 24 nodes held out of Cora's 120 training nodes, more
than the differences between neighbouring grid values, so one hold-out picks by noise (seen: the
probe at 66.3 against kNN at 70.0 on a Planetoid split). Every sample of a k-fold split validates
once, which shrinks that error by ``sqrt(1 / VAL_FRACTION)``. The cap is half of TS2Vec's 10,000
for cost: at 5,000 x 512 features, 5-fold selection of the probe's weight decay takes about 25 s
on one CPU thread against 4 s for the hold-out (kNN: 1.5 s against 0.3 s).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TypeVar

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold
from torch import Tensor

#: folds of the cross-validation on small training sets (GRACE's and TS2Vec's ``cv=5``).
FOLDS = 5
#: part of a large training set held out (SimCLR appendix B.5 / Kornblith et al. 2019).
VAL_FRACTION = 0.2
#: training sets up to this size are cross-validated (see the module docstring).
MAX_CV_SAMPLES = 5_000
#: ``auto``: ``cv`` up to ``MAX_CV_SAMPLES`` samples, ``holdout`` above.
SELECTIONS: tuple[str, ...] = ("auto", "cv", "holdout")

#: ``(fit indices, validation indices)`` into the training set.
Split = tuple[Tensor, Tensor]
K = TypeVar("K", bound=Hashable)


def holdout_split(n: int, seed: int, device: torch.device | str = "cpu") -> Split:
    """One seeded random ``VAL_FRACTION`` hold-out (at least one sample) of ``n`` samples.

    Shape:
        returns fit: n - n_val, val: n_val (int64 indices on ``device``).
    """
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=gen).to(device)  # n
    n_val = max(1, round(VAL_FRACTION * n))
    return perm[n_val:], perm[:n_val]


def stratified_folds(labels: Tensor, folds: int, seed: int) -> list[Split]:
    """sklearn's ``StratifiedKFold(folds, shuffle=True, random_state=seed)`` splits of
    ``labels`` as index tensors on the labels' device (a class rarer than ``folds`` is spread
    over fewer folds; sklearn's warning about it is silenced).

    Shape:
        labels: N; returns ``folds`` pairs of fit and validation indices.
    """
    y = labels.cpu().numpy()
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        pairs = list(cv.split(np.zeros(len(y)), y))
    return [(torch.as_tensor(fit, device=labels.device),
             torch.as_tensor(val, device=labels.device)) for fit, val in pairs]


def selection_splits(
    labels: Tensor, *, seed: int = 0, folds: int = FOLDS, selection: str = "auto",
    max_cv_samples: int = MAX_CV_SAMPLES,
) -> tuple[list[Split], dict[str, float]]:
    """The splits to score candidates on, and how they were made: ``{"cv_folds": f}`` or
    ``{"holdout": VAL_FRACTION}`` (numbers, so they sit in the report next to the choice).

    ``selection="auto"`` cross-validates up to ``max_cv_samples`` samples. ``folds`` is lowered
    to the largest class's size when that is smaller (stratification needs it; the lower count
    is what ``cv_folds`` reports), and a set whose classes all have one sample falls back to the
    hold-out. Deterministic for a seed.

    Shape:
        labels: N training labels.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; valid: {', '.join(SELECTIONS)}")
    if folds < 2:
        raise ValueError(f"folds must be >= 2; got {folds}")
    n = labels.shape[0]
    if n < 2:
        raise ValueError(f"need at least 2 training samples to choose a hyper-parameter; got {n}:"
                         " pass fixed values instead")
    largest = int(torch.bincount(labels.cpu()).max())
    cv = selection == "cv" or (selection == "auto" and n <= max_cv_samples)
    if cv and min(folds, largest) >= 2:
        used = min(folds, largest)
        return stratified_folds(labels, used, seed), {"cv_folds": float(used)}
    return [holdout_split(n, seed, labels.device)], {"holdout": VAL_FRACTION}


def cross_validate(
    splits: Sequence[Split], score: Callable[[Tensor, Tensor], Mapping[K, float]],
) -> dict[K, float]:
    """Each candidate's mean score over ``splits``; ``score(fit, val)`` returns the validation
    accuracy of every candidate fitted on ``fit`` (as ``GridSearchCV``'s ``mean_test_score``).
    """
    if not splits:
        raise ValueError("no splits to validate on")
    per_split = [score(fit, val) for fit, val in splits]
    return {key: sum(s[key] for s in per_split) / len(per_split) for key in per_split[0]}


def best(scores: Mapping[K, float], preference: Sequence[K]) -> K:
    """The candidate with the highest score; ties go to the one earliest in ``preference``."""
    if not preference:
        raise ValueError("no candidates to choose from")
    top = max(scores[c] for c in preference)
    return next(c for c in preference if scores[c] == top)


__all__ = ["FOLDS", "MAX_CV_SAMPLES", "SELECTIONS", "VAL_FRACTION", "Split", "best",
           "cross_validate", "holdout_split", "selection_splits", "stratified_folds"]
