"""Time-axis augmentations of series batches: warps (time warping, window slicing, window
warping) and rearrangements by index (segment permutation, fixed-length crop).

The contract of ``augment.py`` holds here too. Each warp builds, per series, the source
position that every output step reads (monotone, inside the series' valid part
``[0, len - 1]``) and calls ``resample``. Resampling is linear and keeps the ``NaN`` convention
of ``series.py``: the zero-filled values and the observed mask are interpolated separately; an
output is the interpolated value divided by the interpolated mask (a missing neighbour does not
pull it toward 0) and ``NaN`` where that mask is below 0.5 (the step lies closer to missing than
to observed data). Without interior missing values this is plain linear interpolation and yields
no ``NaN`` inside the valid part; padding stays ``NaN`` at the end. ``permute`` and ``crop`` move
whole time steps by index (``gather``), so missing values move with their steps.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from anyssl.modalities.timeseries.augment import (
    as_range,
    as_series,
    check_number,
    fmt,
    smooth_curve,
    unit_time,
    work_dtype,
)
from anyssl.modalities.timeseries.series import lengths
from anyssl.registry import AUGMENTATIONS

__all__ = ["Permute", "RandomCrop", "TimeWarp", "WindowSlice", "WindowWarp", "crop_resize",
           "permute_segments", "resample", "warp_positions"]

#: Lowest speed of the time-warp curve: keeps the warp strictly increasing.
MIN_SPEED = 1e-2


def resample(x: Tensor, pos: Tensor, lens: Tensor) -> Tensor:
    """Read each series at fractional source positions ``pos`` (linear, mask-aware; see above).

    Positions are clamped to ``[0, len - 1]``; output steps ``t >= len`` are ``NaN`` (padding).

    Shape:
        x: N x C x T; pos: N x K x T float with K = 1 (shared by the channels) or C;
        lens: N long; returns N x C x T in the dtype of ``x``.
    """
    n, c, t = x.shape
    steps = torch.arange(t, device=x.device, dtype=pos.dtype)
    inside = steps < lens.view(n, 1, 1)  # N x 1 x T
    top = (lens - 1).clamp_min(0).to(pos.dtype).view(n, 1, 1)
    # padded steps read themselves (NaN in every channel), so they come out NaN
    pos = torch.where(inside, torch.minimum(pos.clamp_min(0.0), top), steps)
    i0 = pos.long()  # floor: pos >= 0
    w = (pos - i0).to(x.dtype).expand(n, c, t)  # weight of the right neighbour
    i0 = i0.expand(n, c, t)
    left, right = x.gather(2, i0), x.gather(2, (i0 + 1).clamp_(max=t - 1))
    mask = (left == left).to(x.dtype)  # observed (not NaN), then interpolated in place
    mask.lerp_((right == right).to(x.dtype), w)
    out = left.nan_to_num_(0.0).lerp_(right.nan_to_num_(0.0), w)  # zero-filled values
    missing = mask < 0.5
    return out.div_(mask.clamp_min_(0.5)).masked_fill_(missing, float("nan"))


def warp_positions(speed: Tensor, lens: Tensor) -> Tensor:
    """Monotone source positions from a positive speed curve (Um et al. 2017's
    ``DistortTimesteps``: cumulative sum, rescaled so that ``0 -> 0`` and ``len-1 -> len-1``).

    Shape:
        speed: N x K x T, > 0; lens: N long; returns N x K x T.
    """
    n, k, t = speed.shape
    inside = (torch.arange(t, device=speed.device) < lens.view(n, 1)).unsqueeze(1)
    speed = speed * inside  # no speed past the end
    cum = speed.cumsum(dim=2) - speed[..., :1]  # N x K x T, 0 at t = 0
    last = (lens - 1).clamp_min(0).view(n, 1, 1).expand(n, k, 1)
    total = cum.gather(2, last)  # N x K x 1
    span = last.to(speed.dtype)
    return cum / total.clamp_min(torch.finfo(speed.dtype).tiny) * span


@AUGMENTATIONS.register("time_warp", scope="timeseries")
class TimeWarp:
    """Smooth random monotone warp of each series' time axis, then linear resampling.

    Um et al. 2017's time warping: a speed curve through ``knots + 2`` values ~ N(1, sigma^2)
    (Catmull-Rom, clamped at ``MIN_SPEED``) is integrated into source positions that keep the
    first and last valid step in place (sigma 0.2, 4 knots as Iwana & Uchida 2021). One warp per
    series, shared by its channels so they stay aligned (tsaug's choice; Um and Iwana warp each
    channel on its own). Shape: ``N x C x T`` -> same.
    """

    def __init__(self, sigma: float = 0.2, knots: int = 4) -> None:
        self.sigma = check_number(sigma, "time_warp sigma")
        self.knots = int(check_number(knots, "time_warp knots", 0, 1e6, integer=True))

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        x = as_series(x)
        n, _, t = x.shape
        dt, lens = work_dtype(x), lengths(x)
        z = torch.randn(n, 1, self.knots + 2, generator=generator, device=x.device, dtype=dt)
        u, _ = unit_time(lens, t, dt)
        speed = smooth_curve(1.0 + self.sigma * z, u).clamp_min(MIN_SPEED)  # N x 1 x T
        return resample(x, warp_positions(speed, lens), lens)

    def __repr__(self) -> str:
        return f"time_warp(sigma={self.sigma!r},knots={self.knots})"


@AUGMENTATIONS.register("window_slice", scope="timeseries")
class WindowSlice:
    """A random window of each series, stretched back to its length (window slicing).

    The window covers ``ratio`` of the series' valid length and starts anywhere (continuous) in
    it: window slicing of Le Guennec et al. 2016 (ratio 0.9 as Iwana & Uchida 2021).
    ``ratio=lo-hi`` draws the ratio per series from U(lo, hi). Shape: ``N x C x T`` -> same.
    """

    def __init__(self, ratio: float | tuple[float, float] = 0.9) -> None:
        self.ratio = as_range(ratio, "window_slice ratio", 0.0, 1.0)

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        x = as_series(x)
        n, _, t = x.shape
        dt, lens, dev = work_dtype(x), lengths(x), x.device
        lo, hi = self.ratio
        r = lo + (hi - lo) * torch.rand(n, 1, generator=generator, device=dev, dtype=dt)
        start = torch.rand(n, 1, generator=generator, device=dev, dtype=dt)
        span = (lens - 1).clamp_min(0).to(dt).unsqueeze(1)  # N x 1
        u, _ = unit_time(lens, t, dt)
        pos = (start * (1 - r) + u * r) * span  # N x T
        return resample(x, pos.unsqueeze(1), lens)

    def __repr__(self) -> str:
        return f"window_slice(ratio={fmt(self.ratio)})"


def crop_resize(scale: float | tuple[float, float] = (0.5, 1.0)) -> WindowSlice:
    """A random window of a random share of each series, stretched back to its length.

    ``window_slice`` with the ratio drawn per series from U(``scale``); ``scale=s`` alone means
    ``s-1.0``.
    """
    if isinstance(scale, (int, float)) and not isinstance(scale, bool):
        scale = (float(scale), 1.0)
    return WindowSlice(ratio=scale)


AUGMENTATIONS.add("crop_resize", crop_resize, scope="timeseries")


@AUGMENTATIONS.register("window_warp", scope="timeseries")
class WindowWarp:
    """Speed up or slow down a random window of each series (window warping).

    The window covers ``ratio`` of the series' valid length and is stretched by a factor from
    ``scales``; the whole series is then resampled back to its length.

    Window warping of Le Guennec et al. 2016 with Iwana & Uchida 2021's defaults: ratio 0.1 and
    each series picks one of the two ``scales`` ``lo-hi`` at random (0.5 or 2, not a value in
    between); ``scales=s`` fixes the factor. Shape: ``N x C x T`` -> same.
    """

    def __init__(self, ratio: float = 0.1,
                 scales: float | tuple[float, float] = (0.5, 2.0)) -> None:
        self.ratio = check_number(ratio, "window_warp ratio", 0.0, 1.0)
        self.scales = as_range(scales, "window_warp scales", 0.0, 1e6)
        if self.scales[0] <= 0:
            raise ValueError(f"window_warp scales must be > 0, got {fmt(self.scales)}")

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        x = as_series(x)
        n, _, t = x.shape
        dt, lens, dev = work_dtype(x), lengths(x), x.device
        span = (lens - 1).clamp_min(0).to(dt).unsqueeze(1)  # N x 1
        width = self.ratio * span
        start = torch.rand(n, 1, generator=generator, device=dev, dtype=dt) * (span - width)
        pick = torch.rand(n, 1, generator=generator, device=dev, dtype=dt) < 0.5
        scale = torch.where(pick, self.scales[0], self.scales[1]).to(dt)
        u, _ = unit_time(lens, t, dt)
        tau = u * (span + width * (scale - 1))  # N x T on the warped axis
        end = start + width * scale
        pos = torch.where(tau < start, tau,
                          torch.where(tau < end, start + (tau - start) / scale,
                                      tau - width * (scale - 1)))
        return resample(x, pos.unsqueeze(1), lens)

    def __repr__(self) -> str:
        return f"window_warp(ratio={self.ratio!r},scales={fmt(self.scales)})"


# ---- time-axis rearrangements by index --------------------------------------------------------
def permute_segments(x: Tensor, bounds: Tensor, order: Tensor) -> Tensor:
    """Concatenate each series' segments in a new order; padding stays at the end.

    Shape:
        x: N x C x T; bounds: N x (K+1) long, non-decreasing from 0 to the series length
        (segment ``j`` is ``[bounds[j], bounds[j+1])``, possibly empty); order: N x K long, a
        permutation (output segment ``j`` is input segment ``order[j]``); returns N x C x T.
    """
    n, c, t = x.shape
    seg_len = bounds.diff(dim=1).gather(1, order)  # N x K, in output order
    out_end = seg_len.cumsum(dim=1)  # N x K, non-decreasing
    src_start = bounds[:, :-1].gather(1, order)
    steps = torch.arange(t, device=x.device).expand(n, t).contiguous()
    j = torch.searchsorted(out_end, steps, right=True).clamp(max=order.shape[1] - 1)  # N x T
    src = src_start.gather(1, j) + steps - (out_end - seg_len).gather(1, j)
    src = torch.where(steps < bounds[:, -1:], src, steps)  # padding maps to itself
    return x.gather(2, src.unsqueeze(1).expand(n, c, t))


@AUGMENTATIONS.register("permute", scope="timeseries")
class Permute:
    """Cut each series into random segments and shuffle them (permutation).

    The valid part is cut at random points into 1..``max_segments`` segments (count drawn per
    series, both ends included): TS-TCC's strong augmentation (Eldele
    et al. 2021, ``max_seg=5``, random split points; their numpy draw excludes the upper end;
    coinciding cut points make fewer segments). Shape: ``N x C x T`` -> same; each series keeps
    its multiset of values.
    """

    def __init__(self, max_segments: int = 5) -> None:
        self.max_segments = int(check_number(max_segments, "permute max_segments", 1, 1e6,
                                             integer=True))

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        x = as_series(x)
        n, k, dev = x.shape[0], self.max_segments, x.device
        lens = lengths(x).unsqueeze(1)  # N x 1
        count = torch.randint(1, k + 1, (n, 1), generator=generator, device=dev)
        frac = torch.rand(n, k - 1, generator=generator, device=dev, dtype=torch.float64)
        cuts = 1 + (frac * (lens - 1).clamp_min(0)).floor().long()  # in [1, len - 1]
        used = torch.arange(k - 1, device=dev) < count - 1  # the first count - 1 cuts
        cuts = torch.where(used, cuts, lens).minimum(lens).sort(dim=1).values
        bounds = torch.cat([torch.zeros_like(lens), cuts, lens], dim=1)  # N x (K+1)
        order = torch.rand(n, k, generator=generator, device=dev).argsort(dim=1)
        return permute_segments(x, bounds, order)

    def __repr__(self) -> str:
        return f"permute(max_segments={self.max_segments})"


@AUGMENTATIONS.register("crop", scope="timeseries")
class RandomCrop:
    """A random window of ``length`` steps of each series (changes ``T``).

    The start is drawn per series inside its valid part. Use it outside ``RandomApply`` /
    ``OneOf`` (no ``p=``). A series with fewer than ``length`` valid steps raises ``ValueError``
    (an all-``NaN`` one crops to ``NaN``). Shape: ``N x C x T`` -> N x C x L.
    """

    def __init__(self, length: int) -> None:
        self.length = int(check_number(length, "crop length", 1, 1e12, integer=True))

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        x = as_series(x)
        n, c, _ = x.shape
        lens = lengths(x)
        nonempty = lens[lens > 0]  # an all-NaN series crops to all-NaN
        shortest = int(nonempty.min()) if nonempty.numel() else x.shape[2]
        if shortest < self.length:
            raise ValueError(
                f"crop(length={self.length}) needs series of at least {self.length} valid steps, "
                f"but the batch has one of {shortest}; lower length= to at most {shortest}")
        frac = torch.rand(n, generator=generator, device=x.device, dtype=torch.float64)
        start = (frac * (lens - self.length + 1)).floor().long().clamp_min(0)  # N
        idx = start.unsqueeze(1) + torch.arange(self.length, device=x.device)  # N x L
        return x.gather(2, idx.unsqueeze(1).expand(n, c, self.length))

    def __repr__(self) -> str:
        return f"crop(length={self.length})"
