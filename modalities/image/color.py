"""Color augmentations: jitter (brightness, contrast, saturation, hue), grayscale, solarize.

Per-sample factors. The per-op functions (``adjust_brightness`` ... ``adjust_hue``) follow
torchvision (``torchvision.transforms.v2.functional``) exactly and are kept as the reference.
The registered ``jitter`` runs the fused form instead (``jitter_affine`` + ``apply_color_affine``):
brightness, contrast and saturation are affine maps of the RGB vector, and hue becomes one too
as a rotation about the luma axis in YIQ space (what NVIDIA DALI's ``hsv`` operator does), so
the four ops, in a random order drawn per sample (as torchvision and SimCLR do), compose into
one per-sample ``3 x 3`` matrix and offset, applied in a single pass and clamped once. Color
jitter as in SimCLR (Chen et al. 2020, Appendix A); solarize as in BYOL (Grill et al. 2020,
Table 6).
"""

from __future__ import annotations

import functools
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
    "jitter_affine", "rgb_to_grayscale", "rgb_to_hsv", "solarize",
]

#: ITU-R 601-2 luma weights of R, G, B (torchvision's ``rgb_to_grayscale``).
LUMA = (0.2989, 0.587, 0.114)
# RGB -> YIQ (FCC NTSC), its Y row set to LUMA so that a hue rotation keeps the gray level.
_YIQ = torch.tensor([LUMA, (0.596, -0.274, -0.322), (0.211, -0.523, 0.312)], dtype=torch.float64)


@functools.lru_cache(maxsize=16)
def _constants(device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """LUMA and the hue-rotation parts ``P``, ``Q`` on ``device``, copied there once (no host
    sync per call): ``YIQ^-1 R(theta) YIQ = I + (cos theta - 1) P + sin theta Q``."""
    inv = torch.linalg.inv(_YIQ)
    chroma = torch.diag(torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64))  # the (I, Q) plane
    turn = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    p, q = inv @ chroma @ _YIQ, inv @ turn @ _YIQ  # 3 x 3 each
    luma = _YIQ[0].to(device=device, dtype=dtype)
    return luma, p.to(device=device, dtype=dtype), q.to(device=device, dtype=dtype)


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
    Computed as ``I + (cos - 1) P + sin Q`` (see ``_constants``), exactly ``I`` for a zero shift.

    Shape:
        shifts: ``B``; returns ``B x 3 x 3``.
    """
    theta = -2.0 * math.pi * shifts
    _, p, q = _constants(shifts.device, shifts.dtype)
    eye = torch.eye(3, dtype=shifts.dtype, device=shifts.device)
    return eye + (torch.cos(theta) - 1.0).view(-1, 1, 1) * p + torch.sin(theta).view(-1, 1, 1) * q


def _op_maps(factors: Tensor, channels: int) -> tuple[Tensor, Tensor]:
    """Each jitter op as ``y -> A y + u mean_gray(y) 1``: its matrix ``A`` and gray weight ``u``.

    Brightness ``b I``; contrast ``c I`` with ``u = 1 - c``; saturation ``s I + (1 - s) 1 w^T``;
    hue ``hue_matrices``; ``u = 0`` but for contrast. Saturation and hue are the identity on
    one channel.

    Shape:
        factors: ``B x 4``; returns ``B x 4 x C x C`` and ``B x 4``.
    """
    b = factors.shape[0]
    bright, contrast, sat = (f.view(b, 1, 1) for f in factors[:, :3].unbind(dim=1))  # B x 1 x 1
    eye = torch.eye(channels, dtype=factors.dtype, device=factors.device)
    if channels == 3:
        w = _constants(factors.device, factors.dtype)[0]
        sat_m = sat * eye + (1.0 - sat) * w.expand(3, 3)  # B x 3 x 3: rows all w^T
        hue_m = hue_matrices(factors[:, 3])  # B x 3 x 3
    else:
        sat_m = hue_m = eye.expand(b, 1, 1)
    maps = torch.stack([bright * eye, contrast * eye, sat_m, hue_m], dim=1)  # B x 4 x C x C
    zero = factors.new_zeros(b)
    return maps, torch.stack([zero, 1.0 - factors[:, 1], zero, zero], dim=1)  # B x 4


def jitter_affine(
    factors: Tensor, order: Sequence[int] | Tensor, channels: int, means: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The jitter ops ``order`` (0 brightness, 1 contrast, 2 saturation, 3 hue) as one affine map.

    Each op maps the current image ``y = M x + o`` to ``A y + t``: brightness ``A = b I``;
    contrast ``A = c I``, ``t = (1 - c) mean_gray(y)`` where ``mean_gray(y) = w^T (M mu + o)``
    comes from the original channel means ``mu`` (``w``: ``LUMA``, or 1 for one channel);
    saturation ``A = s I + (1 - s) 1 w^T`` (blend with gray); hue: ``hue_matrices``. Unlike
    torchvision there is no clamp between ops. One-channel images skip saturation and hue.

    ``order`` is one sequence of ops for every sample, or a ``B x L`` tensor whose row ``i`` is
    sample ``i``'s ops in turn (e.g. a permutation of 0..3 per sample): at each position every
    sample picks its own op's map on the device, with no host sync. Without clamps these four
    maps commute (scalings about 0 and about the mean gray, a blend toward gray, a turn about
    the gray axis that keeps luma), so the order moves ``M`` and ``o`` only by rounding; in
    torchvision it matters through the clamp after each op and the nonlinear HSV hue.

    Shape:
        factors: ``B x 4``; order: ``L`` ints or ``B x L`` long; means: ``B x C`` (needed with
        contrast, and always with a tensor order); returns ``M``: ``B x C x C``, ``o``: ``B x C``.
    """
    if means is None and (isinstance(order, Tensor) or 1 in order):
        raise ValueError("jitter_affine needs the channel means for contrast")
    b = factors.shape[0]
    maps, gray_weight = _op_maps(factors, channels)  # B x 4 x C x C, B x 4
    w = _constants(factors.device, factors.dtype)[0] if channels == 3 else factors.new_ones(1)
    m = torch.eye(channels, dtype=factors.dtype, device=factors.device).expand(b, channels, -1)
    o = factors.new_zeros(b, channels)
    rows = torch.arange(b, device=factors.device)  # B
    for k in order.unbind(dim=1) if isinstance(order, Tensor) else order:  # k: B long, or an int
        a, u = maps[rows, k], gray_weight[rows, k]  # B x C x C, B: each sample's op here
        t = (a @ o.unsqueeze(2)).squeeze(2)  # B x C
        if means is not None:
            gray = ((m @ means.unsqueeze(2)).squeeze(2) + o) @ w  # B: mean gray of the image now
            t = t + (u * gray).unsqueeze(1)  # contrast's blend target; u = 0 for the others
        m, o = a @ m, t
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


