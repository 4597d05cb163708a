"""The series batch convention shared by every time-series part, and its mask helpers.

A batch of series is one float tensor ``x`` of shape ``N x C x T`` (samples, channels, time
steps; the layout of ``torch.nn.Conv1d``). ``NaN`` marks what is not observed: a missing value
is a ``NaN`` entry, and a series shorter than ``T`` is padded at the end with ``NaN`` in every
channel. The validity mask therefore travels *inside* the batch (as in TS2Vec, Yue et al. 2022,
whose loaders pad with ``NaN`` and whose encoder masks ``NaN`` time steps), so it survives
collation, device moves, ``RandomApply`` selection and any user augmentation that keeps ``NaN``
where it was.

* a time step is **valid** when at least one channel is observed there;
* every part that computes on values first fills ``NaN`` with 0 (``fill``) and then respects
  ``valid_steps`` (pooling, losses, the time axis of warps and crops);
* nothing that reaches a loss may be ``NaN``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["check_series", "fill", "lengths", "masked_max_pool", "observed", "valid_steps"]


def check_series(x: Any, what: str = "time-series parts") -> Tensor:
    """``x`` itself if it is a floating ``N x C x T`` tensor, else a one-line ``ValueError``."""
    if not isinstance(x, Tensor) or x.dim() != 3 or not x.is_floating_point():
        got = (f"a {x.dtype} tensor of shape {tuple(x.shape)}" if isinstance(x, Tensor)
               else type(x).__name__)
        raise ValueError(f"{what} take a float N x C x T series batch (NaN = missing), got {got}")
    return x


def observed(x: Tensor) -> Tensor:
    """``N x C x T`` bool: the entries that hold a value (not ``NaN``)."""
    return ~torch.isnan(x)


def valid_steps(x: Tensor) -> Tensor:
    """``N x T`` bool: the time steps where at least one channel is observed."""
    return ~torch.isnan(x).all(dim=1)  # one N x T negation, not an N x C x T one


def lengths(x: Tensor) -> Tensor:
    """``N`` long: one past the last valid time step of each series (0 for an empty series)."""
    valid = valid_steps(x)
    t = torch.arange(1, x.shape[-1] + 1, device=x.device)
    return (valid * t).amax(dim=1)


def fill(x: Tensor, value: float = 0.0) -> Tensor:
    """A copy of ``x`` with ``NaN`` replaced by ``value`` (0: the mean of z-normalized data)."""
    return torch.nan_to_num(x, nan=value)


def masked_max_pool(h: Tensor, valid: Tensor) -> Tensor:
    """Max over the valid time steps. Shape: ``h`` N x T x D, ``valid`` N x T -> N x D.

    A series with no valid step pools to zeros (never ``-inf`` or ``NaN``).
    """
    neg = torch.finfo(h.dtype).min
    pooled = h.masked_fill(~valid.unsqueeze(-1), neg).amax(dim=1)
    return torch.where(valid.any(dim=1, keepdim=True), pooled, torch.zeros_like(pooled))
