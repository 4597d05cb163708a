"""Series normalization as TS2Vec's loaders do it, and the old per-series z-score.

Yue et al. 2022 (TS2Vec), ``datautils.py`` of yuezhihan/ts2vec (commit b0088e1):

* ``load_UCR`` (lines 12-76) keeps a UCR set as released, except the 34 sets it lists as not
  normalized (lines 34-69, ``UNNORMALIZED_UCR`` below), which get one mean and std over the
  whole training set (``np.nanmean`` / ``np.nanstd``, lines 72-75: amplitude and offset kept);
* ``load_UEA`` (lines 79-106) fits one ``StandardScaler`` per channel on every time step of the
  training set (lines 96-99) and applies it to both splits.

Modes (``-d normalize=...``): ``global`` (one mean and std), ``channel`` (one per channel),
``series`` (each series and channel by itself: ``znormalize``; alias ``zscore``, also ``True``),
``none`` (as read; also ``False``) and ``auto`` (TS2Vec's choice, ``ts2vec_mode``). Statistics
of ``global`` and ``channel`` always come from the training split (``fit_stats``) and are
applied to both splits (``apply_stats``); NaN (missing / padding) is ignored and kept.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "NORMALIZE_CHOICES", "UNNORMALIZED_UCR", "apply_stats", "fit_stats", "resolve_normalize",
    "ts2vec_mode", "znormalize",
]

#: The modes ``resolve_normalize`` accepts (``zscore`` is an alias of ``series``).
NORMALIZE_CHOICES = ("auto", "global", "channel", "series", "none", "zscore")

#: The UCR sets TS2Vec normalizes with one training-set mean and std because the archive
#: releases them unnormalized (yuezhihan/ts2vec ``datautils.py`` lines 34-69, ``load_UCR``).
UNNORMALIZED_UCR = frozenset({
    "AllGestureWiimoteX", "AllGestureWiimoteY", "AllGestureWiimoteZ", "BME", "Chinatown",
    "Crop", "EOGHorizontalSignal", "EOGVerticalSignal", "Fungi", "GestureMidAirD1",
    "GestureMidAirD2", "GestureMidAirD3", "GesturePebbleZ1", "GesturePebbleZ2",
    "GunPointAgeSpan", "GunPointMaleVersusFemale", "GunPointOldVersusYoung", "HouseTwenty",
    "InsectEPGRegularTrain", "InsectEPGSmallTrain", "MelbournePedestrian",
    "PickupGestureWiimoteZ", "PigAirwayPressure", "PigArtPressure", "PigCVP", "PLAID",
    "PowerCons", "Rock", "SemgHandGenderCh2", "SemgHandMovementCh2", "SemgHandSubjectCh2",
    "ShakeGestureWiimoteZ", "SmoothSubspace", "UMD",
})


def resolve_normalize(normalize: str | bool | None) -> str:
    """One of ``auto global channel series none``: True is ``series``, False ``none``, None
    ``auto`` and ``zscore`` ``series``; anything else raises, listing the choices."""
    if normalize is None:
        return "auto"
    if isinstance(normalize, bool):
        return "series" if normalize else "none"
    if normalize not in NORMALIZE_CHOICES:
        raise ValueError(f"unknown normalize {normalize!r}; choose one of: "
                         f"{', '.join(NORMALIZE_CHOICES)} (or True / False)")
    return "series" if normalize == "zscore" else normalize


def ts2vec_mode(name: str | None, channels: int) -> tuple[str, str]:
    """TS2Vec's normalization of a data set and the reason, for the run's notes.

    Multivariate (a UEA set): ``channel`` (``load_UEA``); a UCR set in ``UNNORMALIZED_UCR``:
    ``global``; any other named univariate set: ``none`` (the UCR archive's series are released
    z-normalized, and ``load_UCR`` keeps them as they are); univariate data without a set name
    (``name=None``, e.g. one CSV file): ``global``, the safe choice for raw data.
    """
    src = "TS2Vec, yuezhihan/ts2vec datautils.py"
    if channels > 1:
        return "channel", (f"{channels} channels: one mean and std per channel over the "
                           f"training split, as {src} load_UEA does for UEA sets")
    if name in UNNORMALIZED_UCR:
        return "global", (f"{name} is one of the 34 UCR sets released unnormalized: one mean "
                          f"and std over the training split (amplitude kept), as {src} "
                          "load_UCR does")
    if name is None:
        return "global", ("univariate data without a UCR/UEA set name: one mean and std over "
                          f"the training split (amplitude kept), as {src} load_UCR does for "
                          "UCR sets released unnormalized")
    return "none", (f"{name} is univariate and not in TS2Vec's list of unnormalized UCR "
                    f"sets: kept as released (the archive z-normalizes them), as {src} "
                    "load_UCR does")


def fit_stats(x: Tensor, mode: str) -> tuple[Tensor, Tensor]:
    """Mean and std of the observed values of a training split, in float64.

    ``global``: over every value (``np.nanmean`` / ``np.nanstd``, population std);
    ``channel``: per channel over every series and step (``StandardScaler``). A std of at most
    1e-12 times the largest magnitude becomes 1 (``StandardScaler``'s rule for constant
    features, instead of TS2Vec's division by zero in ``load_UCR``).

    Shape: x ``N x C x T`` -> mean, std ``1 x 1 x 1`` (global) or ``1 x C x 1`` (channel).
    """
    if mode not in ("global", "channel"):
        raise ValueError(f"fit_stats takes mode 'global' or 'channel', got {mode!r}")
    x64 = x.double().transpose(0, 1).reshape(x.shape[1], -1)  # C x (N*T)
    if mode == "global":
        x64 = x64.reshape(1, -1)  # 1 x (C*N*T)
    obs = ~torch.isnan(x64)
    n = obs.sum(1, keepdim=True).clamp_min(1)
    mean = torch.where(obs, x64, 0.0).sum(1, keepdim=True) / n  # K x 1
    var = torch.where(obs, x64 - mean, 0.0).square().sum(1, keepdim=True) / n
    std = var.sqrt()
    scale = torch.where(obs, x64.abs(), 0.0).amax(1, keepdim=True)
    std = torch.where(std <= 1e-12 * scale, 1.0, std)  # constant (or all-NaN): scale 1
    return mean.view(1, -1, 1), std.view(1, -1, 1)


def apply_stats(x: Tensor, stats: tuple[Tensor, Tensor]) -> Tensor:
    """``(x - mean) / std`` in float64, back to ``x``'s dtype (NaN stays NaN).

    Shape: x ``N x C x T``, stats from ``fit_stats`` -> ``N x C x T``.
    """
    mean, std = stats
    return ((x.double() - mean) / std).to(x.dtype)


def znormalize(x: Tensor, chunk: int = 4096) -> Tensor:
    """Z-normalize each series and channel over its observed values (the UCR convention; mean
    and population std, NaN ignored and kept in place). A constant channel (std at most 1e-6
    of its largest magnitude) becomes 0, not NaN. Computed in float64, ``chunk`` series at once.

    Shape: ``N x C x T`` -> ``N x C x T`` (same dtype).
    """
    return torch.cat([_znormalize(part) for part in x.split(chunk)]) if len(x) else x.clone()


def _znormalize(x: Tensor) -> Tensor:
    x64 = x.double()
    obs = ~torch.isnan(x64)  # N x C x T
    n = obs.sum(-1, keepdim=True).clamp_min(1)  # N x C x 1
    mean = torch.where(obs, x64, 0.0).sum(-1, keepdim=True) / n
    centered = torch.where(obs, x64 - mean, 0.0)
    std = (centered.square().sum(-1, keepdim=True) / n).sqrt()  # N x C x 1
    scale = torch.where(obs, x64.abs(), 0.0).amax(-1, keepdim=True)
    const = std <= 1e-6 * scale
    z = torch.where(const, 0.0, centered / torch.where(const, 1.0, std))
    return torch.where(obs, z, torch.nan).to(x.dtype)
