"""Color ops: per-sample parity with torchvision.transforms.v2.functional (the reference per-op
functions), jitter ranges (SimCLR convention), grayscale and solarize. The fused jitter
is tested in test_image_color_fused.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from anyssl.modalities.image.color import (
    ColorJitter,
    Grayscale,
    Solarize,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    hsv_to_rgb,
    rgb_to_grayscale,
    rgb_to_hsv,
    solarize,
)


def _img(n: int = 4, c: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, 9, 11, generator=torch.Generator().manual_seed(seed))


CASES: list[tuple[Callable, Callable, list[float]]] = [
    (adjust_brightness, TF.adjust_brightness, [0.0, 0.5, 1.0, 1.8]),
    (adjust_contrast, TF.adjust_contrast, [0.0, 0.4, 1.0, 2.5]),
    (adjust_saturation, TF.adjust_saturation, [0.0, 0.3, 1.0, 2.0]),
    (adjust_hue, TF.adjust_hue, [-0.5, -0.1, 0.25, 0.5]),
]


@pytest.mark.parametrize("ours,ref,factors", CASES, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("channels", [1, 3])
def test_per_sample_parity_with_torchvision(ours, ref, factors, channels: int) -> None:
    x = _img(c=channels)
    out = ours(x, torch.tensor(factors))
    for i, f in enumerate(factors):
        torch.testing.assert_close(out[i], ref(x[i], f), atol=2e-6, rtol=0)


def test_hue_parity_on_hard_pixels() -> None:
    # gray pixels, pure primaries, and hues at sector borders
    px = torch.tensor([[0.5, 0.5, 0.5], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1],
                       [1, 0, 1], [0, 0, 0], [1, 1, 1], [0.2, 0.9, 0.9]])
    x = px.T.reshape(1, 3, 1, -1).expand(3, -1, -1, -1).contiguous()
    shifts = [0.5, 1 / 6, -1 / 3]
    out = adjust_hue(x, torch.tensor(shifts))
    for i, s in enumerate(shifts):
        torch.testing.assert_close(out[i], TF.adjust_hue(x[i], s), atol=1e-5, rtol=0)


def test_hsv_round_trip() -> None:
    x = _img(n=2)
    hsv = rgb_to_hsv(x)
    assert float(hsv.min()) >= 0 and float(hsv.max()) <= 1
    torch.testing.assert_close(hsv_to_rgb(hsv), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("num_output_channels", [1, 3])
def test_grayscale_parity(num_output_channels: int) -> None:
    x = _img()
    torch.testing.assert_close(rgb_to_grayscale(x, num_output_channels),
                               TF.rgb_to_grayscale(x, num_output_channels), atol=1e-6, rtol=0)


def test_grayscale_keeps_channel_count() -> None:
    x = _img()
    out = Grayscale()(x)
    assert out.shape == x.shape
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    assert out.stride(1) == 0  # one gray plane broadcast to the 3 channels, not copied
    gray = _img(c=1)
    assert torch.equal(Grayscale()(gray), gray)


def test_solarize_parity_and_threshold() -> None:
    x = _img()
    torch.testing.assert_close(solarize(x, 0.4), TF.solarize(x, 0.4), atol=0, rtol=0)
    torch.testing.assert_close(Solarize(0.4)(x), TF.solarize(x, 0.4), atol=0, rtol=0)
    with pytest.raises(ValueError, match="threshold"):
        Solarize(1.5)


def test_simclr_strength_convention() -> None:
    j = ColorJitter(strength=0.5)
    assert j.brightness == pytest.approx((0.6, 1.4)) and j.contrast == pytest.approx((0.6, 1.4))
    assert j.saturation == pytest.approx((0.6, 1.4)) and j.hue == pytest.approx((-0.1, 0.1))
    j = ColorJitter(strength=1.0)
    assert j.brightness == pytest.approx((0.2, 1.8)) and j.hue == pytest.approx((-0.2, 0.2))
    j = ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)  # BYOL
    assert j.saturation == pytest.approx((0.8, 1.2)) and j.hue == pytest.approx((-0.1, 0.1))
    assert ColorJitter(brightness=1.5).brightness == pytest.approx((0.0, 2.5))  # clipped at 0
    assert ColorJitter(contrast=(0.3, 0.9)).contrast == (0.3, 0.9)


def test_sampled_factors_lie_in_their_ranges() -> None:
    j = ColorJitter(brightness=0.4, contrast=(0.5, 0.7), saturation=0.2, hue=0.1)
    f = j.sample_factors(2000, torch.Generator().manual_seed(0), torch.device("cpu"))
    for k, (lo, hi) in enumerate([(0.6, 1.4), (0.5, 0.7), (0.8, 1.2), (-0.1, 0.1)]):
        assert float(f[:, k].min()) >= lo and float(f[:, k].max()) <= hi
        assert float(f[:, k].max() - f[:, k].min()) > 0.9 * (hi - lo)


def test_jitter_applies_the_sampled_factors() -> None:
    x = _img(n=6)
    j = ColorJitter(brightness=0.5, contrast=0, saturation=0, hue=0)  # only brightness on
    f = j.sample_factors(6, torch.Generator().manual_seed(3), x.device)[:, 0]
    out = j(x, torch.Generator().manual_seed(3))
    torch.testing.assert_close(out, (x * f.view(-1, 1, 1, 1)).clamp(0, 1), atol=1e-6, rtol=0)


def test_jitter_on_one_channel_skips_saturation_and_hue() -> None:
    x = _img(c=1)
    only_sat_hue = ColorJitter(brightness=0, contrast=0, saturation=0.8, hue=0.4)
    assert torch.equal(only_sat_hue(x, torch.Generator().manual_seed(0)), x)


@pytest.mark.parametrize("kwargs,match", [
    ({"strength": -1}, "strength"),
    ({"brightness": -0.1}, "brightness"),
    ({"hue": 0.6}, "hue"),
    ({"hue": (-0.7, 0.1)}, "hue"),
    ({"contrast": (0.9, 0.1)}, "lo <= hi"),
    ({"saturation": (-0.5, 1.0)}, "saturation"),
])
def test_bad_jitter_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ColorJitter(**kwargs)


def test_four_channel_images_are_rejected() -> None:
    with pytest.raises(ValueError, match="1- or 3-channel"):
        ColorJitter()(torch.rand(2, 4, 8, 8))
    with pytest.raises(ValueError, match="1- or 3-channel"):
        Grayscale()(torch.rand(2, 4, 8, 8))
