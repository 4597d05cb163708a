"""Color augmentations: jitter (brightness, contrast, saturation, hue), grayscale, solarize.

Per-sample factors. The per-op functions (``adjust_brightness`` ... ``adjust_hue``) follow
torchvision (``torchvision.transforms.v2.functional``) exactly and are kept as the reference.
The registered ``jitter`` runs the fused form instead (``jitter_affine`` + ``apply_color_affine``):
brightness, contrast and saturation are affine maps of the RGB vector, and hue becomes one too
as a rotation about the luma axis in YIQ space (what NVIDIA DALI's ``hsv`` operator does), so
the four ops in their random order compose into one per-sample ``3 x 3`` matrix and offset,
applied in a single pass and clamped once. Color jitter as in SimCLR (Chen et al. 2020,
Appendix A); solarize as in BYOL (Grill et al. 2020, Table 6).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from anyssl.modalities.image.common import (
    as_range,
    check_channels,
    fmt_range,
    per_sample,
    to_float_batch,
)
from anyssl.registry import AUGMENTATIONS
from anyssl.views import uniform

__all__ = [
    "LUMA", "ColorJitter", "Grayscale", "Solarize", "adjust_brightness", "adjust_contrast",
    "adjust_hue", "adjust_saturation", "apply_color_affine", "hsv_to_rgb", "hue_matrices",
    "jitter_affine", "order_from_state", "rgb_to_grayscale", "rgb_to_hsv", "solarize",
]

#: ITU-R 601-2 luma weights of R, G, B (torchvision's ``rgb_to_grayscale``).
LUMA = (0.2989, 0.587, 0.114)
# RGB -> YIQ (FCC NTSC), its Y row set to LUMA so that a hue rotation keeps the gray level.
_YIQ = torch.tensor([LUMA, (0.596, -0.274, -0.322), (0.211, -0.523, 0.312)], dtype=torch.float64)


@functools.lru_cache(maxsize=16)
def _constants(device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """LUMA, YIQ and its inverse on ``device``, copied there once (no host sync per call)."""
    yiq = _YIQ.to(device=device, dtype=dtype)
    return yiq[0].clone(), yiq, torch.linalg.inv(_YIQ).to(device=device, dtype=dtype)


def _blend(a: Tensor, b: Tensor, factors: Tensor) -> Tensor:
    """``factor * a + (1 - factor) * b`` clamped to [0, 1] (torchvision's ``_blend``)."""
    f = per_sample(factors, a)
    return (f * a + (1.0 - f) * b).clamp_(0.0, 1.0)


def rgb_to_grayscale(x: Tensor, num_output_channels: int = 1) -> Tensor:
    """ITU-R 601-2 luma ``0.2989 R + 0.587 G + 0.114 B``; 1-channel input is returned as is.

    One weighted sum over the channels; for ``num_output_channels=3`` the result is a broadcast
    view (``expand``, as torchvision returns it): call ``.contiguous()`` before writing in place.

    Shape:
        x: ``B x C x H x W`` (C = 1 or 3); returns ``B x num_output_channels x H x W``.
    """
    if check_channels(x, "grayscale") == 1:
        gray = x
    else:
        r, g, b = x.unbind(dim=1)
        gray = r.mul(LUMA[0]).add_(g, alpha=LUMA[1]).add_(b, alpha=LUMA[2]).unsqueeze(1)
    return gray.expand(-1, num_output_channels, -1, -1)


def adjust_brightness(x: Tensor, factors: Tensor | float) -> Tensor:
    """Multiply by ``factors`` (``B``), clamp to [0, 1]."""
    return _blend(x, torch.zeros_like(x), torch.as_tensor(factors))


def adjust_contrast(x: Tensor, factors: Tensor | float) -> Tensor:
    """Blend with each image's mean gray level (``B`` factors; 0 gives a flat gray image)."""
    mean = rgb_to_grayscale(x).mean(dim=(1, 2, 3), keepdim=True)  # B x 1 x 1 x 1
    return _blend(x, mean, torch.as_tensor(factors))


def adjust_saturation(x: Tensor, factors: Tensor | float) -> Tensor:
    """Blend with the grayscale image (``B`` factors); 1-channel images are returned as is."""
    if check_channels(x, "saturation") == 1:
        return x
    return _blend(x, rgb_to_grayscale(x), torch.as_tensor(factors))


def rgb_to_hsv(x: Tensor) -> Tensor:
    """RGB in [0, 1] to HSV in [0, 1] (Pillow's and torchvision's formulas).

    Shape:
        x: ``B x 3 x H x W``; returns ``B x 3 x H x W`` (h, s, v).
    """
    r, g, b = x.unbind(dim=1)
    maxc, minc = x.amax(dim=1), x.amin(dim=1)
    flat = maxc == minc
    span = maxc - minc
    s = span / torch.where(flat, torch.ones_like(maxc), maxc)
    span = torch.where(flat, torch.ones_like(span), span)
    rc, gc, bc = (maxc - r) / span, (maxc - g) / span, (maxc - b) / span
    is_r, is_g = maxc == r, (maxc == g) & (maxc != r)
    is_b = ~is_r & ~is_g
    h = is_r * (bc - gc) + is_g * (2.0 + rc - bc) + is_b * (4.0 + gc - rc)
    h = torch.where(flat, torch.zeros_like(h), h)
    h = (h / 6.0 + 1.0).fmod(1.0)
    return torch.stack([h, s, maxc], dim=1)


def hsv_to_rgb(x: Tensor) -> Tensor:
    """HSV in [0, 1] to RGB in [0, 1], the inverse of ``rgb_to_hsv``.

    Uses the closed form ``c_n = v - v s clamp(min(k, 4 - k), 0, 1)`` with ``k = (n + 6h) mod 6``
    and ``n = 5, 3, 1`` for R, G, B: the same values as the six-sector table of Pillow and
    torchvision, without materializing it.

    Shape:
        x: ``B x 3 x H x W``; returns ``B x 3 x H x W``.
    """
    h, s, v = x[:, :1], x[:, 1:2], x[:, 2:]  # each B x 1 x H x W
    n = (5.0 - 2.0 * torch.arange(3, dtype=x.dtype, device=x.device)).view(1, 3, 1, 1)  # 5,3,1
    k = (n + 6.0 * h).remainder(6.0)  # B x 3 x H x W
    return v - v * s * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)


