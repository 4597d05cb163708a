"""Learning-rate schedules as pure functions of the step, and a ``LambdaLR`` stepping once per
optimizer step over them.

Step ``k`` (0-based) is the ``k``-th optimizer step. Warm-up is linear and never gives lr 0:
step ``k < warmup`` uses ``base_lr * (k + 1) / warmup`` (Goyal et al. 2017), so the last warm-up
step reaches ``base_lr``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from anyssl.train.config import SCHEDULES

__all__ = ["WeightDecaySchedule", "build_scheduler", "constant", "step_decay", "warmup_cosine"]

#: MoCo v1's step schedule: lr x 0.1 at epochs 120 and 160 of 200 (He et al. 2020).
DEFAULT_MILESTONES = (0.6, 0.8)


def _warmup(step: int, warmup: int, base_lr: float) -> float | None:
    """The warm-up lr at ``step``, or None once warm-up is over."""
    return base_lr * (step + 1) / warmup if step < warmup else None


def warmup_cosine(step: int, total: int, warmup: int, base_lr: float,
                  final_lr: float = 0.0) -> float:
    """Linear warm-up, then half-cosine decay from ``base_lr`` (at ``warmup``) to ``final_lr``
    (at ``total``) (Loshchilov & Hutter 2017, SGDR without restarts; SimCLR, MoCo v2)."""
    if (w := _warmup(step, warmup, base_lr)) is not None:
        return w
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final_lr + 0.5 * (base_lr - final_lr) * (1.0 + math.cos(math.pi * progress))


def step_decay(step: int, total: int, warmup: int, base_lr: float,
               milestones: Sequence[float] = DEFAULT_MILESTONES, gamma: float = 0.1) -> float:
    """Linear warm-up, then ``base_lr * gamma**i`` after the ``i``-th milestone; milestones are
    fractions of ``total`` (MoCo v1: ``(0.6, 0.8)``, i.e. epochs 120 and 160 of 200)."""
    if (w := _warmup(step, warmup, base_lr)) is not None:
        return w
    passed = sum(step >= round(m * total) for m in milestones)
    return base_lr * gamma**passed


def constant(step: int, total: int, warmup: int, base_lr: float) -> float:
    """Linear warm-up, then ``base_lr``."""
    w = _warmup(step, warmup, base_lr)
    return base_lr if w is None else w


def build_scheduler(optimizer: Optimizer, name: str, total_steps: int, warmup_steps: int = 0,
                    milestones: Sequence[float] | None = None,
                    final_lr_ratio: float = 0.0) -> LambdaLR:
    """A ``LambdaLR`` that scales each group's lr by the named schedule; call ``step()`` after
    every optimizer step. ``milestones`` (fractions of the run) only matter for ``step``,
    ``final_lr_ratio`` (the cosine's floor as a fraction of each group's peak lr, reached after
    the last step, as DINO's ``--min_lr`` and Barlow Twins' ``end_lr``) only for ``cosine``. A group
    with ``fixed_lr`` (``optim.param_groups``) keeps its lr: no warm-up, no decay (SimSiam's
    ``--fix-pred-lr``, main_simsiam.py l. 363-364)."""
    if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
        raise ValueError(
            f"need total_steps >= 1 and 0 <= warmup_steps <= total_steps, got {total_steps} and "
            f"{warmup_steps}"
        )
    marks = tuple(milestones) if milestones is not None else DEFAULT_MILESTONES
    if any(not 0 < m < 1 for m in marks):
        raise ValueError(f"milestones are fractions of the run in (0, 1), got {list(marks)}")
    if not 0 <= final_lr_ratio <= 1:
        raise ValueError(f"final_lr_ratio is a fraction of the peak lr in [0, 1], got "
                         f"{final_lr_ratio}")

    def factor(step: int) -> float:
        if name == "cosine":
            return warmup_cosine(step, total_steps, warmup_steps, 1.0, final_lr_ratio)
        if name == "step":
            return step_decay(step, total_steps, warmup_steps, 1.0, marks)
        return constant(step, total_steps, warmup_steps, 1.0)

    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")
    return LambdaLR(optimizer, [_fixed if g.get("fixed_lr") else factor
                                for g in optimizer.param_groups])


def _fixed(step: int) -> float:
    return 1.0


class WeightDecaySchedule:
    """Weight decay on a cosine from each decayed group's ``weight_decay`` to ``end`` over
    ``total_steps`` (DINO, Caron et al. 2021, "Implementation details": 0.04 -> 0.4; its
    ``utils.cosine_scheduler`` without warm-up, applied to the regularized group). Groups
    without weight decay (biases, norms) keep none. ``apply(step)`` sets the value of step
    ``step`` (0-based) before that step's update; it depends on the step only, so a resumed
    run gets the same values."""

    def __init__(self, optimizer: Optimizer, total_steps: int, end: float) -> None:
        if total_steps < 1 or end < 0:
            raise ValueError(f"need total_steps >= 1 and end >= 0, got {total_steps} and {end}")
        self.optimizer, self.total_steps, self.end = optimizer, total_steps, end
        self.base = [float(g["weight_decay"]) for g in optimizer.param_groups]

    def value(self, step: int, base: float) -> float:
        """The weight decay at ``step`` of a group whose decay starts at ``base``."""
        return warmup_cosine(step, self.total_steps, 0, base, self.end) if base > 0 else 0.0

    def apply(self, step: int) -> float:
        """Set every group's weight decay for ``step``; return the first decayed group's."""
        for group, base in zip(self.optimizer.param_groups, self.base, strict=True):
            group["weight_decay"] = self.value(step, base)
        return next((self.value(step, b) for b in self.base if b > 0), 0.0)
