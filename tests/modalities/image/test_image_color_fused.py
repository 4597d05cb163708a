"""Fused color jitter: the composed per-sample affine map against the sequential torchvision ops,
YIQ hue rotation properties (identity, luma kept, full turn, direction), the registered jitter's
factors, order, reproducibility and range."""

from __future__ import annotations

import itertools

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from anyssl.modalities.image.color import (
    LUMA,
    ColorJitter,
    apply_color_affine,
    hue_matrices,
    jitter_affine,
    rgb_to_hsv,
)

W = torch.tensor(LUMA)
TV_OPS = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)


def _mid(n: int = 4, c: int = 3, seed: int = 0) -> torch.Tensor:
    """Images in [0.3, 0.7]: factors near 1 keep every op inside [0, 1] (no clipping)."""
    return 0.3 + 0.4 * torch.rand(n, c, 9, 11, generator=torch.Generator().manual_seed(seed))


def _fused(x: torch.Tensor, factors: torch.Tensor, order: list[int] | torch.Tensor,
           ) -> torch.Tensor:
    m, o = jitter_affine(factors, order, x.shape[1], x.mean(dim=(2, 3)))
    return apply_color_affine(x, m, o)


def _sequential(x: torch.Tensor, factors: torch.Tensor, order: list[int] | torch.Tensor,
                ) -> torch.Tensor:
    """torchvision's ops one sample at a time; ``order``: shared, or ``B x L`` (row i: sample i)."""
    out = []
    for i in range(x.shape[0]):
        y = x[i]
        for k in order[i].tolist() if isinstance(order, torch.Tensor) else order:
            y = TV_OPS[k](y, float(factors[i, k]))
        out.append(y)
    return torch.stack(out)


FACTORS = torch.tensor([[0.9, 1.15, 0.85, 0.0], [1.1, 0.9, 1.2, 0.0],
                        [1.0, 1.25, 0.8, 0.0], [0.95, 0.8, 1.1, 0.0]])


@pytest.mark.parametrize("order", list(itertools.permutations([0, 1, 2])))
def test_fused_equals_sequential_torchvision_without_clipping(order: tuple[int, ...]) -> None:
    x = _mid()
    torch.testing.assert_close(_fused(x, FACTORS, list(order)),
                               _sequential(x, FACTORS, list(order)), atol=1e-5, rtol=0)


def test_one_channel_brightness_and_contrast_match_torchvision() -> None:
    x = _mid(c=1)
    for order in ([0, 1], [1, 0]):
        torch.testing.assert_close(_fused(x, FACTORS, order), _sequential(x, FACTORS, order),
                                   atol=1e-5, rtol=0)
    m, o = jitter_affine(FACTORS, [0, 1, 2, 3], 1, x.mean(dim=(2, 3)))
    assert m.shape == (4, 1, 1) and o.shape == (4, 1)
    ref_m, ref_o = jitter_affine(FACTORS, [0, 1], 1, x.mean(dim=(2, 3)))  # sat, hue skipped
    assert torch.equal(m, ref_m) and torch.equal(o, ref_o)


def test_contrast_uses_the_mean_gray_of_the_current_image() -> None:
    # brightness first changes the mean the contrast blends with; compare with the hand math
    x = _mid(n=2)
    f = torch.tensor([[1.2, 0.5, 1.0, 0.0], [0.8, 1.5, 1.0, 0.0]])
    y = x * f[:, 0].view(-1, 1, 1, 1)
    mean = (y * W.view(1, 3, 1, 1)).sum(1).mean(dim=(1, 2)).view(-1, 1, 1, 1)
    c = f[:, 1].view(-1, 1, 1, 1)
    torch.testing.assert_close(_fused(x, f, [0, 1]), (c * y + (1 - c) * mean).clamp(0, 1),
                               atol=1e-6, rtol=0)


def test_hue_zero_and_full_turns_are_identity() -> None:
    eye = torch.eye(3).expand(3, 3, 3)
    torch.testing.assert_close(hue_matrices(torch.zeros(3)), eye, atol=1e-6, rtol=0)
    torch.testing.assert_close(hue_matrices(torch.tensor([1.0, -1.0, 2.0])), eye, atol=1e-5,
                               rtol=0)
    s = torch.tensor([0.1, -0.3, 0.45])
    torch.testing.assert_close(hue_matrices(s + 1.0), hue_matrices(s), atol=1e-5, rtol=0)
    x = _mid()
    f = torch.tensor([[1.0, 1.0, 1.0, 0.0]] * 4)
    torch.testing.assert_close(_fused(x, f, [3]), x, atol=1e-6, rtol=0)