def adjust_hue(x: Tensor, factors: Tensor | float) -> Tensor:
    """Rotate the hue by ``factors`` (``B``, in [-0.5, 0.5]); 1-channel images as is."""
    if check_channels(x, "hue") == 1:
        return x
    hsv = rgb_to_hsv(x)
    h = (hsv[:, :1] + per_sample(factors, x)).remainder(1.0)
    return hsv_to_rgb(torch.cat([h, hsv[:, 1:]], dim=1)).clamp_(0.0, 1.0)


def solarize(x: Tensor, threshold: float) -> Tensor:
    """Invert the pixels at or above ``threshold`` (``x >= t -> 1 - x``)."""
    return torch.where(x >= threshold, 1.0 - x, x)


def hue_matrices(shifts: Tensor) -> Tensor:
    """RGB matrices that rotate the hue by ``shifts`` turns about the luma axis, in YIQ space.

    ``M = YIQ^-1 R(-2 pi shift) YIQ`` with ``R`` a rotation of the (I, Q) chroma plane (NVIDIA
    DALI's ``hsv`` operator): a linear stand-in for HSV's hue shift that keeps the luma ``Y``
    and turns the same way (red -> green -> blue as the shift grows); a whole turn is identity.

    Shape:
        shifts: ``B``; returns ``B x 3 x 3``.
    """
    theta = -2.0 * math.pi * shifts
    cos, sin = torch.cos(theta), torch.sin(theta)
    one, zero = torch.ones_like(cos), torch.zeros_like(cos)
    rot = torch.stack([one, zero, zero, zero, cos, -sin, zero, sin, cos], dim=1).view(-1, 3, 3)
    _, yiq, inv = _constants(shifts.device, shifts.dtype)
    return inv @ rot @ yiq  # B x 3 x 3


