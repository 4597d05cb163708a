"""GRACE's node-classification protocol on frozen embeddings (``logreg_cv``).

Zhu et al. 2020, "Deep Graph Contrastive Representation Learning", sec. 4 (setup) and their
``CRIPAC-DIG/GRACE`` ``eval.py`` (``label_classification``, lines 48-78), step by step:

- the embeddings are L2-normalized row by row (line 56, ``normalize(X, norm='l2')``);
- the labels are one-hot encoded over every class of the data (lines 52-54);
- a one-vs-rest logistic regression (``LogisticRegression(solver='liblinear')``, line 61; L2
  penalty) is fitted on the training nodes, its ``C`` chosen from ``2^-10 .. 2^9``
  (``2.0 ** np.arange(-10, 10)``, line 62) by ``GridSearchCV(..., cv=5)`` (lines 64-67): on the
  one-hot (multilabel) targets that is an unshuffled 5-fold ``KFold`` scored by exact-match
  accuracy;
- each test node gets the class of its largest one-vs-rest probability (lines 69-70,
  ``prob_to_one_hot``) and the protocol reports micro- and macro-F1 (lines 72-73). With one
  label per node micro-F1 is the accuracy, reported as ``top1``.

The split is the data set's: GRACE's random 10% / 10% / 80% (``-d split_mode=random``, the
paper's setup; its code trains on 10% and tests on the other 90%) or Planetoid's public one.
``eval.py`` repeats the fit on 3 fresh random splits (``@repeat(3)``); here a run evaluates its
one seeded split and ``benchmarks/graph.py`` repeats over seeds. Nothing here is graph-specific:
the protocol takes any ``N x D`` features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import normalize as l2_normalize

__all__ = ["GRACE_C_GRID", "PROTOCOLS", "logreg_cv"]

#: ``C`` values of GRACE's ``eval.py`` line 62: ``2.0 ** np.arange(-10, 10)`` (2^-10 .. 2^9).
GRACE_C_GRID: tuple[float, ...] = tuple(float(c) for c in 2.0 ** np.arange(-10, 10))


def _labelled(x: ArrayLike, y: ArrayLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(features, labels)`` of the labelled rows (label >= 0); ``ValueError`` on bad shapes."""
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y).reshape(-1)
    if xa.ndim != 2 or ya.shape[0] != xa.shape[0]:
        raise ValueError(f"logreg_cv {name}: need N x D features and N labels; got "
                         f"{xa.shape}, {ya.shape}")
    keep = ya >= 0  # -1: an unlabelled node
    if not keep.any():
        raise ValueError(f"logreg_cv {name}: no labelled sample (every label is -1)")
    return xa[keep], ya[keep].astype(np.int64)


def logreg_cv(
    train_x: ArrayLike,
    train_y: ArrayLike,
    test_x: ArrayLike,
    test_y: ArrayLike,
    *,
    folds: int = 5,
    C_grid: Sequence[float] = GRACE_C_GRID,
    normalize: bool = True,
    seed: int = 0,
    n_jobs: int | None = None,
) -> dict[str, float]:
    """GRACE's protocol (module docstring): L2-normalized features, one-vs-rest liblinear
    logistic regression with ``C`` from ``C_grid`` by ``folds``-fold grid search on the
    training rows, argmax of the probabilities on the test rows.

    Returns ``top1`` (= micro-F1 with one label per sample), ``micro_f1``, ``macro_f1`` and the
    chosen ``C``. Rows labelled -1 are left out. ``seed`` fixes liblinear's data shuffling.

    Shape:
        train_x: N x D, train_y: N, test_x: M x D, test_y: M.
    """
    xtr, ytr = _labelled(train_x, train_y, "train")
    xte, yte = _labelled(test_x, test_y, "test")
    if xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"logreg_cv: train_x has {xtr.shape[1]} features but test_x "
                         f"{xte.shape[1]}")
    if len(C_grid) == 0:
        raise ValueError("logreg_cv: C_grid must hold at least one value")
    if folds < 2 or len(xtr) < folds:
        raise ValueError(f"logreg_cv: {folds}-fold search needs folds >= 2 and at least that "
                         f"many labelled training samples; got {len(xtr)}")
    if np.unique(ytr).size < 2:
        raise ValueError("logreg_cv: the training rows hold one class; need at least two")
    if normalize:
        xtr, xte = l2_normalize(xtr, norm="l2"), l2_normalize(xte, norm="l2")
    classes = np.unique(np.concatenate([ytr, yte]))  # C: OneHotEncoder over every label
    onehot_tr = ytr[:, None] == classes  # N x C bool
    model = OneVsRestClassifier(LogisticRegression(solver="liblinear", random_state=seed))
    search = GridSearchCV(model, {"estimator__C": list(C_grid)}, cv=KFold(folds),
                          n_jobs=n_jobs).fit(xtr, onehot_tr)
    pred = search.predict_proba(xte).argmax(axis=1)  # M: column of the largest probability
    pred_onehot = np.arange(classes.size) == pred[:, None]  # M x C bool
    true_onehot = yte[:, None] == classes  # M x C bool
    micro = float(f1_score(true_onehot, pred_onehot, average="micro", zero_division=0))
    macro = float(f1_score(true_onehot, pred_onehot, average="macro", zero_division=0))
    return {"top1": micro, "micro_f1": micro, "macro_f1": macro,
            "C": float(search.best_params_["estimator__C"])}


#: The frozen-feature protocols of this module by the name ``--eval-protocol`` takes; each is
#: ``f(train_x, train_y, test_x, test_y, *, seed, **options) -> metrics``.
PROTOCOLS: dict[str, Callable[..., dict[str, float]]] = {"logreg_cv": logreg_cv}
