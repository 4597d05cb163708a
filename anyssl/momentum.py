"""Momentum (EMA) targets: MoCo's key encoder and BYOL's target network.

``ema_update`` and ``cosine_momentum`` are the math; ``MomentumTarget`` holds the copy.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

__all__ = ["MomentumTarget", "cosine_momentum", "ema_update"]

SCHEDULES = ("constant", "cosine", "average")


@torch.no_grad()
def ema_update(
    target: nn.Module, online: nn.Module, momentum: float, *, copy_buffers: bool = True
) -> None:
    """``target <- momentum * target + (1 - momentum) * online`` for every parameter (MoCo,
    He et al. 2020, eq. 2; BYOL, Grill et al. 2020, sec. 3.1).

    Buffers (BatchNorm running statistics and counters) are copied from ``online`` when
    ``copy_buffers`` (the default), so the target's statistics match the weights it averages
    and an eval-mode target is usable; in training mode BatchNorm normalizes with the batch
    statistics anyway, so the loss is the same either way. ``copy_buffers=False`` leaves them
    to the target's own forward passes (the MoCo reference code and lightly).

    ``target`` and ``online`` must have the same parameter and buffer names and shapes.
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    t_params, o_params = dict(target.named_parameters()), dict(online.named_parameters())
    _check_same(t_params, o_params, "parameters")
    names = list(t_params)
    torch._foreach_lerp_(  # t + (1 - m) * (o - t) == m * t + (1 - m) * o
        [t_params[n] for n in names], [o_params[n] for n in names], 1.0 - momentum
    )
    if copy_buffers:
        t_bufs, o_bufs = dict(target.named_buffers()), dict(online.named_buffers())
        _check_same(t_bufs, o_bufs, "buffers")
        for name, buf in t_bufs.items():
            buf.copy_(o_bufs[name])


def _check_same(target: dict[str, Any], online: dict[str, Any], what: str) -> None:
    if target.keys() != online.keys() or any(
        target[k].shape != online[k].shape for k in target
    ):
        raise ValueError(
            f"target and online modules have different {what}; the target must be a copy of "
            "the online module (MomentumTarget makes one)"
        )


def cosine_momentum(step: int, max_steps: int, base: float) -> float:
    """BYOL's momentum schedule (Grill et al. 2020, sec. 3.2):
    ``1 - (1 - base) * (cos(pi * step / max_steps) + 1) / 2``, from ``base`` at step 0 to 1 at
    ``max_steps`` (steps past the end stay at 1)."""
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    progress = min(max(step, 0), max_steps) / max_steps
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


class MomentumTarget(nn.Module):
    """An EMA copy of ``online``, updated after each optimizer step and never trained.

    ``module`` is a deep copy of ``online`` made at construction (so the two start equal, as in
    MoCo and BYOL), with ``requires_grad=False``. ``online`` itself is held outside the module
    tree, so its weights are not saved twice. ``forward`` runs the copy under ``no_grad``, in
    whatever train/eval mode the parent is in (MoCo's key encoder and BYOL's target use batch
    statistics in training). ``momentum`` is the value of the last update, for logs.

    Args:
        online: the module to follow (e.g. encoder + projector).
        momentum: base momentum (MoCo 0.999, BYOL 0.996).
        schedule: ``"constant"``, ``"cosine"`` from ``momentum`` to 1 (BYOL), or
            ``"average"``: momentum ``step / (step + 1)``, so that after the steps ``0..k`` the
            copy is the uniform average of the ``k + 1`` weights the steps left (Polyak
            averaging; ``torch.optim.swa_utils.AveragedModel``, which TS2Vec evaluates).
    """

    def __init__(
        self, online: nn.Module, momentum: float = 0.999, schedule: str = "constant"
    ) -> None:
        super().__init__()
        if schedule not in SCHEDULES:
            valid = ", ".join(SCHEDULES)
            raise ValueError(f"unknown momentum schedule {schedule!r}; valid: {valid}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        self._online = (online,)  # a tuple: not registered as a submodule
        self.module = copy.deepcopy(online).requires_grad_(False)
        self.base_momentum, self.momentum, self.schedule = momentum, momentum, schedule

    @property
    def online(self) -> nn.Module:
        return self._online[0]

    def update(self, step: int, max_steps: int) -> None:
        """EMA step towards ``online`` with the momentum of ``step`` out of ``max_steps``."""
        if self.schedule == "cosine":
            self.momentum = cosine_momentum(step, max_steps, self.base_momentum)
        elif self.schedule == "average":
            self.momentum = step / (step + 1)
        ema_update(self.module, self.online, self.momentum)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with torch.no_grad():
            return self.module(*args, **kwargs)

    def extra_repr(self) -> str:
        return f"momentum={self.base_momentum}, schedule={self.schedule!r}"
