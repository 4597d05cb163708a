"""Short crops: the local views of time series for multi-crop (DINO, SwAV).

Multi-crop's local views are small crops of the input (Caron et al. 2020, sec. 3.2). For a
series the analogue is a short window: a random share of each series' valid part, kept at its
own time scale (no resampling), as TS2Vec's random crops are (Yue et al. 2022, sec. 3.2).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from anyssl.modalities.timeseries.augment import as_range, as_series, fmt
from anyssl.modalities.timeseries.series import lengths
from anyssl.registry import AUGMENTATIONS

__all__ = ["ShortCrop"]


@AUGMENTATIONS.register("short_crop", scope="timeseries")
class ShortCrop:
    """A random window of a share ~ U(``scale``) of each series' valid length (changes ``T``).

    Each series draws its share and the window's start; the window (at least 1 step) moves to
    the start of the output and ``NaN`` pads the rest (the padding convention of ``series.py``),
    so windows of different lengths share one tensor of ``ceil(hi * T)`` steps, fixed by the
    input's shape (no size read back from the device). ``scale=s`` alone means ``s-s``. Use it
    outside ``RandomApply`` / ``OneOf``. Shape: ``N x C x T`` -> ``N x C x ceil(hi * T)``.
    """

    def __init__(self, scale: float | tuple[float, float] = (0.1, 0.4)) -> None:
        self.scale = as_range(scale, "short_crop scale", 0.0, 1.0)
        if self.scale[1] <= 0:
            raise ValueError(f"short_crop scale must reach above 0, got {fmt(self.scale)}")

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        x = as_series(x)
        n, c, t = x.shape
        dev, (lo, hi) = x.device, self.scale
        out_t = max(1, math.ceil(hi * t))
        lens = lengths(x)  # N
        share = lo + (hi - lo) * torch.rand(n, generator=generator, device=dev,
                                            dtype=torch.float64)
        width = (share * lens).round().long().clamp(min=1).minimum(lens.clamp_min(1))  # N
        frac = torch.rand(n, generator=generator, device=dev, dtype=torch.float64)
        start = (frac * (lens - width + 1)).floor().long().clamp_min(0)  # N
        steps = torch.arange(out_t, device=dev)  # out_T
        idx = (start.unsqueeze(1) + steps).clamp(max=t - 1)  # N x out_T
        out = x.gather(2, idx.unsqueeze(1).expand(n, c, out_t))
        inside = (steps < width.unsqueeze(1)).unsqueeze(1)  # N x 1 x out_T
        return torch.where(inside, out, torch.full_like(out, float("nan")))

    def __repr__(self) -> str:
        return f"short_crop(scale={fmt(self.scale)})"
