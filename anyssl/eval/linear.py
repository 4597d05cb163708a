"""Linear probe: L2-regularized multinomial logistic regression on frozen features, trained in
torch with full-batch L-BFGS on the device.

This is the linear evaluation of SimCLR (Chen et al. 2020, appendix B.5/B.8, following
Kornblith et al. 2019, "Do Better ImageNet Models Transfer Better?"): standardized features,
L-BFGS, and the L2 strength chosen on a held-out part of the training set, then refit on all of
it. The objective is

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

#: weight_decay values tried when none is given (1e-6 .. 1e-1; Kornblith et al. search a wider
#: 45-point range, 1e-6 .. 1e5, over a differently scaled objective).
WEIGHT_DECAY_GRID: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
#: part of the training set held out to choose weight_decay.
VAL_FRACTION = 0.2


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
    x: Tensor, y: Tensor, num_classes: int, *, grid: Sequence[float] = WEIGHT_DECAY_GRID,
    max_iter: int = 1000, seed: int = 0,
) -> tuple[float, dict[float, float]]:
    """The weight_decay of ``grid`` with the best top-1 on a seeded ``VAL_FRACTION`` hold-out of
    ``x`` (ties go to the stronger regularization); also each value's validation accuracy.
    The grid is fitted from strong to weak, each fit warm-started from the previous one.

    Shape:
        x: N x D standardized features; y: N.
    """
    n = x.shape[0]
    if n < 2:
        raise ValueError("need at least 2 training samples to choose weight_decay; pass one")
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=gen).to(x.device)
    n_val = max(1, round(VAL_FRACTION * n))
    val, fit = perm[:n_val], perm[n_val:]
    scores: dict[float, float] = {}
    init = None
    for wd in sorted(grid, reverse=True):
        init = fit_logistic(x[fit], y[fit], num_classes, wd, max_iter=max_iter, init=init)
        pred = (x[val] @ init[0] + init[1]).argmax(dim=1)  # n_val
        scores[wd] = (pred == y[val]).float().mean().item()
    best = max(scores.values())
    return next(wd for wd in sorted(grid, reverse=True) if scores[wd] == best), scores


def linear_probe(
    train_x: ArrayLike | Tensor,
    train_y: ArrayLike | Tensor,
    test_x: ArrayLike | Tensor,
    test_y: ArrayLike | Tensor,
    *,
    device: torch.device | str | None = None,
    weight_decay: float | None = None,
    max_iter: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Linear-probe accuracy of frozen features (top-1, and top-5 when classes > 5, in [0, 1]).

    Features are standardized with the training statistics. ``weight_decay=None`` chooses it
    from ``WEIGHT_DECAY_GRID`` on a seeded 20% hold-out of the training set, then refits on all
    of it; the value used is returned under ``"weight_decay"``. ``device=None`` runs on CUDA
    when available, else on the CPU. Classes are ``0 .. max label``.

    Shape:
        train_x: N x D, train_y: N, test_x: M x D, test_y: M.
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1; got {max_iter}")
    dev = resolve_device(device)
    xtr, ytr, xte, yte = as_split(train_x, train_y, test_x, test_y, dev)
    num_classes = int(max(ytr.max(), yte.max())) + 1
    xtr, xte = standardize(xtr.to(dev), xte.to(dev))
    if weight_decay is None:
        weight_decay, _ = choose_weight_decay(xtr, ytr, num_classes, max_iter=max_iter, seed=seed)
    w, b = fit_logistic(xtr, ytr, num_classes, weight_decay, max_iter=max_iter)
    return {**topk_accuracies(xte @ w + b, yte), "weight_decay": weight_decay}


__all__ = ["WEIGHT_DECAY_GRID", "choose_weight_decay", "fit_logistic", "linear_probe",
           "standardize"]
