"""Short spans: the local views of text for multi-crop (DINO, SwAV).

Multi-crop's local views are small crops of the input (Caron et al. 2020, sec. 3.2); for a
caption the analogue is a contiguous span of its tokens, as the random spans of span-based
sentence embeddings are (Giorgi et al. 2021, "DeCLUTR").
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from anyssl.modalities.text.augment import check_tokens
from anyssl.modalities.text.tokenizer import END, PAD, START
from anyssl.registry import AUGMENTATIONS

__all__ = ["Span"]


def _share_range(scale: Any) -> tuple[float, float]:
    lo, hi = (scale, scale) if isinstance(scale, (int, float)) else tuple(scale)
    if isinstance(lo, bool) or not 0.0 <= float(lo) <= float(hi) <= 1.0 or float(hi) <= 0:
        raise ValueError(f"span scale must be a share lo-hi with 0 <= lo <= hi <= 1 and hi > 0, "
                         f"got {scale!r}")
    return float(lo), float(hi)


@AUGMENTATIONS.register("span", scope="text")
class Span:
    """A contiguous span of a share ~ U(``scale``) of each caption's text tokens (changes ``L``).

    Each caption draws its share and the span's start; the span (at least one text token) is
    written as ``START span END PAD...`` in ``ceil(hi * (L - 2)) + 2`` tokens, a length fixed by
    the input's shape (no size read back from the device). ``scale=s`` alone means ``s-s``. Use
    it after ``sample_caption`` and before token dropout / masking, outside ``p=`` / ``|``.
    Shape: ``B x L`` -> ``B x min(L, ceil(hi * (L - 2)) + 2)``.
    """

    def __init__(self, scale: float | tuple[float, float] = (0.25, 1.0)) -> None:
        self.scale = _share_range(scale)

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        x = check_tokens(x, "span", dims=(2,))
        b, length = x.shape
        dev, (lo, hi) = x.device, self.scale
        out_len = min(length, math.ceil(hi * max(length - 2, 0)) + 2)
        n_text = ((x == END).long().argmax(dim=1) - 1).clamp_min(0)  # B: tokens between
        share = lo + (hi - lo) * torch.rand(b, generator=generator, device=dev,
                                            dtype=torch.float64)
        width = (share * n_text).round().long().clamp(min=1).minimum(n_text)  # B
        frac = torch.rand(b, generator=generator, device=dev, dtype=torch.float64)
        start = 1 + (frac * (n_text - width + 1)).floor().long().clamp_min(0)  # B
        j = torch.arange(out_len - 1, device=dev)  # position after START
        idx = (start.unsqueeze(1) + j).clamp(max=length - 1)  # B x (out_len - 1)
        body = x.gather(1, idx)
        w = width.unsqueeze(1)
        body = torch.where(j < w, body, torch.where(j == w, END, PAD))
        return torch.cat([torch.full((b, 1), START, dtype=x.dtype, device=dev), body], dim=1)

    def __repr__(self) -> str:
        lo, hi = self.scale
        return f"span(scale={lo!r})" if lo == hi else f"span(scale={lo!r}-{hi!r})"
