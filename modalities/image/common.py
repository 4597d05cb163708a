"""Small helpers shared by the image augmentations: batch checks, dtype conversion, ranges."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def check_batch(x: Any) -> Tensor:
    """``x`` itself if it is a ``B x C x H x W`` uint8 or floating tensor, else ``ValueError``."""
    if not isinstance(x, Tensor) or x.dim() != 4:
        what = f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"image augmentations take a B x C x H x W tensor batch, got {what}")
    if x.dtype != torch.uint8 and not x.is_floating_point():
        raise ValueError(f"image batch must be uint8 [0,255] or float [0,1], got dtype {x.dtype}")
    return x


def to_float_batch(x: Any) -> Tensor:
    """A ``B x C x H x W`` image batch as float32 in [0, 1] (uint8 is divided by 255).

    A float32 batch is returned as is (not copied). Raises ``ValueError`` for anything that is
    not a 4-D uint8 or floating tensor.
    """
    if check_batch(x).dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    return x.to(torch.float32)


def check_channels(x: Tensor, what: str) -> int:
    """The channel count of ``x`` (1 or 3); other counts raise ``ValueError``."""
    c = int(x.shape[1])
    if c not in (1, 3):
        raise ValueError(f"{what} needs 1- or 3-channel images, got {c} channels")
    return c


def as_range(value: Any, name: str, default_hi: float | None = None) -> tuple[float, float]:
    """``(lo, hi)`` from a pair, or from one number ``v`` as ``(v, default_hi)``.

    With ``default_hi=None`` a single number means the fixed range ``(v, v)``.
    """
    if isinstance(value, (int, float)):
        lo, hi = float(value), float(value) if default_hi is None else default_hi
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        lo, hi = float(value[0]), float(value[1])
    else:
        raise ValueError(f"{name} must be a number or a range lo-hi, got {value!r}")
    if lo > hi:
        raise ValueError(f"{name} range must have lo <= hi, got {lo}-{hi}")
    return lo, hi


def fmt_range(r: tuple[float, float]) -> str:
    """A range in the spec's ``lo-hi`` form (re-parseable by ``anyssl.views.parse_spec``)."""
    return f"{r[0]!r}-{r[1]!r}"


def per_sample(values: Tensor | float, x: Tensor) -> Tensor:
    """Per-sample factors (``B`` or a scalar) as a ``B x 1 x 1 x 1`` tensor on ``x``'s device."""
    t = torch.as_tensor(values, dtype=x.dtype, device=x.device)
    return t.reshape(-1, 1, 1, 1) if t.dim() else t.expand(x.shape[0]).reshape(-1, 1, 1, 1)
