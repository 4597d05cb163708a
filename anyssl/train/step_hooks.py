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

and its ``train_defaults`` may hold the keys of ``anyssl.train.recipe`` (a cosine weight decay,
the biases' lr, the cosine's lr floor, gradient clipping: ``clip_gradients``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

__all__ = ["before_optimizer_step", "clip_gradients", "method_overrides", "optimizer_update",
           "unscale"]


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


def clip_gradients(params: Sequence[Tensor], max_norm: float, mode: str = "global") -> Tensor:
    """Clip the gradients of ``params`` (those without one are skipped) in place; return the
    global norm of all of them before clipping (a 0-dim tensor, no device sync).

    ``"global"`` scales all gradients together so their global norm is at most ``max_norm``
    (``nn.utils.clip_grad_norm_``). ``"per_parameter"`` scales each tensor's gradient on its own
    to a norm of at most ``max_norm``: DINO's ``utils.clip_gradients`` (utils.py L132-141,
    ``clip_coef = clip / (norm + 1e-6)``, applied when below 1; main_dino.py ``--clip_grad 3.0``).
    """
    if mode == "global":
        return nn.utils.clip_grad_norm_(params, max_norm)
    if mode != "per_parameter":
        raise ValueError(f"unknown grad_clip_mode {mode!r}; choose one of: global, per_parameter")
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    norms = [torch.linalg.vector_norm(g) for g in grads]
    for g, norm in zip(grads, norms, strict=True):
        g.mul_((max_norm / (norm + 1e-6)).clamp(max=1.0))  # x1 (exact) when within the bound
    return torch.linalg.vector_norm(torch.stack(norms))
