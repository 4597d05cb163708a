"""Optimizers: LARS and one builder for sgd / lars / adamw.

Only parameters with ``requires_grad`` are optimized, so a momentum target (BYOL, MoCo key
encoder), whose parameters are frozen and updated by EMA, never reaches an optimizer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

__all__ = ["LARS", "OVERRIDE_OPTIONS", "build_optimizer", "param_groups"]


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


#: The options a method's ``optimizer_overrides()`` may give a parameter-name prefix.
OVERRIDE_OPTIONS = ("fixed_lr",)


def param_groups(
    module: nn.Module, weight_decay: float,
    overrides: Mapping[str, Mapping[str, Any]] | None = None, *, split_bias: bool = True,
    bias_lr_factor: float = 1.0,
) -> list[dict[str, Any]]:
    """Split trainable parameters into a decayed group (weights, ``ndim > 1``) and a group of
    biases and norm scales/shifts (``ndim <= 1``) with no weight decay and ``lars_exclude=True``
    (with ``split_bias=False``, one decayed group). Empty groups are left out.

    ``overrides`` maps parameter-name prefixes (as in ``module.named_parameters()``) to options
    (``OVERRIDE_OPTIONS``); the parameters a prefix matches (the longest matching prefix wins)
    form groups of their own with ``fixed_lr`` set (SimSiam's predictor: the base lr, never
    scheduled). Every group has ``fixed_lr`` and ``lr_factor``: its lr is ``lr * lr_factor``,
    where ``lr_factor`` is ``bias_lr_factor`` for the bias/norm group (Barlow Twins' lr of
    biases, 0.0048 for 0.2) and 1 otherwise."""
    overrides = _check_overrides(module, overrides or {})
    groups: dict[tuple[bool, bool], dict[str, Any]] = {}
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        bias = split_bias and p.ndim <= 1
        prefix = max((k for k in overrides if name.startswith(k)), key=len, default=None)
        fixed = bool(prefix is not None and overrides[prefix].get("fixed_lr", False))
        group = groups.setdefault((bias, fixed), {
            "params": [], "weight_decay": 0.0 if bias else weight_decay, "lars_exclude": bias,
            "fixed_lr": fixed, "lr_factor": bias_lr_factor if bias else 1.0,
        })
        group["params"].append(p)
    return [groups[k] for k in sorted(groups)]  # weights first, then biases; fixed ones last


def _check_overrides(module: nn.Module, overrides: Mapping[str, Mapping[str, Any]]
                     ) -> Mapping[str, Mapping[str, Any]]:
    """Refuse unknown options and prefixes that match no trainable parameter (a typo)."""
    names = [n for n, p in module.named_parameters() if p.requires_grad]
    for prefix, options in overrides.items():
        bad = sorted(set(options) - set(OVERRIDE_OPTIONS))
        if bad:
            raise ValueError(f"unknown optimizer override option(s) {bad} for {prefix!r}; "
                             f"valid: {', '.join(OVERRIDE_OPTIONS)}")
        if not any(n.startswith(prefix) for n in names):
            raise ValueError(f"optimizer override prefix {prefix!r} matches no trainable "
                             f"parameter of {type(module).__name__}")
    return overrides


def build_optimizer(name: str, module: nn.Module, lr: float, weight_decay: float,
                    momentum: float = 0.9, *,
                    overrides: Mapping[str, Mapping[str, Any]] | None = None,
                    bias_lr_factor: float = 1.0) -> Optimizer:
    """An optimizer over ``module``'s trainable parameters, in the groups of ``param_groups``
    (``overrides``, ``bias_lr_factor``); each group's lr is ``lr * lr_factor``.

    - ``sgd``: SGD with momentum, weight decay on every parameter (the MoCo reference code).
    - ``lars``: ``LARS`` with biases and norm parameters excluded (SimCLR, BYOL).
    - ``adamw``: AdamW (betas ``(momentum, 0.999)``) with biases and norm parameters undecayed
      (MoCo v3, DINO).
    - ``adam``: Adam with L2 weight decay on every parameter, coupled into the gradient (the
      GraphCL and GRACE reference code).
    """
    if name not in ("sgd", "adam", "lars", "adamw"):
        raise ValueError(f"unknown optimizer {name!r}; choose one of: sgd, lars, adamw, adam")
    # sgd/adam decay every parameter; biases get their own group only for their own lr
    split = name in ("lars", "adamw") or bias_lr_factor != 1.0
    groups = param_groups(module, weight_decay, overrides, split_bias=split,
                          bias_lr_factor=bias_lr_factor)
    _check_nonempty(groups, module)
    for g in groups:
        g["lr"] = lr * g["lr_factor"]
        if name in ("sgd", "adam"):
            g["weight_decay"] = weight_decay
    if name == "lars":
        return LARS(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    for g in groups:
        g.pop("lars_exclude")
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(momentum, 0.999), weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(momentum, 0.999), weight_decay=weight_decay)
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


def _check_nonempty(params: list[Any], module: nn.Module) -> None:
    if not params:
        raise ValueError(f"{type(module).__name__} has no trainable parameters (requires_grad)")
