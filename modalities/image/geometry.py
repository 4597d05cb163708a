"""Geometric image augmentations: random resized crop (with a fused horizontal flip) and flip.

The crop samples boxes the way torchvision's ``RandomResizedCrop`` does (Szegedy et al. 2015,
"Going deeper with convolutions"; the crop of SimCLR, MoCo and BYOL) but for a whole batch at
once on its device. It resamples every sample with one ``affine_grid`` + ``grid_sample`` on an
accelerator and for small outputs; on the CPU, outputs of ``LOOP_MIN_PIXELS`` or more go sample
by sample through ``interpolate``, torchvision's own resize (2-4x faster at 224 px: only the
crop is converted to float and no sampling grid is built).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from anyssl.modalities.image.common import as_range, check_batch, fmt_range, to_float_batch
from anyssl.registry import AUGMENTATIONS
from anyssl.views import uniform

__all__ = ["LOOP_MIN_PIXELS", "CenterCrop", "Flip", "RandomResizedCrop", "hflip",
           "resized_crop_flip", "sample_crop_boxes"]

#: On the CPU, crops to at least this many output pixels are resized one sample at a time.
LOOP_MIN_PIXELS = 40 * 40


def sample_crop_boxes(
    n: int, height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float],
    generator: torch.Generator | None, device: torch.device, attempts: int = 10,
) -> Tensor:
    """``n`` crop boxes ``(top, left, height, width)`` in pixels, torchvision's sampling.

    Each sample draws ``attempts`` candidates (area fraction ~ U(scale), log aspect ratio ~
    U(log ratio)), keeps the first that fits and falls back to torchvision's center crop.

    Shape:
        returns ``n x 4`` float32 (integer-valued).
    """
    area = float(height * width)
    frac = uniform(scale[0], scale[1], (n, attempts), generator, device)
    aspect = torch.exp(uniform(math.log(ratio[0]), math.log(ratio[1]), (n, attempts), generator,
                               device))
    w = torch.round(torch.sqrt(area * frac * aspect))  # n x attempts
    h = torch.round(torch.sqrt(area * frac / aspect))
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = ok.to(torch.uint8).argmax(dim=1, keepdim=True)  # index of the first valid candidate
    w, h, found = w.gather(1, first)[:, 0], h.gather(1, first)[:, 0], ok.any(dim=1)
    fh, fw = _center_fallback(height, width, ratio)
    h = torch.where(found, h, torch.full_like(h, fh))
    w = torch.where(found, w, torch.full_like(w, fw))
    top = torch.floor(torch.rand(n, generator=generator, device=device) * (height - h + 1))
    left = torch.floor(torch.rand(n, generator=generator, device=device) * (width - w + 1))
    top = torch.where(found, top, torch.full_like(top, (height - fh) // 2))
    left = torch.where(found, left, torch.full_like(left, (width - fw) // 2))
    return torch.stack([top, left, h, w], dim=1)


def _center_fallback(height: int, width: int, ratio: tuple[float, float]) -> tuple[int, int]:
    """torchvision's fallback box size: the whole image clipped to the ratio range."""
    in_ratio = width / height
    if in_ratio < ratio[0]:
        return round(width / ratio[0]), width
    if in_ratio > ratio[1]:
        return height, round(height * ratio[1])
    return height, width


def resized_crop_flip(
    x: Tensor, boxes: Tensor, flips: Tensor, size: tuple[int, int] | int
) -> Tensor:
    """Crop ``boxes`` out of ``x``, mirror where ``flips``, resize to ``size``, in one resampling.

    Bilinear, matching ``torchvision ... resized_crop(..., antialias=False)`` (then ``hflip``):
    sample coordinates are clamped to each box, so no pixel outside it leaks in. uint8 input is
    scaled to [0, 1].

    Shape:
        x: ``B x C x H x W`` uint8 or float; boxes: ``B x 4`` (top, left, height, width) in
        pixels; flips: ``B`` bool; returns ``B x C x size x size`` float32 (or ``size = (h, w)``).
    """
    out_h, out_w = (size, size) if isinstance(size, int) else size
    if x.device.type == "cpu" and out_h * out_w >= LOOP_MIN_PIXELS:
        return _crop_each(x, boxes, flips, out_h, out_w)
    return _crop_grid(to_float_batch(x), boxes, flips, out_h, out_w)


def _crop_each(x: Tensor, boxes: Tensor, flips: Tensor, out_h: int, out_w: int) -> Tensor:
    """CPU path: per sample, slice the box, mirror it, convert it to float and ``interpolate``.

    Mirroring the crop before the (mirror-symmetric) resize equals mirroring after it.
    """
    out = torch.empty(x.shape[0], x.shape[1], out_h, out_w, dtype=torch.float32)
    rows = zip(boxes.round().to(torch.int64).tolist(), flips.tolist(), strict=True)
    for i, ((top, left, h, w), flip) in enumerate(rows):
        crop = x[i:i + 1, :, top:top + h, left:left + w]  # 1 x C x h x w, a view
        crop = crop.flip(-1) if flip else crop
        crop = crop.float().div_(255.0) if x.dtype == torch.uint8 else crop.float()
        # interpolate + copy: faster than upsample_bilinear2d.out, which faults each fresh
        # output page in twice
        out[i:i + 1] = F.interpolate(crop, (out_h, out_w), mode="bilinear", align_corners=False)
    return out