def test_hue_rotation_preserves_luma_before_clamping() -> None:
    shifts = torch.linspace(-0.5, 0.5, 11)
    m = hue_matrices(shifts)  # 11 x 3 x 3
    torch.testing.assert_close(W @ m, W.expand(11, 3), atol=1e-6, rtol=0)  # w^T M = w^T
    x = torch.rand(11, 3, 5, 6, generator=torch.Generator().manual_seed(1))
    y = torch.einsum("bij,bjhw->bihw", m, x)  # unclamped
    torch.testing.assert_close(torch.einsum("c,bchw->bhw", W, y),
                               torch.einsum("c,bchw->bhw", W, x), atol=1e-6, rtol=0)
    # and a rotation: composing two shifts adds them
    torch.testing.assert_close(hue_matrices(shifts) @ hue_matrices(shifts),
                               hue_matrices(2 * shifts), atol=1e-5, rtol=0)


def test_hue_turns_like_hsv() -> None:
    # a shift of 1/3 turn takes red towards green, -1/3 towards blue (HSV order R -> G -> B)
    red = torch.tensor([0.8, 0.2, 0.2])
    assert int((hue_matrices(torch.tensor([1 / 3]))[0] @ red).argmax()) == 1
    assert int((hue_matrices(torch.tensor([-1 / 3]))[0] @ red).argmax()) == 2
    # small shifts move the HSV hue of in-gamut colors by about the shift
    x = 0.35 + 0.3 * torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    for shift in (-0.05, 0.03, 0.08):
        y = torch.einsum("ij,bjhw->bihw", hue_matrices(torch.tensor([shift]))[0], x)
        assert float(y.min()) >= 0 and float(y.max()) <= 1  # no clipping involved
        moved = (rgb_to_hsv(y)[:, 0] - rgb_to_hsv(x)[:, 0] + 0.5).remainder(1.0) - 0.5
        assert bool((moved * shift > 0).all())
        assert abs(float(moved.median()) - shift) < 0.2 * abs(shift)


def test_jitter_applies_its_sampled_factors_in_its_drawn_order() -> None:
    x = _mid(n=6)
    j = ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0.05)
    g = torch.Generator().manual_seed(4)
    factors = j.sample_factors(6, g, x.device)
    order = torch.rand(6, 4, generator=g).argsort(dim=1)  # 6 x 4: one order per sample
    assert len({tuple(r) for r in factors.tolist()}) == 6  # every sample has its own factors
    expected = _fused(x, factors, order)
    torch.testing.assert_close(j(x, torch.Generator().manual_seed(4)), expected, atol=0, rtol=0)
    # with hue off (an identity map wherever it falls), each sample's drawn order on
    # torchvision gives the same images (no clipping here)
    j = ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0)
    g = torch.Generator().manual_seed(5)
    factors = j.sample_factors(6, g, x.device)
    order = torch.rand(6, 4, generator=g).argsort(dim=1)
    torch.testing.assert_close(j(x, torch.Generator().manual_seed(5)),
                               _sequential(x, factors, order), atol=1e-5, rtol=0)


def test_jitter_is_seeded_and_per_sample() -> None:
    x = _mid(n=1).expand(8, -1, -1, -1).contiguous()
    j = ColorJitter(strength=1.0)
    a = j(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, j(x, torch.Generator().manual_seed(0)))
    assert not torch.equal(a, j(x, torch.Generator().manual_seed(1)))
    assert len({tuple(o.flatten()[:5].tolist()) for o in a}) == 8


@pytest.mark.parametrize("channels", [1, 3])
def test_jitter_output_is_float_in_unit_range(channels: int) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, channels, 12, 12), dtype=torch.uint8, generator=g)
    out = ColorJitter(brightness=(1.5, 3.0), contrast=(0.0, 3.0), saturation=(0.0, 3.0),
                      hue=0.5)(x, g)  # factors that push far outside [0, 1] before the clamp
    assert out.dtype == torch.float32 and out.shape == x.shape
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert float((out == 1.0).float().mean()) > 0.1  # the clamp did act


def test_jitter_does_not_modify_its_input() -> None:
    x = _mid()
    before = x.clone()
    ColorJitter(strength=1.0)(x, torch.Generator().manual_seed(0))
    assert torch.equal(x, before)


def test_contrast_without_means_is_rejected() -> None:
    with pytest.raises(ValueError, match="means"):
        jitter_affine(FACTORS, [1], 3)
    with pytest.raises(ValueError, match="means"):  # a per-sample order may hold contrast
        jitter_affine(FACTORS, torch.zeros(4, 1, dtype=torch.long), 3)
