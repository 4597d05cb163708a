"""Gaussian blur: per-sample parity with torchvision, kernel sizing, sigma sampling."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from anyssl.modalities.image import blur as blur_module
from anyssl.modalities.image.blur import (
    GaussianBlur,
    default_kernel_size,
    gaussian_blur,
    gaussian_kernels,
)


def _img(n: int = 3, c: int = 3, h: int = 12, w: int = 17) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("kernel_size", [3, 5, 9])
@pytest.mark.parametrize("channels", [1, 3])
def test_parity_with_torchvision(kernel_size: int, channels: int) -> None:
    x = _img(c=channels)
    sigmas = [0.1, 0.8, 2.0]
    out = gaussian_blur(x, kernel_size, torch.tensor(sigmas))
    for i, s in enumerate(sigmas):
        ref = TF.gaussian_blur(x[i], [kernel_size, kernel_size], [s, s])
        torch.testing.assert_close(out[i], ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("per_chunk", [1, 2, 5, 100])
def test_cpu_chunks_give_the_same_result(per_chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    x = _img(n=5, c=3)
    sigmas = torch.tensor([0.3, 1.0, 2.0, 0.7, 1.5])
    monkeypatch.setattr(blur_module, "CPU_CHUNK_VALUES", per_chunk * 3 * 12 * 17)
    out = gaussian_blur(x, 5, sigmas)
    for i, s in enumerate(sigmas.tolist()):
        ref = TF.gaussian_blur(x[i], [5, 5], [s, s])
        torch.testing.assert_close(out[i], ref, atol=1e-6, rtol=0)


def test_kernels_are_normalized_symmetric_gaussians() -> None:
    k = gaussian_kernels(7, torch.tensor([0.5, 1.0, 3.0]))
    assert k.shape == (3, 7)
    torch.testing.assert_close(k.sum(1), torch.ones(3))
    torch.testing.assert_close(k, k.flip(1))
    # ratio of neighbouring taps is exp(-(2x+1) / (2 sigma^2))
    ratio = k[1, 4] / k[1, 3]
    assert float(ratio) == pytest.approx(torch.exp(torch.tensor(-0.5)).item(), rel=1e-5)
    assert float(k[2, 3]) < float(k[0, 3])  # wider sigma, flatter kernel


@pytest.mark.parametrize("side,expected", [(224, 23), (96, 9), (64, 7), (32, 3), (8, 3)])
def test_default_kernel_is_ten_percent_and_odd(side: int, expected: int) -> None:
    assert default_kernel_size(side) == expected


def test_constant_images_stay_constant() -> None:
    x = torch.full((2, 3, 10, 10), 0.3)
    torch.testing.assert_close(GaussianBlur()(x, torch.Generator().manual_seed(0)), x)


def test_sigma_is_drawn_per_sample_within_range() -> None:
    x = _img(n=1).expand(8, -1, -1, -1).contiguous()
    aug = GaussianBlur(sigma=(0.5, 2.0), kernel_size=5)
    out = aug(x, torch.Generator().manual_seed(0))
    sigmas = 0.5 + 1.5 * torch.rand(8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, gaussian_blur(x, 5, sigmas), atol=1e-6, rtol=0)
    # a sample blurred with sigma 0.5 or 2.0 bounds the others' sharpness
    sharp = (out - x).abs().flatten(1).mean(1)
    lo = (gaussian_blur(x[:1], 5, 0.5) - x[:1]).abs().mean()
    hi = (gaussian_blur(x[:1], 5, 2.0) - x[:1]).abs().mean()
    assert bool((sharp >= lo - 1e-6).all() and (sharp <= hi + 1e-6).all())
    assert float(sharp.max() - sharp.min()) > 0.1 * float(hi - lo)


def test_fixed_sigma_and_repr() -> None:
    aug = GaussianBlur(sigma=1.0, kernel_size=5)
    x = _img()
    torch.testing.assert_close(aug(x), gaussian_blur(x, 5, 1.0))
    assert repr(aug) == "blur(sigma=1.0-1.0,kernel_size=5)"


@pytest.mark.parametrize("kwargs,match", [
    ({"kernel_size": 4}, "odd"),
    ({"kernel_size": 0}, "odd"),
    ({"sigma": (0.0, 1.0)}, "> 0"),
    ({"sigma": (2.0, 1.0)}, "lo <= hi"),
])
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GaussianBlur(**kwargs)


def test_kernel_larger_than_image_is_rejected() -> None:
    with pytest.raises(ValueError, match="too large"):
        GaussianBlur(kernel_size=21)(torch.rand(2, 1, 8, 8))
