"""TS2Vec's views: two overlapping random crops of each series, plus random timestamp masks.

Yue et al. 2022, "TS2Vec: Towards Universal Representation of Time Series", sec. 3.2 ("Random
Cropping" and "Timestamp Masking"): for a batch padded to ``T`` steps the crop length ``l``,
the overlap ``[a, b)`` and the outer ends ``a1 <= a``, ``b2 >= b`` are drawn once per batch;
every series gets its own shift, so the two views cover ``[a1, b)`` and ``[a, b2)`` of its own
time line. Their overlap is where the loss compares time steps: the last ``l`` steps of view 1
and the first ``l`` steps of view 2 show the same time stamps in different contexts. Masks
keep each time step with probability ``1 - p`` (binomial, p = 0.5 in the paper); the encoder
zeroes masked steps after its input projection.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from anyssl.modalities.timeseries.series import check_series

__all__ = ["AlignedView", "OverlapCrops", "take_windows"]


@dataclass
class AlignedView:
    """One view of a pair whose time steps line up with the other view's on ``[start,
    start + length)``.

    Attributes:
        x: ``N x C x L`` series (``NaN`` = missing or padding).
        start: first overlapping step within ``x``.
        length: overlap length (the same in both views).
        time_mask: ``N x L`` bool, True where the encoder keeps the step; None keeps all.
    """

    x: Tensor
    start: int
    length: int
    time_mask: Tensor | None = None


def take_windows(x: Tensor, starts: Tensor, length: int) -> Tensor:
    """Per-series windows: ``out[i] = x[i, :, starts[i]:starts[i] + length]``.

    Shape: x N x C x T, starts N (long, each in ``[0, T - length]``) -> N x C x length.
    """
    idx = starts.view(-1, 1) + torch.arange(length, device=x.device)  # N x length
    return x.gather(2, idx.unsqueeze(1).expand(-1, x.shape[1], -1))


def _randint(low: int, high: int, generator: torch.Generator | None) -> int:
    """One integer in ``[low, high)`` (drawn on the CPU: a batch shares its crop geometry)."""
    return int(torch.randint(low, high, (1,), generator=generator).item())


class OverlapCrops:
    """TS2Vec's view pair: ``[AlignedView, AlignedView]`` for a batch ``N x C x T``.

    Args:
        min_length: shortest overlap; TS2Vec uses ``2 ** (temporal_unit + 1)`` = 2.
        mask_p: probability that a time step is masked (TS2Vec: binomial with p = 0.5);
            0 turns timestamp masking off.
        max_length: a batch longer than this is first cut to one random window of this many
            steps (TS2Vec's ``fit``, ts2vec.py L109-111, ``max_train_length``, 3000 by
            default; its sections are 1-2x that long); ``None`` keeps whole batches.

    Series are cropped on the padded time line, as in TS2Vec; windows that reach into a
    shorter series' padding hold ``NaN`` there, which the encoder and the loss mask out.
    """

    n_views = 2

    def __init__(self, min_length: int = 2, mask_p: float = 0.5,
                 max_length: int | None = None) -> None:
        if min_length < 1:
            raise ValueError(f"min_length must be >= 1, got {min_length}")
        if max_length is not None and max_length < min_length:
            raise ValueError(f"max_length must be >= min_length ({min_length}) or None, got "
                             f"{max_length}")
        self.max_length = max_length
        if not 0.0 <= mask_p < 1.0:
            raise ValueError(f"mask_p must be in [0, 1), got {mask_p}")
        self.min_length, self.mask_p = min_length, mask_p
        self._seed: int | None = None
        self._cpu: torch.Generator | None = None
        self._dev: torch.Generator | None = None

    def manual_seed(self, seed: int) -> None:
        """Seed the crops and masks (applied at the next call)."""
        self._seed, self._cpu, self._dev = seed, None, None

    def _generators(self, device: torch.device) -> tuple[torch.Generator | None, ...]:
        if self._seed is None:
            return None, None
        if self._cpu is None or self._dev is None or self._dev.device != device:
            self._cpu = torch.Generator().manual_seed(self._seed)
            self._dev = torch.Generator(device=device).manual_seed(self._seed + 1)
        return self._cpu, self._dev

    def __call__(self, x: Tensor) -> list[AlignedView]:
        x = check_series(x, "TS2Vec's overlapping crops")
        n, t = x.shape[0], x.shape[-1]
        if t < self.min_length:  # the padded length: checking it needs no device sync
            raise ValueError(f"series of {t} steps are shorter than the crop length "
                             f"{self.min_length}; lower min_length or use longer series")
        cpu, dev = self._generators(x.device)
        if self.max_length is not None and t > self.max_length:
            offset = _randint(0, t - self.max_length + 1, cpu)  # TS2Vec's window_offset
            x, t = x[..., offset:offset + self.max_length], self.max_length
        crop_l = _randint(self.min_length, t + 1, cpu)  # overlap length (TS2Vec's crop_l)
        left = _randint(0, t - crop_l + 1, cpu)  # overlap [left, right)
        right = left + crop_l
        e_left = _randint(0, left + 1, cpu)  # view 1: [e_left, right)
        e_right = _randint(right, t + 1, cpu)  # view 2: [left, e_right)
        shift = torch.randint(-e_left, t - e_right + 1, (n,), generator=dev, device=x.device)
        x1 = take_windows(x, shift + e_left, right - e_left)
        x2 = take_windows(x, shift + left, e_right - left)
        return [AlignedView(x1, left - e_left, crop_l, self._mask(x1, dev)),
                AlignedView(x2, 0, crop_l, self._mask(x2, dev))]

    def _mask(self, x: Tensor, generator: torch.Generator | None) -> Tensor | None:
        if self.mask_p == 0.0:
            return None
        shape = (x.shape[0], x.shape[-1])
        return torch.rand(shape, generator=generator, device=x.device) >= self.mask_p

    def __repr__(self) -> str:
        return (f"OverlapCrops(min_length={self.min_length}, mask_p={self.mask_p}, "
                f"max_length={self.max_length})")