def jitter_affine(
    factors: Tensor, order: Sequence[int], channels: int, means: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The jitter ops ``order`` (0 brightness, 1 contrast, 2 saturation, 3 hue) as one affine map.

    Each op maps the current image ``y = M x + o`` to ``A y + t``: brightness ``A = b I``;
    contrast ``A = c I``, ``t = (1 - c) mean_gray(y)`` where ``mean_gray(y) = w^T (M mu + o)``
    comes from the original channel means ``mu`` (``w``: ``LUMA``, or 1 for one channel);
    saturation ``A = s I + (1 - s) 1 w^T`` (blend with gray); hue: ``hue_matrices``. Unlike
    torchvision there is no clamp between ops. One-channel images skip saturation and hue.

    Shape:
        factors: ``B x 4``; means: ``B x C`` (needed with contrast); returns ``M``:
        ``B x C x C`` and ``o``: ``B x C``.
    """
    b = factors.shape[0]
    eye = torch.eye(channels, dtype=factors.dtype, device=factors.device)
    w = _constants(factors.device, factors.dtype)[0] if channels == 3 else factors.new_ones(1)
    m, o = eye.expand(b, channels, channels), factors.new_zeros(b, channels)
    for k in order:
        f = factors[:, k]
        if k == 0:
            m, o = f.view(b, 1, 1) * m, f.view(b, 1) * o
        elif k == 1:
            if means is None:
                raise ValueError("jitter_affine needs the channel means for contrast")
            gray = ((m @ means.unsqueeze(2)).squeeze(2) + o) @ w  # B: mean gray of the image now
            m, o = f.view(b, 1, 1) * m, f.view(b, 1) * o + ((1.0 - f) * gray).view(b, 1)
        elif channels == 3:
            a = (hue_matrices(f) if k == 3 else f.view(b, 1, 1) * eye
                 + (1.0 - f).view(b, 1, 1) * w.expand(3, 3))  # B x 3 x 3
            m, o = a @ m, (a @ o.unsqueeze(2)).squeeze(2)
    return m, o


def apply_color_affine(x: Tensor, m: Tensor, o: Tensor) -> Tensor:
    """``clamp(M x + o, 0, 1)`` at every pixel, one batched matrix product.

    Shape:
        x: ``B x C x H x W`` float; m: ``B x C x C``; o: ``B x C``; returns the shape of ``x``.
    """
    b, c = x.shape[:2]
    out = torch.baddbmm(o.unsqueeze(2), m, x.reshape(b, c, -1))  # B x C x HW
    return out.view(x.shape).clamp_(0.0, 1.0)


def _factor_range(value: Any, name: str, center: float, bound: float | None) -> tuple[float, float]:
    """torchvision's ColorJitter ranges: ``v`` -> ``(max(0, center - v), center + v)``."""
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"jitter {name} must be >= 0, got {value}")
        lo, hi = center - float(value), center + float(value)
        lo = max(lo, 0.0) if bound is None else lo
    else:
        lo, hi = as_range(value, name)
    if bound is not None and not -bound <= lo <= hi <= bound:
        raise ValueError(f"jitter {name} must lie in [-{bound}, {bound}], got {lo}-{hi}")
    if bound is None and lo < 0:
        raise ValueError(f"jitter {name} factors must be >= 0, got {lo}-{hi}")
    return lo, hi


def _op_order(generator: torch.Generator | None) -> list[int]:
    """A random order of the four jitter ops, one per call (per batch).

    On a CPU (or no) generator this is ``randperm``; for a device generator it is derived from
    the generator's host-side state (seed and offset), so no value is read back from the device.
    """
    if generator is None or generator.device.type == "cpu":
        return torch.randperm(4, generator=generator).tolist()
    return order_from_state(generator.get_state())


def order_from_state(state: Tensor) -> list[int]:
    """A permutation of 0..3 determined by a generator state (a CPU byte tensor)."""
    digest = hashlib.blake2b(state.numpy().tobytes(), digest_size=8).digest()
    cpu = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
    return torch.randperm(4, generator=cpu).tolist()


