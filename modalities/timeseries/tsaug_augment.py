"""tsaug's augmenters (Wen & Keyes 2019, ``tsaug`` 0.2.1) as time-series augmentations.

``tsaug_<name>(...)`` takes the keyword arguments of the tsaug class of that name (``repeats``,
``prob`` and ``seed`` excepted: use the spec's ``p=`` for the probability; the seed comes from the
view generator), e.g. ``"tsaug_time_warp(n_speed_change=3,max_speed_ratio=2.0), tsaug_drift"``.

These run on the CPU in numpy, outside the batch's device: each call copies the batch to the
host as ``N x T x C`` float64, runs tsaug and copies the result back. The native augmentations of
``augment.py`` are the fast path; these are for parity with tsaug-based work and for the
augmenters with no native twin (drift, pool, quantize, convolve, reverse).

Randomness: every call draws one integer from ``generator`` (on the batch's device) and seeds
tsaug with it, so a seeded view generator reproduces the views. tsaug draws per-series values
itself (noise, warps, crop starts).

``NaN`` (see ``series.py``): tsaug knows nothing of it, so the batch is split by valid length and
tsaug sees each group without its padding (``time_warp``, ``reverse``, ``crop`` ... act on the
valid part; padding stays at the end; a group of one length draws from seed + its rank among the
lengths). Interior missing values reach tsaug as 0 (the mean of z-normalized data), with the
observed mask passed as tsaug's segmentation mask ``Y``, which tsaug moves exactly as it moves
the series (reverse, crop, resize, time warp) and leaves alone otherwise; ``NaN`` is put back
where the moved mask is below 0.5. ``tsaug_crop`` and ``tsaug_resize`` change ``T``: every series
comes out at the new length, without padding.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import Tensor

from anyssl.modalities.timeseries.series import check_series, lengths
from anyssl.registry import AUGMENTATIONS

__all__ = ["MISSING_TSAUG", "TsaugAugmentation", "tsaug_add_noise", "tsaug_convolve", "tsaug_crop",
           "tsaug_drift", "tsaug_dropout", "tsaug_pool", "tsaug_quantize", "tsaug_resize",
           "tsaug_reverse", "tsaug_time_warp"]

MISSING_TSAUG = "tsaug is not installed; pip install 'anyssl[timeseries]'"
_RESIZING = ("Crop", "Resize")  # the tsaug classes that change the series length
_SPEC_KEYS = {"p": "rate"}  # tsaug argument -> our name (Dropout's p: p= means RandomApply)
_INT_ARGS = ("size", "resize", "n_levels", "n_drift_points", "n_speed_change")


def _tsaug_class(name: str) -> Any:
    try:
        import tsaug
    except ImportError:
        raise ImportError(MISSING_TSAUG) from None
    return getattr(tsaug, name)


def _as_int(value: Any) -> Any:
    """Integral floats (a spec's ``10-20`` range arrives as floats) as ints, tuples included."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_as_int(v) for v in value)
    return value


def _fmt(value: Any) -> str:
    return f"{value[0]!r}-{value[1]!r}" if isinstance(value, tuple) else str(value)


class TsaugAugmentation:
    """Applies one tsaug augmenter to a series batch on the CPU (see the module docstring).

    Shape: ``N x C x T`` float -> ``N x C x T`` (``N x C x T'`` for crop and resize), on the
    batch's device and in its dtype.
    """

    def __init__(self, tsaug_name: str, spec_name: str, **kwargs: Any) -> None:
        self.tsaug_name, self.spec_name = tsaug_name, spec_name
        self.kwargs = {k: _as_int(v) if k in _INT_ARGS else v for k, v in kwargs.items()}
        cls = _tsaug_class(tsaug_name)
        try:
            self.augmenter = cls(**self.kwargs)
            if tsaug_name in _RESIZING:  # a crop of several sizes needs resize=
                self.augmenter._augmented_series_length(1)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{spec_name}: {err}") from None

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        x = check_series(x, "tsaug augmentations")
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=x.device))
        arr = x.detach().to("cpu", torch.float64).permute(0, 2, 1).numpy()  # N x T x C
        out = self.augment_numpy(arr, lengths(x).cpu().numpy(), seed)
        return torch.from_numpy(out).permute(0, 2, 1).to(device=x.device, dtype=x.dtype)

    def augment_numpy(self, arr: np.ndarray, lens: np.ndarray, seed: int) -> np.ndarray:
        """The augmented ``N x T' x C`` array (``NaN`` padded) of ``arr`` (N x T x C, ``NaN``
        padded to the series ``lens``), one tsaug call per distinct length."""
        n, t, c = arr.shape
        resizing = self.tsaug_name in _RESIZING
        t_out = self.augmenter._augmented_series_length(t) if resizing else t
        out = np.full((n, t_out, c), np.nan)
        for rank, length in enumerate(np.unique(lens[lens > 0])):
            self._check_length(int(length))
            idx = np.flatnonzero(lens == length)
            part = arr[idx, :length]  # n_k x L x C
            aug = copy.copy(self.augmenter)
            aug.seed = (seed + rank) % 2**32
            missing = np.isnan(part)
            if missing.any():
                y, mask = aug.augment(np.where(missing, 0.0, part), (~missing).astype(np.int64))
                y = np.where(mask < 0.5, np.nan, y)
            else:
                y = aug.augment(part)
            out[idx, : y.shape[1]] = y
        return out

    def _check_length(self, length: int) -> None:
        if self.tsaug_name != "Crop":
            return
        size = self.kwargs["size"]
        least = size if isinstance(size, int) else min(size)
        if length < least:
            raise ValueError(
                f"{self.spec_name}(size={_fmt(size)}) needs series of at least {least} valid "
                f"steps, but the batch has one of {length}; lower size= to at most {length}")

    def __repr__(self) -> str:
        args = ",".join(f"{_SPEC_KEYS.get(k, k)}={_fmt(v)}" for k, v in self.kwargs.items())
        return f"{self.spec_name}({args})" if args else self.spec_name


