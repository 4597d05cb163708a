"""Gaussian blur with a per-sample sigma (SimCLR, Chen et al. 2020, Appendix A; MoCo v2; BYOL).

The kernel is about 10% of the image side, odd (SimCLR: 23 px at 224 px), and every sample gets
its own sigma ~ U(``sigma``). The blur is separable: two grouped 1-D convolutions, one group per
(sample, channel), on the reflect-padded batch (torchvision's padding).

On the CPU the batch goes through in chunks of about ``CPU_CHUNK_VALUES`` values: the padded
and half-blurred temporaries then stay in cache and mostly in memory the allocator reuses,
instead of fresh pages for three batch-sized buffers (2-3x faster at 224 px with glibc's
default allocator settings). Of the layouts measured
there (oneDNN), this one was the fastest: channels-last convolutions (the layout changes cost
more than they save), ``conv1d`` with one group per row, banded or block-banded matrix products
(2-4x the arithmetic), an FFT, and zero padding inside the convolution with a reflect
correction at the borders were all as slow or slower.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from anyssl.modalities.image.common import as_range, fmt_range, to_float_batch
from anyssl.registry import AUGMENTATIONS
from anyssl.views import uniform

__all__ = ["CPU_CHUNK_VALUES", "GaussianBlur", "default_kernel_size", "gaussian_blur",
           "gaussian_kernels"]

#: On the CPU, samples are blurred in chunks of about this many input values (~6 MB float32).
CPU_CHUNK_VALUES = 3 * 2**19


def default_kernel_size(side: int) -> int:
    """An odd kernel of about 10% of ``side``, at least 3 (SimCLR: ``2 * (side // 20) + 1``)."""
    return max(3, 2 * (side // 20) + 1)


def gaussian_kernels(kernel_size: int, sigmas: Tensor) -> Tensor:
    """Normalized 1-D Gaussian kernels, torchvision's (``exp(-x^2 / 2 sigma^2)`` on an integer
    grid centered at 0).

    Shape:
        sigmas: ``B``; returns ``B x kernel_size``.
    """
    half = (kernel_size - 1) / 2
    grid = torch.linspace(-half, half, kernel_size, dtype=sigmas.dtype, device=sigmas.device)
    pdf = torch.exp(-0.5 * (grid / sigmas[:, None]) ** 2)  # B x k
    return pdf / pdf.sum(dim=1, keepdim=True)


def gaussian_blur(x: Tensor, kernel_size: int, sigmas: Tensor | float) -> Tensor:
    """Blur each sample with its own sigma, reflect padding (torchvision's ``gaussian_blur``).

    Shape:
        x: ``B x C x H x W`` float; sigmas: ``B`` (or a number); returns the shape of ``x``.
    """
    b, c, height, width = x.shape
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"blur kernel_size must be odd and positive, got {kernel_size}")
    if kernel_size // 2 >= min(height, width):
        raise ValueError(
            f"blur kernel_size {kernel_size} is too large for {height}x{width} images; "
            f"use kernel_size <= {2 * min(height, width) - 1}"
        )
    sig = torch.as_tensor(sigmas, dtype=x.dtype, device=x.device).expand(b)
    kernels = gaussian_kernels(kernel_size, sig)  # B x k
    if x.device.type != "cpu":
        return _separable(x, kernels).clamp_(0.0, 1.0)
    out = torch.empty(x.shape, dtype=x.dtype)
    step = max(1, CPU_CHUNK_VALUES // (c * height * width))
    for i in range(0, b, step):
        out[i:i + step] = _separable(x[i:i + step], kernels[i:i + step]).clamp_(0.0, 1.0)
    return out


def _separable(x: Tensor, kernels: Tensor) -> Tensor:
    """Reflect-pad, then one grouped convolution along the rows and one along the columns.

    Shape:
        x: ``B x C x H x W``; kernels: ``B x k``; returns the shape of ``x``.
    """
    b, c, height, width = x.shape
    size = kernels.shape[1]
    pad = size // 2
    k = kernels.repeat_interleave(c, dim=0)  # (B*C) x k
    y = F.pad(x, (pad, pad, pad, pad), mode="reflect").reshape(1, b * c, height + 2 * pad,
                                                               width + 2 * pad)
    y = F.conv2d(y, k.view(b * c, 1, 1, size), groups=b * c)  # rows
    y = F.conv2d(y, k.view(b * c, 1, size, 1), groups=b * c)  # columns
    return y.reshape(b, c, height, width)


@AUGMENTATIONS.register("blur", scope="image")
class GaussianBlur:
    """Gaussian blur, sigma ~ U(``sigma``) per sample; ``kernel_size`` None: ~10% of the side.

    Shape:
        ``B x C x H x W`` uint8 or float -> same shape, float32 in [0, 1].
    """

    def __init__(self, sigma: tuple[float, float] | float = (0.1, 2.0),
                 kernel_size: int | None = None) -> None:
        self.sigma = as_range(sigma, "sigma")
        if self.sigma[0] <= 0:
            raise ValueError(f"blur sigma must be > 0, got {fmt_range(self.sigma)}")
        if kernel_size is not None and (not isinstance(kernel_size, int) or kernel_size < 1
                                        or kernel_size % 2 == 0):
            raise ValueError(f"blur kernel_size must be an odd positive int, got {kernel_size!r}")
        self.kernel_size = kernel_size

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        x = to_float_batch(x)
        k = self.kernel_size or default_kernel_size(min(x.shape[-2:]))
        sigmas = uniform(self.sigma[0], self.sigma[1], x.shape[0], generator, x.device)
        return gaussian_blur(x, k, sigmas)

    def __repr__(self) -> str:
        ks = "" if self.kernel_size is None else f",kernel_size={self.kernel_size}"
        return f"blur(sigma={fmt_range(self.sigma)}{ks})"
