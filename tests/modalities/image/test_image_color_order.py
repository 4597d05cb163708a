"""Per-sample op order of the fused color jitter: each sample's map against a per-sample
composition of the reference ops in its own order, one order drawn per sample, seeded, no host
sync (checked on the meta device, where any read of a value fails), and the fact that makes the
order immaterial to the fused result: its four clamp-free maps commute."""

from __future__ import annotations

import itertools

import pytest
import torch

import anyssl.modalities.image.color as color
from anyssl.modalities.image.color import (
    LUMA,
    ColorJitter,
    adjust_brightness,
    adjust_contrast,
    adjust_saturation,
    apply_color_affine,
    hue_matrices,
    jitter_affine,
)

W = torch.tensor(LUMA).view(3, 1, 1)
PERMS = torch.tensor(list(itertools.permutations(range(4))))  # 24 x 4: every order once


def _mid(n: int, seed: int = 0) -> torch.Tensor:
    """Images in [0.3, 0.7]: factors near 1 keep every op inside [0, 1] (no clipping)."""
    return 0.3 + 0.4 * torch.rand(n, 3, 9, 11, generator=torch.Generator().manual_seed(seed))


def _factors(n: int, hue: float, seed: int = 1) -> torch.Tensor:
    """``n x 4`` factors: brightness, contrast, saturation in [0.85, 1.15]; hue in +-``hue``."""
    u = torch.rand(n, 4, generator=torch.Generator().manual_seed(seed))
    return torch.cat([0.85 + 0.3 * u[:, :3], hue * (2 * u[:, 3:] - 1)], dim=1)


def _by_hand(y: torch.Tensor, f: torch.Tensor, order: list[int]) -> torch.Tensor:
    """One image (``3 x H x W``) through the clamp-free ops in ``order``, clamped at the end."""
    for k in order:
        gray = (W * y).sum(dim=0, keepdim=True)  # 1 x H x W
        if k == 0:
            y = f[0] * y
        elif k == 1:
            y = f[1] * y + (1 - f[1]) * gray.mean()
        elif k == 2:
            y = f[2] * y + (1 - f[2]) * gray
        else:
            y = torch.einsum("ij,jhw->ihw", hue_matrices(f[3:])[0], y)
    return y.clamp(0, 1)


def test_per_sample_orders_match_each_sample_composed_in_its_own_order() -> None:
    x, f = _mid(24), _factors(24, hue=0.1)
    m, o = jitter_affine(f, PERMS, 3, x.mean(dim=(2, 3)))
    expected = torch.stack([_by_hand(x[i], f[i], PERMS[i].tolist()) for i in range(24)])
    torch.testing.assert_close(apply_color_affine(x, m, o), expected, atol=1e-5, rtol=0)
    # and the reference per-op functions, hue off (identity wherever it falls): no clipping
    f[:, 3] = 0.0
    m, o = jitter_affine(f, PERMS, 3, x.mean(dim=(2, 3)))
    ops = (adjust_brightness, adjust_contrast, adjust_saturation)
    for i in range(24):
        y = x[i:i + 1]
        for k in PERMS[i].tolist():
            y = ops[k](y, f[i:i + 1, k]) if k < 3 else y
        torch.testing.assert_close(apply_color_affine(x[i:i + 1], m[i:i + 1], o[i:i + 1]), y,
                                   atol=1e-5, rtol=0)


def test_a_tensor_order_equals_the_same_order_as_a_sequence() -> None:
    x, f = _mid(24), _factors(24, hue=0.3)
    m, o = jitter_affine(f, PERMS, 3, x.mean(dim=(2, 3)))
    for i in (0, 7, 23):
        ref_m, ref_o = jitter_affine(f[i:i + 1], PERMS[i].tolist(), 3, x[i:i + 1].mean(dim=(2, 3)))
        torch.testing.assert_close(m[i:i + 1], ref_m, atol=1e-6, rtol=0)
        torch.testing.assert_close(o[i:i + 1], ref_o, atol=1e-6, rtol=0)


def test_the_clamp_free_ops_commute() -> None:
    # why the order never changes the fused result beyond rounding: brightness and contrast
    # scale about 0 and the mean gray, saturation blends toward gray, hue turns about the gray
    # axis keeping luma; torchvision's order matters through its clamp after every op (and HSV)
    f = _factors(1, hue=0.4).double().expand(24, 4)
    means = torch.rand(1, 3, dtype=torch.float64).expand(24, 3)
    m, o = jitter_affine(f, PERMS, 3, means)
    torch.testing.assert_close(m, m[:1].expand_as(m), atol=1e-12, rtol=0)
    torch.testing.assert_close(o, o[:1].expand_as(o), atol=1e-12, rtol=0)


def _record_orders(monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    """Patch the jitter to record the order it passes to ``jitter_affine``."""
    seen: list[torch.Tensor] = []

    def record(factors: torch.Tensor, order: torch.Tensor, channels: int,
               means: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(order)
        return jitter_affine(factors, order, channels, means)

    monkeypatch.setattr(color, "jitter_affine", record)
    return seen


def test_each_sample_draws_its_own_order(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _record_orders(monkeypatch)
    x = _mid(1).expand(512, -1, -1, -1).contiguous()
    out = ColorJitter(strength=1.0)(x, torch.Generator().manual_seed(0))
    (order,) = seen
    assert isinstance(order, torch.Tensor) and order.shape == (512, 4)  # not one per batch
    assert torch.equal(order.sort(dim=1).values, torch.arange(4).expand(512, 4))  # permutations
    assert len({tuple(r) for r in order.tolist()}) == 24  # 512 draws: all 24 orders occur
    for pos in range(4):  # every op sits at every position in some sample
        assert set(order[:, pos].tolist()) == {0, 1, 2, 3}
    assert out.shape == x.shape


def test_same_seed_same_orders_and_images(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _record_orders(monkeypatch)
    x = _mid(64)
    j = ColorJitter(strength=1.0)
    a, b = (j(x, torch.Generator().manual_seed(3)) for _ in range(2))
    assert torch.equal(a, b) and torch.equal(seen[0], seen[1])
    c = j(x, torch.Generator().manual_seed(4))
    assert not torch.equal(a, c) and not torch.equal(seen[0], seen[2])


@pytest.mark.parametrize("channels", [1, 3])
def test_jitter_reads_no_value_back_to_the_host(channels: int) -> None:
    # meta tensors hold no data: any .item(), .tolist() or bool() of a tensor would raise here
    x = torch.empty(8, channels, 16, 16, dtype=torch.uint8, device="meta")
    out = ColorJitter(strength=1.0)(x)
    assert out.device.type == "meta" and out.shape == x.shape and out.dtype == torch.float32