def _register(spec_name: str, tsaug_name: str, description: str) -> Any:
    def deco(factory: Any) -> Any:
        AUGMENTATIONS.add(spec_name, factory, scope="timeseries",
                          description=f"{description} (tsaug.{tsaug_name}, CPU)")
        return factory
    return deco


Range = Any  # a number, a (lo, hi) tuple or a list of choices, as tsaug takes them


@_register("tsaug_add_noise", "AddNoise", "add random noise")
def tsaug_add_noise(loc: Range = 0.0, scale: Range = 0.1, distr: str = "gaussian",
                    kind: str = "additive", per_channel: bool = True,
                    normalize: bool = True) -> TsaugAugmentation:
    return TsaugAugmentation("AddNoise", "tsaug_add_noise", loc=loc, scale=scale, distr=distr,
                             kind=kind, per_channel=per_channel, normalize=normalize)


@_register("tsaug_crop", "Crop", "random crop of size steps, optionally resized")
def tsaug_crop(size: Range, resize: int | None = None) -> TsaugAugmentation:
    kwargs = {"size": size} if resize is None else {"size": size, "resize": resize}
    return TsaugAugmentation("Crop", "tsaug_crop", **kwargs)


@_register("tsaug_drift", "Drift", "add a smooth random drift")
def tsaug_drift(max_drift: Range = 0.5, n_drift_points: Range = 3, kind: str = "additive",
                per_channel: bool = True, normalize: bool = True) -> TsaugAugmentation:
    return TsaugAugmentation("Drift", "tsaug_drift", max_drift=max_drift,
                             n_drift_points=n_drift_points, kind=kind, per_channel=per_channel,
                             normalize=normalize)


@_register("tsaug_dropout", "Dropout", "drop random blocks of steps and fill them")
def tsaug_dropout(rate: Range = 0.05, size: Range = 1, fill: str | float = "ffill",
                  per_channel: bool = False) -> TsaugAugmentation:
    """``rate`` is tsaug's ``p`` (in a spec ``p=`` is the probability of applying it)."""
    return TsaugAugmentation("Dropout", "tsaug_dropout", p=rate, size=size, fill=fill,
                             per_channel=per_channel)


@_register("tsaug_pool", "Pool", "pool (reduce the resolution of) the series")
def tsaug_pool(kind: str = "ave", size: Range = 2, per_channel: bool = False) -> TsaugAugmentation:
    return TsaugAugmentation("Pool", "tsaug_pool", kind=kind, size=size, per_channel=per_channel)


@_register("tsaug_quantize", "Quantize", "quantize the values to a few levels")
def tsaug_quantize(n_levels: Range = 10, how: str = "uniform",
                   per_channel: bool = False) -> TsaugAugmentation:
    return TsaugAugmentation("Quantize", "tsaug_quantize", n_levels=n_levels, how=how,
                             per_channel=per_channel)


@_register("tsaug_resize", "Resize", "resize every series to size steps")
def tsaug_resize(size: int) -> TsaugAugmentation:
    return TsaugAugmentation("Resize", "tsaug_resize", size=size)


@_register("tsaug_reverse", "Reverse", "reverse the time axis")
def tsaug_reverse() -> TsaugAugmentation:
    return TsaugAugmentation("Reverse", "tsaug_reverse")


@_register("tsaug_time_warp", "TimeWarp", "random smooth time warp")
def tsaug_time_warp(n_speed_change: int = 3,
                    max_speed_ratio: Range = 3.0) -> TsaugAugmentation:
    return TsaugAugmentation("TimeWarp", "tsaug_time_warp", n_speed_change=n_speed_change,
                             max_speed_ratio=max_speed_ratio)


@_register("tsaug_convolve", "Convolve", "convolve with a random kernel window")
def tsaug_convolve(window: Any = "hann", size: Range = 7,
                   per_channel: bool = False) -> TsaugAugmentation:
    return TsaugAugmentation("Convolve", "tsaug_convolve", window=window, size=size,
                             per_channel=per_channel)
