"""What the trainer asks of a method around the optimizer step, and the step itself.

A method may define (all optional):

- ``optimizer_overrides() -> {prefix: options}``: parameter-name prefixes (as in
  ``method.named_parameters()``, e.g. ``"predictor."``) with options for their optimizer group;
  ``{"fixed_lr": True}`` keeps the group at the base (scaled) lr for the whole run, no warm-up
  and no decay (SimSiam's ``--fix-pred-lr``). An attribute holding the dict works too.
- ``before_optimizer_step(step, steps_per_epoch, max_steps)``: called on every step after
  backward (and after fp16's gradient scaler unscaled the gradients), before the non-finite
  check, gradient clipping and the optimizer step. It may set ``p.grad = None`` to leave a
  parameter unchanged for that step (DINO freezes its last layer in the first epoch; SwAV
  freezes its prototypes for the first iterations).

and its ``train_defaults`` may hold ``weight_decay_end`` (a cosine weight decay schedule,
``schedule.WeightDecaySchedule``) and ``bias_lr`` (the base lr of biases and norm parameters).
"""

from __future__ import annotations

import warnings
from typing import Any

from torch import nn
from torch.optim import Optimizer

__all__ = ["before_optimizer_step", "method_overrides", "optimizer_update", "unscale"]


def method_overrides(method: nn.Module) -> dict[str, dict[str, Any]]:
    """The method's ``optimizer_overrides`` (a method or a dict attribute); ``{}`` if none."""
    overrides = getattr(method, "optimizer_overrides", None)
    if callable(overrides):
        overrides = overrides()
    if overrides is None:
        return {}
    if not isinstance(overrides, dict) or not all(
            isinstance(k, str) and isinstance(v, dict) for k, v in overrides.items()):
        raise TypeError(f"{type(method).__name__}.optimizer_overrides must map parameter-name "
                        f"prefixes to dicts of options, got {overrides!r}")
    return overrides


def before_optimizer_step(method: nn.Module, step: int, steps_per_epoch: int,
                          max_steps: int) -> None:
    """Call the method's ``before_optimizer_step`` hook, if it has one."""
    hook = getattr(method, "before_optimizer_step", None)
    if callable(hook):
        hook(step, steps_per_epoch, max_steps)


def unscale(scaler: Any, optimizer: Optimizer, logs: dict[str, Any]) -> bool:
    """With fp16's gradient scaler: unscale the gradients (true values for the hook and for
    clipping; overflow is the scaler's to skip), log the scale this step used, return True.
    Without one: False."""
    if not scaler.is_enabled():
        return False
    scaler.unscale_(optimizer)
    # the scale this step used, as a tensor: get_scale() would sync with the device
    scale = scaler._get_scale_async()
    logs["grad_scale"] = scale.clone() if scale is not None else scaler.get_scale()
    return True


def optimizer_update(optimizer: Optimizer, scheduler: Any, scaler: Any) -> None:
    """The optimizer step (through the scaler: with fp16 a step whose gradients overflowed is
    skipped and the scale backs off), then the schedule's."""
    if not scaler.is_enabled():
        optimizer.step()
        scheduler.step()
        return
    scaler.step(optimizer)
    scaler.update()
    with warnings.catch_warnings():  # the scaler may have skipped the optimizer step
        warnings.simplefilter("ignore", UserWarning)
        scheduler.step()
