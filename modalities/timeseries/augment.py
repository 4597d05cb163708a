"""Native time-series augmentations: whole ``N x C x T`` batches on their device, per series.

Every augmentation here takes a float series batch (``NaN`` = missing or padding, see
``series.py``), draws each random parameter per series from ``generator`` (a ``torch.Generator``
on the batch's device) with no Python loop over samples, and keeps ``NaN`` where it was: padding
stays at the end, missing values stay missing and no observed value becomes ``NaN``. Operations
along time act on each series' own valid length (``series.lengths``), not on the padded ``T``.
All but ``crop`` keep the shape, so ``RandomApply`` / ``OneOf`` (spec ``p=``, ``a | b``) can pick
them per series.

Defaults follow the papers: jitter, scaling, magnitude and time warping from Um et al. 2017
("Data augmentation of wearable sensor data for Parkinson's disease monitoring using
convolutional neural networks") with the parameters of Iwana & Uchida 2021 ("An empirical survey
of data augmentation for time series classification with neural networks"); permutation from
TS-TCC (Eldele et al. 2021). This file holds the value augmentations (``jitter``, ``scale``,
``magnitude_warp``, ``time_mask``, ``channel_dropout``) and the shared helpers; the time-axis ones
(``time_warp``, ``window_slice``, ``crop_resize``, ``window_warp``, ``permute``, ``crop``) live in
``augment_warp.py``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from anyssl.modalities.timeseries.series import check_series, lengths
from anyssl.registry import AUGMENTATIONS

__all__ = ["ChannelDropout", "Jitter", "MagnitudeWarp", "Scale", "TimeMask", "as_range",
           "as_series", "check_number", "fmt", "smooth_curve", "unit_time", "work_dtype"]


# ---- argument checks and shared math --------------------------------------------------------
def check_number(value: Any, name: str, low: float = 0.0, high: float = float("inf"),
                 integer: bool = False) -> float:
    """``value`` as a float in ``[low, high]`` (an int when ``integer``), else ``ValueError``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()
    if not ok or not low <= float(value) <= high:
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {kind} in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def as_range(value: Any, name: str, low: float, high: float) -> tuple[float, float]:
    """``(lo, hi)`` inside ``[low, high]`` from a number ``v`` (``(v, v)``) or a pair ``lo-hi``."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        lo, hi = (check_number(v, name, low, high) for v in value)
    else:
        lo = hi = check_number(value, f"{name} (a number or a range lo-hi)", low, high)
    if lo > hi:
        raise ValueError(f"{name} range must have lo <= hi, got {lo:g}-{hi:g}")
    return lo, hi


def fmt(value: float | tuple[float, float]) -> str:
    """A number or range as the spec writes it (re-parseable by ``parse_spec``)."""
    if isinstance(value, tuple):
        return repr(value[0]) if value[0] == value[1] else f"{value[0]!r}-{value[1]!r}"
    return repr(value)


def work_dtype(x: Tensor) -> torch.dtype:
    """The dtype random parameters and positions are computed in (float64 stays float64)."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def unit_time(lens: Tensor, steps: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Each series' valid time axis mapped to [0, 1], and the valid steps.

    Shape:
        lens: ``N`` long; returns ``u`` N x T (``t / (len - 1)``, clamped to 1 past the end)
        and ``valid`` N x T bool (``t < len``).
    """
    t = torch.arange(steps, device=lens.device, dtype=dtype)
    span = (lens - 1).clamp_min(1).to(dtype).unsqueeze(1)  # N x 1
    return (t / span).clamp(max=1.0), t < lens.unsqueeze(1)


def smooth_curve(knots: Tensor, u: Tensor) -> Tensor:
    """Catmull-Rom spline through ``M`` knots equally spaced on [0, 1], evaluated at ``u``.

    A batched stand-in for the cubic spline of Um et al. 2017 (``GenerateRandomCurves``): it
    passes through every knot and is C1-smooth; end tangents use the clamped neighbour. Built as
    one batched matrix product ``knots @ basis`` with the ``M x T`` spline basis of each series.

    Shape:
        knots: N x K x M (M >= 2); u: N x T in [0, 1]; returns N x K x T.
    """
    n, _, m = knots.shape
    s = u * (m - 1)  # N x T, in knot units
    i = s.floor().clamp(0, m - 2)
    f = (s - i).unsqueeze(1)  # N x 1 x T, position inside the segment
    f2, f3 = f * f, f * f * f
    weights = 0.5 * torch.cat([2 * f2 - f - f3, 2 - 5 * f2 + 3 * f3,  # knots i-1, i,
                               f + 4 * f2 - 3 * f3, f3 - f2], dim=1)  # i+1, i+2: N x 4 x T
    offsets = torch.arange(-1, 3, device=u.device).view(1, 4, 1)
    idx = (i.long().unsqueeze(1) + offsets).clamp(0, m - 1)  # N x 4 x T
    basis = knots.new_zeros(n, m, u.shape[1]).scatter_add_(1, idx, weights)  # N x M x T
    return torch.bmm(knots, basis)


def as_series(x: Any) -> Tensor:
    """``x`` if it is a float ``N x C x T`` series batch, else a one-line ``ValueError``."""
    return check_series(x, "time-series augmentations")


# ---- value augmentations ----------------------------------------------------------------------
@AUGMENTATIONS.register("jitter", scope="timeseries")
class Jitter:
    """Add Gaussian noise N(0, sigma^2) to every observed value.

    Jittering of Um et al. 2017; sigma 0.03 as Iwana & Uchida 2021. Shape: ``N x C x T`` -> same.
    """

    def __init__(self, sigma: float = 0.03) -> None:
        self.sigma = check_number(sigma, "jitter sigma")

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        x = as_series(x)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=work_dtype(x))
        return x + (self.sigma * noise).to(x.dtype)  # NaN + noise stays NaN

    def __repr__(self) -> str:
        return f"jitter(sigma={self.sigma!r})"


@AUGMENTATIONS.register("scale", scope="timeseries")
class Scale:
    """Multiply each channel of each series by a random factor ~ N(1, sigma^2).

    Scaling of Um et al. 2017; sigma 0.1 as Iwana & Uchida 2021. Shape: ``N x C x T`` -> same.
    """

    def __init__(self, sigma: float = 0.1) -> None:
        self.sigma = check_number(sigma, "scale sigma")

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        x = as_series(x)
        n, c, _ = x.shape
        z = torch.randn(n, c, 1, generator=generator, device=x.device, dtype=work_dtype(x))
        return x * (1.0 + self.sigma * z).to(x.dtype)  # factor: N x C x 1

    def __repr__(self) -> str:
        return f"scale(sigma={self.sigma!r})"


@AUGMENTATIONS.register("magnitude_warp", scope="timeseries")
class MagnitudeWarp:
    """Multiply each channel by a smooth random curve around 1 (magnitude warping).

    The curve passes through ``knots + 2`` values ~ N(1, sigma^2) spread over each series' valid
    length, one curve per channel (Um et al. 2017; sigma 0.2, 4 knots as Iwana & Uchida 2021).
    Shape: ``N x C x T`` -> same.
    """

    def __init__(self, sigma: float = 0.2, knots: int = 4) -> None:
        self.sigma = check_number(sigma, "magnitude_warp sigma")
        self.knots = int(check_number(knots, "magnitude_warp knots", 0, 1e6, integer=True))

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        x = as_series(x)
        n, c, t = x.shape
        dt = work_dtype(x)
        z = torch.randn(n, c, self.knots + 2, generator=generator, device=x.device, dtype=dt)
        u, _ = unit_time(lengths(x), t, dt)
        curve = smooth_curve(1.0 + self.sigma * z, u)  # N x C x T
        return x * curve.to(x.dtype)

    def __repr__(self) -> str:
        return f"magnitude_warp(sigma={self.sigma!r},knots={self.knots})"


@AUGMENTATIONS.register("time_mask", scope="timeseries")
class TimeMask:
    """Set random contiguous time spans of each series to 0 (time masking).

    ``spans`` spans, ``ratio`` of each series' valid length in all, are set to 0 in every channel
    (the mean of z-normalized data); missing values and padding stay ``NaN``. Time masking as in
    SpecAugment (Park et al. 2019) and cutout (DeVries & Taylor 2017); each span is
    ``ceil(ratio * len / spans)`` steps long (spans may overlap). Shape: ``N x C x T`` -> same.
    """

    def __init__(self, ratio: float = 0.1, spans: int = 1) -> None:
        self.ratio = check_number(ratio, "time_mask ratio", 0.0, 1.0)
        self.spans = int(check_number(spans, "time_mask spans", 1, 1e6, integer=True))

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        x = as_series(x)
        n, _, t = x.shape
        lens = lengths(x)
        width = torch.ceil(self.ratio * lens.double() / self.spans).long()  # N
        start_frac = torch.rand(n, self.spans, generator=generator, device=x.device,
                                dtype=torch.float64)
        start = (start_frac * (lens - width + 1).unsqueeze(1)).floor().long()  # N x spans
        steps = torch.arange(t, device=x.device).view(1, 1, t)
        inside = (steps >= start.unsqueeze(2)) & (steps < (start + width.unsqueeze(1)).unsqueeze(2))
        mask = inside.any(dim=1)  # N x T
        return torch.where(mask.unsqueeze(1), x * 0.0, x)  # NaN * 0 stays NaN

    def __repr__(self) -> str:
        return f"time_mask(ratio={self.ratio!r},spans={self.spans})"


@AUGMENTATIONS.register("channel_dropout", scope="timeseries")
class ChannelDropout:
    """Zero random whole channels of each series, never all of them.

    Each channel is dropped with probability ``rate`` per series; when every channel of a series
    is drawn, one chosen at random is kept. Missing values stay ``NaN``.

    ``rate``, not ``p``: in a spec ``p=`` is the probability of applying the augmentation.
    Shape: ``N x C x T`` -> same.
    """

    def __init__(self, rate: float = 0.1) -> None:
        self.rate = check_number(rate, "channel_dropout rate", 0.0, 1.0)

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        x = as_series(x)
        n, c, _ = x.shape
        drop = torch.rand(n, c, generator=generator, device=x.device) < self.rate  # N x C
        keep = torch.randint(0, c, (n,), generator=generator, device=x.device)
        keep_one = torch.nn.functional.one_hot(keep, c).bool() & drop.all(dim=1, keepdim=True)
        drop = drop & ~keep_one
        return torch.where(drop.unsqueeze(2), x * 0.0, x)  # NaN * 0 stays NaN

    def __repr__(self) -> str:
        return f"channel_dropout(rate={self.rate!r})"
