"""Linear probe: L2-regularized multinomial logistic regression on frozen features, trained in
torch with full-batch L-BFGS on the device.

This is the linear evaluation of SimCLR (Chen et al. 2020, appendix B.5/B.8, following
Kornblith et al. 2019, "Do Better ImageNet Models Transfer Better?"): standardized features,
L-BFGS, and the L2 strength chosen on the training set (a held-out part of it, or k-fold
cross-validation when it is small: ``anyssl.eval.selection``), then refit on all of it. The
objective is

    mean_i CE(x_i W + b, y_i) + weight_decay / 2 * ||W||^2        (bias not penalized)

which is sklearn's ``LogisticRegression(C=C)`` objective divided by ``C * N``: ``weight_decay``
equals ``1 / (C * n_train)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch import Tensor

from anyssl.eval.embed import as_split, resolve_device, topk_accuracies
from anyssl.eval.selection import FOLDS, Split, best, cross_validate, selection_splits

#: weight_decay values tried when none is given: 1e1 .. 1e-6 in half decades. With the objective
#: above, ``weight_decay = 1 / (C * n)``: on Cora's 120 training nodes 1e1 is ``C = 2^-10.2``, the
#: strongest of GRACE's ``C = 2^-10 .. 2^9`` (``CRIPAC-DIG/GRACE`` ``eval.py`` l. 62), which tiny
#: label sets need; 1e-6 reaches Kornblith et al.'s weakest (they search 1e-6 .. 1e5).
WEIGHT_DECAY_GRID: tuple[float, ...] = (
    10.0, 3.16, 1.0, 0.316, 0.1, 0.0316, 0.01, 3.16e-3, 1e-3, 3.16e-4, 1e-4, 3.16e-5, 1e-5,
    3.16e-6, 1e-6)
#: the grid before small training sets were cross-validated (``grid=``, ``selection="holdout"``
#: reproduce the old default).
HOLDOUT_GRID_V1: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


def standardize(train: Tensor, *others: Tensor) -> list[Tensor]:
    """Zero-mean, unit-variance features using the statistics of ``train`` (a constant feature
    keeps scale 1, as in sklearn's ``StandardScaler``).

    Shape:
        train: N x D; others: M x D each; returns them all, standardized.
    """
    mean = train.mean(dim=0)  # D
    std = train.std(dim=0, unbiased=False)  # D
    std = torch.where(std > 1e-12 * (1 + mean.abs()), std, torch.ones_like(std))
    return [(t - mean) / std for t in (train, *others)]


def fit_logistic(
    x: Tensor, y: Tensor, num_classes: int, weight_decay: float, *, max_iter: int = 1000,
    init: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """Minimize ``mean CE(x W + b, y) + weight_decay/2 ||W||^2`` with full-batch L-BFGS.

    Shape:
        x: N x D (on the device); y: N; returns W: D x C and b: C.
    """
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0; got {weight_decay}")
    d = x.shape[1]
    w0, b0 = init if init is not None else (x.new_zeros(d, num_classes), x.new_zeros(num_classes))
    w = w0.detach().clone().requires_grad_(True)  # D x C
    b = b0.detach().clone().requires_grad_(True)  # C
    opt = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=max_iter, history_size=10, line_search_fn="strong_wolfe",
        tolerance_grad=1e-6, tolerance_change=1e-10,
    )

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + 0.5 * weight_decay * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach()


def choose_weight_decay(
    x: Tensor, y: Tensor, num_classes: int, splits: Sequence[Split], *,
    grid: Sequence[float] = WEIGHT_DECAY_GRID, max_iter: int = 1000,
) -> tuple[float, dict[float, float]]:
    """The weight_decay of ``grid`` with the best mean validation top-1 over ``splits`` (ties go
    to the stronger regularization); also each value's score. On each split the grid is fitted
    from strong to weak, each fit warm-started from the previous one.

    Shape:
        x: N x D standardized features; y: N.
    """
    if not grid:
        raise ValueError("the weight_decay grid is empty")
    order = sorted(grid, reverse=True)

    def score(fit: Tensor, val: Tensor) -> dict[float, float]:
        out, init = {}, None
        for wd in order:
            init = fit_logistic(x[fit], y[fit], num_classes, wd, max_iter=max_iter, init=init)
            pred = (x[val] @ init[0] + init[1]).argmax(dim=1)  # n_val
            out[wd] = (pred == y[val]).float().mean().item()
        return out

    scores = cross_validate(splits, score)
    return best(scores, order), scores


def linear_probe(
    train_x: ArrayLike | Tensor,
    train_y: ArrayLike | Tensor,
    test_x: ArrayLike | Tensor,
    test_y: ArrayLike | Tensor,
    *,
    device: torch.device | str | None = None,
    weight_decay: float | None = None,
    grid: Sequence[float] = WEIGHT_DECAY_GRID,
    selection: str = "auto",
    folds: int = FOLDS,
    max_iter: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Linear-probe accuracy of frozen features (top-1, and top-5 when classes > 5, in [0, 1]).

    Features are standardized with the training statistics. ``weight_decay=None`` chooses it
    from ``grid`` on the training set (``anyssl.eval.selection``: stratified ``folds``-fold
    cross-validation up to 5,000 samples, a seeded 20% hold-out above; ``selection`` forces
    ``"cv"`` or ``"holdout"``), then refits on all of it; the value used is returned under
    ``"weight_decay"`` and how it was chosen under ``"cv_folds"`` or ``"holdout"``.
    ``device=None`` runs on CUDA when available, else on the CPU. Classes are ``0 .. max
    label``.

    Shape:
        train_x: N x D, train_y: N, test_x: M x D, test_y: M.
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1; got {max_iter}")
    dev = resolve_device(device)
    xtr, ytr, xte, yte = as_split(train_x, train_y, test_x, test_y, dev)
    num_classes = int(max(ytr.max(), yte.max())) + 1
    xtr, xte = standardize(xtr.to(dev), xte.to(dev))
    how: dict[str, float] = {}
    if weight_decay is None:
        splits, how = selection_splits(ytr, seed=seed, folds=folds, selection=selection)
        weight_decay, _ = choose_weight_decay(xtr, ytr, num_classes, splits, grid=grid,
                                              max_iter=max_iter)
    w, b = fit_logistic(xtr, ytr, num_classes, weight_decay, max_iter=max_iter)
    return {**topk_accuracies(xte @ w + b, yte), "weight_decay": weight_decay, **how}


__all__ = ["HOLDOUT_GRID_V1", "WEIGHT_DECAY_GRID", "choose_weight_decay", "fit_logistic",
           "linear_probe", "standardize"]
