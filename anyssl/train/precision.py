"""Training precision: which autocast dtype a run uses, and the gradient scaler fp16 needs.

- ``bf16``: autocast to bfloat16. Same exponent range as float32, so no loss scaling; the
  default on GPUs that support it (Ampere and newer).
- ``fp16``: autocast to float16 with a ``torch.amp.GradScaler`` (Micikevicius et al. 2018,
  "Mixed Precision Training"): the loss is scaled up before ``backward`` so small gradients do
  not flush to zero, the gradients are unscaled before clipping and the optimizer step, and a
  step whose scaled gradients overflowed is skipped while the scale backs off. The default on
  GPUs without bfloat16 (V100, T4).
- ``fp32``: no autocast; the default on the CPU.

Losses compute their similarities in float32 whatever the autocast dtype
(``anyssl.objectives``). ``auto`` resolves to one of the three once, when the trainer starts,
and the resolved value is what the run's ``config.yaml`` records.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

__all__ = ["DTYPES", "autocast", "grad_scaler", "resolve_precision"]

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: str, device: torch.device) -> str:
    """``bf16``, ``fp16`` or ``fp32`` for ``device``; ``auto`` is bf16 on a GPU that supports it,
    fp16 on one that does not, fp32 on the CPU. ``ValueError`` for an unknown name."""
    if precision == "auto":
        if device.type != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision not in ("bf16", "fp16", "fp32"):
        raise ValueError(f"unknown precision {precision!r}; choose one of: auto, bf16, fp16, fp32")
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """Autocast to ``precision``'s dtype on ``device``'s type (nothing for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """The gradient scaler of a run: enabled for fp16 only (a disabled scaler is a no-op)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