@AUGMENTATIONS.register("jitter", scope="image")
class ColorJitter:
    """Color jitter with per-sample factors, SimCLR's ``strength`` convention.

    Unless given, brightness = contrast = saturation = 0.8 * strength and hue = 0.2 * strength
    (Chen et al. 2020, Appendix A). A number ``v`` means factors ~ U(max(0, 1-v), 1+v) (hue:
    shifts ~ U(-v, v)), a range ``lo-hi`` is used as is, 0 turns the op off. The four ops run in
    a random order drawn per sample, as in torchvision (an op that is off, or saturation and hue
    on 1-channel images, is an identity map wherever it falls). Fused (see ``jitter_affine``):
    one pass over the pixels, clamped once at the end rather than after every op, and hue
    rotated in YIQ rather than HSV.

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
        b = x.shape[0]
        factors = self.sample_factors(b, generator, x.device)  # B x 4
        ranges = (self.brightness, self.contrast, self.saturation, self.hue)
        on = [r != (i, i) and (c == 3 or k < 2)
              for k, (r, i) in enumerate(zip(ranges, (1.0, 1.0, 1.0, 0.0), strict=True))]
        if not any(on):
            return x
        # B x 4: row i is a random permutation of the ops, sample i's order (drawn on the device)
        order = torch.rand(b, 4, generator=generator, device=x.device).argsort(dim=1)
        # B x C; with contrast off its gray weight is 0 and the means are not needed
        means = x.mean(dim=(2, 3)) if on[1] else x.new_zeros(b, c)
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
