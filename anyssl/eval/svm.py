"""SVM protocols on frozen features (sklearn ``SVC``).

* ``svm_cv``: the graph-classification protocol of InfoGraph (Sun et al. 2020) and GraphCL (You
  et al. 2020): 10-fold stratified cross-validation over the whole data set, each fold choosing
  ``C`` from ``{1e-3, ..., 1e3}`` with an inner 5-fold ``GridSearchCV``; mean and std of the ten
  test-fold accuracies. Their code uses ``SVC()``, i.e. the RBF kernel; the papers describe a
  linear SVM, which is our default (``kernel="rbf"`` reproduces the code).
* ``svm_split``: the time-series protocol of TS2Vec (Yue et al. 2022, after Franceschi et al.
  2019): an RBF ``SVC`` on the given train/test split, ``C`` chosen from
  ``{1e-4, ..., 1e4, inf}`` by 5-fold ``GridSearchCV`` on (at most 10,000 samples of) the train
  set, or ``C = inf`` without search when there are fewer than 50 training samples or fewer
  than 5 per class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.svm import SVC

#: C values of InfoGraph / GraphCL.
C_GRID: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3)
#: C values of TS2Vec.
TS2VEC_C_GRID: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3, 1e4, np.inf)


def _arrays(x: ArrayLike, y: ArrayLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y).reshape(-1)
    if xa.ndim != 2 or xa.shape[0] == 0 or ya.shape[0] != xa.shape[0]:
        raise ValueError(f"{name}: need N x D features and N labels; got {xa.shape}, {ya.shape}")
    return xa, ya


def _grid_svc(kernel: str, C_grid: Sequence[float], cv: int, n_jobs: int | None) -> GridSearchCV:
    if not C_grid:
        raise ValueError("C_grid must hold at least one value")
    return GridSearchCV(SVC(kernel=kernel, gamma="scale"), {"C": list(C_grid)}, cv=cv,
                        scoring="accuracy", n_jobs=n_jobs)


def svm_cv(
    features: ArrayLike,
    labels: ArrayLike,
    *,
    folds: int = 10,
    seed: int = 0,
    C_grid: Sequence[float] = C_GRID,
    kernel: str = "linear",
    inner_folds: int = 5,
    n_jobs: int | None = None,
) -> dict[str, float]:
    """Mean and std (over ``folds`` stratified folds) of the test accuracy of an SVC whose ``C``
    is chosen by an inner ``inner_folds``-fold grid search on each training part.

    Shape:
        features: N x D, labels: N.
    """
    x, y = _arrays(features, labels, "svm_cv")
    if folds < 2:
        raise ValueError(f"folds must be >= 2; got {folds}")
    outer = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    accs = []
    for train, test in outer.split(x, y):
        clf = _grid_svc(kernel, C_grid, inner_folds, n_jobs).fit(x[train], y[train])
        accs.append(float((clf.predict(x[test]) == y[test]).mean()))
    return {"mean": float(np.mean(accs)), "std": float(np.std(accs))}


def svm_split(
    train_x: ArrayLike,
    train_y: ArrayLike,
    test_x: ArrayLike,
    test_y: ArrayLike,
    *,
    kernel: str = "rbf",
    C_grid: Sequence[float] = TS2VEC_C_GRID,
    max_samples: int = 10_000,
    seed: int = 0,
    n_jobs: int | None = None,
) -> dict[str, float]:
    """Test top-1 of an SVC fitted on the train split, ``C`` chosen by 5-fold grid search on
    the train split (at most ``max_samples`` of it, stratified); with fewer than 50 training
    samples or fewer than 5 per class, ``C = max(C_grid)`` without search (TS2Vec).

    Shape:
        train_x: N x D, train_y: N, test_x: M x D, test_y: M.
    """
    if not C_grid:
        raise ValueError("C_grid must hold at least one value")
    xtr, ytr = _arrays(train_x, train_y, "svm_split train")
    xte, yte = _arrays(test_x, test_y, "svm_split test")
    if xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"train_x has {xtr.shape[1]} features but test_x {xte.shape[1]}")
    n_classes = np.unique(ytr).size
    if len(xtr) // n_classes < 5 or len(xtr) < 50:
        clf = SVC(kernel=kernel, gamma="scale", C=max(C_grid)).fit(xtr, ytr)
        return {"top1": float((clf.predict(xte) == yte).mean())}
    if len(xtr) > max_samples:
        xtr, _, ytr, _ = train_test_split(xtr, ytr, train_size=max_samples, random_state=seed,
                                          stratify=ytr)
    search = _grid_svc(kernel, C_grid, 5, n_jobs).fit(xtr, ytr)
    top1 = float((search.predict(xte) == yte).mean())
    return {"top1": top1, "C": float(search.best_params_["C"])}


__all__ = ["C_GRID", "TS2VEC_C_GRID", "svm_cv", "svm_split"]