@AUGMENTATIONS.register("jitter", scope="image")
class ColorJitter:
    """Color jitter with per-sample factors, SimCLR's ``strength`` convention.

    Unless given, brightness = contrast = saturation = 0.8 * strength and hue = 0.2 * strength
    (Chen et al. 2020, Appendix A). A number ``v`` means factors ~ U(max(0, 1-v), 1+v) (hue:
    shifts ~ U(-v, v)), a range ``lo-hi`` is used as is, 0 turns the op off. The four ops run in
    a random order drawn once per batch (torchvision draws one per image); 1-channel images
    skip saturation and hue. Fused (see ``jitter_affine``): one pass over the pixels, clamped
    once at the end rather than after every op, and hue rotated in YIQ rather than HSV.

    Shape:
        ``B x C x H x W`` uint8 or float (C = 1 or 3) -> same shape, float32 in [0, 1].
    """

    def __init__(
        self,
        strength: float = 1.0,
        brightness: Any = None,
        contrast: Any = None,
        saturation: Any = None,
        hue: Any = None,
    ) -> None:
        if strength < 0:
            raise ValueError(f"jitter strength must be >= 0, got {strength}")
        s = float(strength)
        given = {"brightness": brightness, "contrast": contrast, "saturation": saturation,
                 "hue": hue}
        self._spec = {"strength": s, **{k: v for k, v in given.items() if v is not None}}
        self.brightness = _factor_range(0.8 * s if brightness is None else brightness,
                                        "brightness", 1.0, None)
        self.contrast = _factor_range(0.8 * s if contrast is None else contrast,
                                      "contrast", 1.0, None)
        self.saturation = _factor_range(0.8 * s if saturation is None else saturation,
                                        "saturation", 1.0, None)
        self.hue = _factor_range(0.2 * s if hue is None else hue, "hue", 0.0, 0.5)

    def sample_factors(self, n: int, generator: torch.Generator | None,
                       device: torch.device) -> Tensor:
        """``n x 4`` factors (brightness, contrast, saturation, hue), one row per sample."""
        ranges = (self.brightness, self.contrast, self.saturation, self.hue)
        return torch.stack([uniform(lo, hi, n, generator, device) for lo, hi in ranges], dim=1)

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        x = to_float_batch(x)
        c = check_channels(x, "jitter")
        factors = self.sample_factors(x.shape[0], generator, x.device)  # B x 4
        identity = (1.0, 1.0, 1.0, 0.0)
        ranges = (self.brightness, self.contrast, self.saturation, self.hue)
        order = [k for k in _op_order(generator)
                 if ranges[k] != (identity[k], identity[k]) and (c == 3 or k < 2)]
        if not order:
            return x
        means = x.mean(dim=(2, 3)) if 1 in order else None  # B x C
        m, o = jitter_affine(factors, order, c, means)
        return apply_color_affine(x, m, o)

    def __repr__(self) -> str:
        args = (f"{k}={fmt_range((v[0], v[1])) if isinstance(v, (tuple, list)) else repr(v)}"
                for k, v in self._spec.items())
        return "jitter(" + ",".join(args) + ")"


@AUGMENTATIONS.register("grayscale", scope="image")
class Grayscale:
    """Convert to ITU-R 601-2 luma, keeping the channel count (use ``p=`` for RandomGrayscale).

    Shape:
        ``B x C x H x W`` uint8 or float (C = 1 or 3) -> same shape, float32 in [0, 1].
    """

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        x = to_float_batch(x)
        return rgb_to_grayscale(x, num_output_channels=x.shape[1])

    def __repr__(self) -> str:
        return "grayscale"


@AUGMENTATIONS.register("solarize", scope="image")
class Solarize:
    """Invert pixels >= ``threshold`` (in [0, 1]); BYOL uses it with p=0.2 on its second view.

    Shape:
        ``B x C x H x W`` uint8 or float -> same shape, float32 in [0, 1].
    """

    def __init__(self, threshold: float = 0.5) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"solarize threshold must be in [0, 1], got {threshold}")
        self.threshold = float(threshold)

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        return solarize(to_float_batch(x), self.threshold)

    def __repr__(self) -> str:
        return f"solarize(threshold={self.threshold!r})"
