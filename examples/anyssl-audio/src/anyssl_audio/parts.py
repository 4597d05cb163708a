"""The audio encoder and augmentations.

An augmentation takes a whole batch ``B x 1 x T`` on its device and draws every random parameter
per clip from ``generator`` (a ``torch.Generator`` on that device, seeded by the trainer each
step), so views are made on the device, for the batch at once, reproducibly. Its ``repr`` is its
spec (``gain(low=0.5,high=1.5)``), so a run's ``config.yaml`` records the views it used.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Conv1dEncoder", "Gain", "Noise", "Shift"]


class Conv1dEncoder(nn.Module):
    """Three strided 1-d convolutions, then the mean over time: ``B x C x T -> B x out_dim``."""

    def __init__(self, in_channels: int, out_dim: int = 64, width: int = 32) -> None:
        super().__init__()
        self.out_dim = out_dim  # the core reads it to size the projection head
        self.net = nn.Sequential(
            nn.Conv1d(in_channels, width, 9, stride=4, padding=4), nn.BatchNorm1d(width),
            nn.ReLU(), nn.Conv1d(width, width, 9, stride=4, padding=4), nn.BatchNorm1d(width),
            nn.ReLU(), nn.Conv1d(width, out_dim, 9, stride=2, padding=4),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).mean(dim=-1)  # B x out_dim x T' -> B x out_dim


class Gain:
    """Multiply each clip by a loudness factor drawn from U(low, high)."""

    def __init__(self, low: float = 0.5, high: float = 1.5) -> None:
        if not 0 <= low <= high:
            raise ValueError(f"gain needs 0 <= low <= high, got {low}-{high}")
        self.low, self.high = float(low), float(high)

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        u = torch.rand(x.shape[0], 1, 1, generator=generator, device=x.device)
        return x * (self.low + (self.high - self.low) * u)

    def __repr__(self) -> str:
        return f"gain(low={self.low},high={self.high})"


class Noise:
    """Add white noise of standard deviation ``sigma``."""

    def __init__(self, sigma: float = 0.05) -> None:
        if sigma < 0:
            raise ValueError(f"noise sigma must be >= 0, got {sigma}")
        self.sigma = float(sigma)

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return x + self.sigma * torch.randn(x.shape, generator=generator, device=x.device)

    def __repr__(self) -> str:
        return f"noise(sigma={self.sigma})"


class Shift:
    """Rotate each clip in time by up to ``max`` of its padded length (a per-clip offset)."""

    def __init__(self, max: float = 0.25) -> None:
        if not 0 <= max <= 1:
            raise ValueError(f"shift max is a fraction of the clip in [0, 1], got {max}")
        self.max = float(max)

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        b, _, t = x.shape
        offset = (torch.rand(b, 1, generator=generator, device=x.device) * self.max * t).long()
        index = (torch.arange(t, device=x.device) - offset) % t  # B x T
        return x.gather(-1, index.unsqueeze(1).expand_as(x))

    def __repr__(self) -> str:
        return f"shift(max={self.max})"