def _crop_grid(x: Tensor, boxes: Tensor, flips: Tensor, out_h: int, out_w: int) -> Tensor:
    """Batched path: one ``affine_grid`` + ``grid_sample`` over the float batch ``x``."""
    b, c, height, width = x.shape
    boxes = boxes.to(x)
    top, left, bh, bw = boxes.unbind(dim=1)  # each B
    sign = 1.0 - 2.0 * flips.to(x)  # -1 mirrors the x axis
    theta = torch.zeros(b, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = sign * bw / width
    theta[:, 0, 2] = (2.0 * left + bw) / width - 1.0  # box center, normalized
    theta[:, 1, 1] = bh / height
    theta[:, 1, 2] = (2.0 * top + bh) / height - 1.0
    grid = F.affine_grid(theta, [b, c, out_h, out_w], align_corners=False)  # B x h x w x 2
    # clamp to the centers of the box's first and last pixels (as interpolate does at edges)
    lo = torch.stack([(2.0 * left + 1.0) / width, (2.0 * top + 1.0) / height], dim=1) - 1.0
    hi = torch.stack([(2.0 * (left + bw) - 1.0) / width, (2.0 * (top + bh) - 1.0) / height],
                     dim=1) - 1.0
    grid = torch.clamp(grid, lo.view(b, 1, 1, 2), hi.view(b, 1, 1, 2))
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def hflip(x: Tensor, flips: Tensor) -> Tensor:
    """Mirror the samples where ``flips`` is true.

    Shape:
        x: ``B x C x H x W``; flips: ``B`` bool; returns the shape of ``x``.
    """
    return torch.where(flips.view(-1, 1, 1, 1), x.flip(-1), x)


def _size(size: Any) -> tuple[int, int]:
    if isinstance(size, (int, float)) and not isinstance(size, bool) and int(size) == size:
        return int(size), int(size)
    if isinstance(size, Sequence) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise ValueError(f"size must be an int or (height, width), got {size!r}")


def _prob(p: Any, name: str) -> float:
    if not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(p)


@AUGMENTATIONS.register("crop", scope="image")
class RandomResizedCrop:
    """Random resized crop to ``size x size`` with an optional fused horizontal flip.

    torchvision's box sampling per sample (area fraction ~ U(``scale``), log aspect ratio ~
    U(log ``ratio``), 10 tries, then center crop); ``flip`` is the probability of mirroring.
    ``scale=s`` alone means ``s-1.0``; ``ratio=r`` alone means ``min(r,1/r)-max(r,1/r)``.

    Shape:
        ``B x C x H x W`` uint8 or float -> ``B x C x size x size`` float32 in [0, 1].
    """

    def __init__(
        self,
        size: int | Sequence[int],
        scale: tuple[float, float] | float = (0.08, 1.0),
        ratio: tuple[float, float] | float = (3 / 4, 4 / 3),
        flip: float = 0.0,
    ) -> None:
        self.size = _size(size)
        if min(self.size) <= 0:
            raise ValueError(f"crop size must be positive, got {size!r}")
        self.scale = as_range(scale, "scale", default_hi=1.0)
        if self.scale[0] <= 0:
            raise ValueError(f"scale must be > 0, got {fmt_range(self.scale)}")
        if isinstance(ratio, (int, float)):
            ratio = (min(ratio, 1 / ratio), max(ratio, 1 / ratio))
        self.ratio = as_range(ratio, "ratio")
        if self.ratio[0] <= 0:
            raise ValueError(f"ratio must be > 0, got {fmt_range(self.ratio)}")
        self.flip = _prob(flip, "flip")

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        b, _, height, width = check_batch(x).shape
        boxes = sample_crop_boxes(b, height, width, self.scale, self.ratio, generator, x.device)
        flips = torch.rand(b, generator=generator, device=x.device) < self.flip
        return resized_crop_flip(x, boxes, flips, self.size)

    def __repr__(self) -> str:
        size = self.size[0] if self.size[0] == self.size[1] else f"{self.size[0]}-{self.size[1]}"
        return (f"crop(size={size},scale={fmt_range(self.scale)},ratio={fmt_range(self.ratio)},"
                f"flip={self.flip!r})")


@AUGMENTATIONS.register("flip", scope="image")
class Flip:
    """Horizontal flip of each sample with probability ``p`` (no resampling).

    Shape:
        ``B x C x H x W`` uint8 or float -> same shape, float32 in [0, 1].
    """

    def __init__(self, p: float = 0.5) -> None:
        self.p = _prob(p, "flip probability p")

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        x = to_float_batch(x)
        return hflip(x, torch.rand(x.shape[0], generator=generator, device=x.device) < self.p)

    def __repr__(self) -> str:
        return "flip" if self.p == 0.5 else f"flip(p={self.p!r})"


@AUGMENTATIONS.register("center_crop", scope="image")
class CenterCrop:
    """The centre ``size x size`` square of every sample (no resampling, no randomness): what
    evaluation sees of images stored larger than the views (ImageNet's centre crop).

    Shape:
        ``B x C x H x W`` uint8 or float (H, W >= size) -> ``B x C x size x size`` float32 in
        [0, 1] (only the crop is converted).
    """

    def __init__(self, size: int) -> None:
        self.size = _size(size)
        if min(self.size) <= 0:
            raise ValueError(f"center_crop size must be positive, got {size!r}")

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        h, w = check_batch(x).shape[-2:]
        ch, cw = self.size
        if ch > h or cw > w:
            raise ValueError(f"center_crop of {ch}x{cw} needs images at least that large, got "
                             f"{h}x{w}")
        top, left = round((h - ch) / 2.0), round((w - cw) / 2.0)  # torchvision's rounding
        return to_float_batch(x[..., top:top + ch, left:left + cw])

    def __repr__(self) -> str:
        return f"center_crop(size={self.size[0]})"
