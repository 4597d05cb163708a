"""Optimizers: LARS and one builder for sgd / lars / adamw.

Only parameters with ``requires_grad`` are optimized, so a momentum target (BYOL, MoCo key
encoder), whose parameters are frozen and updated by EMA, never reaches an optimizer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

__all__ = ["LARS", "build_optimizer", "param_groups"]


class LARS(Optimizer):
    """Layer-wise Adaptive Rate Scaling (You et al. 2017, "Large Batch Training of Convolutional
    Networks"), in the form SimCLR (Chen et al. 2020) and BYOL (Grill et al. 2020) use.

    For each parameter ``w`` with gradient ``g`` in a group without ``lars_exclude``::

        d = g + weight_decay * w
        d = d * eta * ||w|| / ||d||          (trust ratio; 1 when either norm is 0)
        mu = momentum * mu + d
        w = w - lr * mu

    Groups with ``lars_exclude=True`` (biases and norm parameters, see ``param_groups``) skip
    both the weight decay and the trust ratio: plain SGD with momentum.
    """

    def __init__(self, params: Iterable[Any], lr: float, momentum: float = 0.9,
                 weight_decay: float = 0.0, eta: float = 0.001) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0 or eta <= 0:
            raise ValueError(
                f"LARS needs lr, momentum, weight_decay >= 0 and eta > 0; got lr={lr}, "
                f"momentum={momentum}, weight_decay={weight_decay}, eta={eta}"
            )
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "eta": eta,
                    "lars_exclude": False}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if not group["lars_exclude"]:
                    d = d.add(p, alpha=group["weight_decay"])
                    d = d.mul(_trust_ratio(p, d, group["eta"]))
                state = self.state[p]
                if "mu" not in state:
                    state["mu"] = torch.zeros_like(p)
                mu: Tensor = state["mu"]
                mu.mul_(group["momentum"]).add_(d)
                p.add_(mu, alpha=-group["lr"])
        return loss


def _trust_ratio(w: Tensor, d: Tensor, eta: float) -> Tensor:
    """``eta * ||w|| / ||d||``, or 1 when either norm is zero (a 0-dim tensor on w's device)."""
    w_norm, d_norm = torch.linalg.vector_norm(w), torch.linalg.vector_norm(d)
    one = torch.ones_like(w_norm)
    ratio = torch.where(d_norm > 0, eta * w_norm / d_norm, one)
    return torch.where(w_norm > 0, ratio, one)


def param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Split trainable parameters into a decayed group (weights, ``ndim > 1``) and a group of
    biases and norm scales/shifts (``ndim <= 1``) with no weight decay and ``lars_exclude=True``.
    Empty groups are left out."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in module.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay, "lars_exclude": False},
        {"params": no_decay, "weight_decay": 0.0, "lars_exclude": True},
    ]
    return [g for g in groups if g["params"]]


def build_optimizer(name: str, module: nn.Module, lr: float, weight_decay: float,
                    momentum: float = 0.9) -> Optimizer:
    """An optimizer over ``module``'s trainable parameters.

    - ``sgd``: SGD with momentum, weight decay on every parameter (the MoCo reference code).
    - ``lars``: ``LARS`` with biases and norm parameters excluded (SimCLR, BYOL).
    - ``adamw``: AdamW (betas ``(momentum, 0.999)``) with biases and norm parameters undecayed
      (MoCo v3, DINO).
    - ``adam``: Adam with L2 weight decay on every parameter, coupled into the gradient (the
      GraphCL and GRACE reference code).
    """
    if name in ("sgd", "adam"):
        params = [p for p in module.parameters() if p.requires_grad]
        _check_nonempty(params, module)
        if name == "adam":
            return torch.optim.Adam(params, lr=lr, betas=(momentum, 0.999),
                                    weight_decay=weight_decay)
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name in ("lars", "adamw"):
        groups = param_groups(module, weight_decay)
        _check_nonempty(groups, module)
        if name == "lars":
            return LARS(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
        for g in groups:
            g.pop("lars_exclude")
        return torch.optim.AdamW(groups, lr=lr, betas=(momentum, 0.999),
                                 weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose one of: sgd, lars, adamw, adam")


def _check_nonempty(params: list[Any], module: nn.Module) -> None:
    if not params:
        raise ValueError(f"{type(module).__name__} has no trainable parameters (requires_grad)")
