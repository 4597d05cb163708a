"""Non-finite losses and gradients: stop the run with an error naming the step, or (with
``skip_nonfinite``) skip the step and count it.

One check per step, after ``backward`` and before the optimizer step: the loss and the largest
gradient entry in absolute value (one fused ``_foreach_norm(ord=inf)`` over all gradients; nan
when any entry is nan) go into one 2-element tensor, summed over the ranks by one tiny
all-reduce (so every rank takes the same decision, whichever rank went non-finite) and read with
one host sync. The loss logged is that sum divided by the number of ranks: the global loss.

A skipped step is a step whose optimizer update is dropped: the weights and the optimizer state
stay as they were, while the step counter, the learning-rate schedule and the method's
``on_step_end`` (EMA targets) advance as usual, so the run keeps its length, schedule and data
order, and a resumed run still matches a straight one. State the forward pass already changed
(BatchNorm running statistics, a MoCo queue) keeps what it put there: a run whose every step is
skipped has gone bad, and ``skipped_steps`` in ``metrics.jsonl`` shows it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from anyssl.distributed import world_size

__all__ = ["NonFiniteGradientError", "NonFiniteLossError", "check_step", "grad_max",
           "nonfinite_error", "skip_update", "step_health"]


class NonFiniteLossError(FloatingPointError):
    """The loss became nan or inf; the run stops and its last good checkpoint is kept."""


class NonFiniteGradientError(NonFiniteLossError):
    """The loss was finite but a gradient became nan or inf; the run stops likewise."""


def grad_max(params: Sequence[Tensor]) -> Tensor:
    """The largest ``|grad|`` entry over ``params`` (a 0-dim float tensor, nan if any entry is
    nan, inf if any is inf; 0 when no parameter has a gradient). No host sync."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.stack([n.float() for n in torch._foreach_norm(grads, ord=math.inf)]).max()


def step_health(loss: Tensor, params: Sequence[Tensor]) -> tuple[float, float]:
    """``(global loss, largest |grad|)`` of a step after ``backward``: the loss averaged over the
    ranks, and ``grad_max`` summed over them (each rank holds the same averaged gradients; a
    sum keeps nan and inf). One all-reduce of two numbers when distributed, one host sync."""
    stats = torch.stack([loss.detach().float().reshape(()), grad_max(params).to(loss.device)])
    n = world_size()
    if n > 1:
        dist.all_reduce(stats)
    total, largest = stats.tolist()
    return total / n, largest


def nonfinite_error(loss: float, largest_grad: float, step: int,
                    kept: str) -> NonFiniteLossError | None:
    """The error for a step whose loss or gradients are not finite (``None`` when both are);
    ``kept`` says which checkpoint survives."""
    fix = ("lower --lr or set grad_clip, then --resume (or pass --skip-nonfinite to skip such "
           "steps)")
    if not math.isfinite(loss):
        kind = "nan" if math.isnan(loss) else "inf"
        return NonFiniteLossError(f"loss became {kind} at step {step}; {kept}; {fix}")
    if not math.isfinite(largest_grad):
        kind = "nan" if math.isnan(largest_grad) else "inf"
        return NonFiniteGradientError(
            f"gradients became {kind} at step {step} (the loss was finite); {kept}; {fix}")
    return None


def check_step(loss: Tensor, params: Sequence[Tensor], step: int, *, skip: bool,
               checkpoint: Path, saved_step: int) -> tuple[float, bool]:
    """``(global loss, finite?)`` of a step after ``backward`` (``step_health``). A non-finite
    step raises ``NonFiniteLossError`` / ``NonFiniteGradientError`` naming ``step`` and the
    checkpoint that stays (``saved_step`` < 0: none yet), unless ``skip``."""
    value, largest = step_health(loss, params)
    kept = (f"the last good checkpoint {checkpoint} (step {saved_step}) is kept"
            if saved_step >= 0 else "no checkpoint was written yet")
    err = nonfinite_error(value, largest, step, kept)
    if err is not None and not skip:
        raise err
    return value, err is None


def skip_update(optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
    """Drop a step's update: clear the gradients, advance the schedule (quietly: torch warns
    when the scheduler steps before any optimizer step)."""
    optimizer.zero_grad(set_to_none=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        scheduler.step()
