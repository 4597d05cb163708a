"""Random resized crop (+ fused flip) and flip: parity with torchvision for fixed boxes, and
torchvision's box statistics."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF

from anyssl.modalities.image.geometry import (
    LOOP_MIN_PIXELS,
    Flip,
    RandomResizedCrop,
    _crop_each,
    _crop_grid,
    hflip,
    resized_crop_flip,
    sample_crop_boxes,
)
from anyssl.views import SpecError, parse_spec


def _img(n: int = 3, c: int = 3, h: int = 20, w: int = 30, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("box", [(0, 0, 20, 30), (3, 5, 10, 12), (2, 1, 15, 25), (5, 5, 4, 4),
                                 (19, 29, 1, 1)])
@pytest.mark.parametrize("size", [8, 16, (40, 24), 48, (44, 64)])  # grid and per-sample paths
@pytest.mark.parametrize("uint8", [False, True])
def test_resized_crop_matches_torchvision(box: tuple[int, int, int, int], size,
                                          uint8: bool) -> None:
    x = _img()
    x = (x * 255).round().to(torch.uint8) if uint8 else x
    boxes = torch.tensor([box] * 3, dtype=torch.float32)
    out = resized_crop_flip(x, boxes, torch.tensor([False, True, False]), size)
    assert out.dtype == torch.float32
    out_hw = [size, size] if isinstance(size, int) else list(size)
    x = x.float() / 255 if uint8 else x
    ref = TF.resized_crop(x, *box, out_hw, antialias=False)
    torch.testing.assert_close(out[0], ref[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], TF.hflip(ref[1]), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[2], ref[2], atol=1e-5, rtol=0)


def test_different_boxes_per_sample() -> None:
    x = _img()
    boxes = torch.tensor([[0, 0, 20, 30], [2, 3, 10, 10], [10, 20, 8, 6]], dtype=torch.float32)
    out = resized_crop_flip(x, boxes, torch.tensor([True, False, True]), 12)
    for i, b in enumerate(boxes.long().tolist()):
        ref = TF.resized_crop(x[i], *b, [12, 12], antialias=False)
        ref = TF.hflip(ref) if i != 1 else ref
        torch.testing.assert_close(out[i], ref, atol=1e-5, rtol=0)


def test_cpu_paths_agree_and_leave_the_input_alone() -> None:
    # per-sample interpolate (large outputs on the CPU) and one grid_sample (small ones)
    assert 32 * 32 < LOOP_MIN_PIXELS <= 48 * 48
    x = _img(n=4, h=40, w=50)
    before = x.clone()
    boxes = torch.tensor([[0, 0, 40, 50], [5, 7, 20, 31], [1, 2, 3, 4], [10, 0, 30, 12]],
                         dtype=torch.float32)
    flips = torch.tensor([True, False, True, True])
    for h, w in [(48, 48), (20, 70)]:
        torch.testing.assert_close(_crop_each(x, boxes, flips, h, w),
                                   _crop_grid(x, boxes, flips, h, w), atol=1e-4, rtol=0)
    assert torch.equal(x, before)
    u8 = (x * 255).to(torch.uint8)
    torch.testing.assert_close(_crop_each(u8, boxes, flips, 48, 48),
                               _crop_each(u8.float() / 255, boxes, flips, 48, 48), atol=1e-6,
                               rtol=0)


def test_hflip_per_sample() -> None:
    x = _img()
    out = hflip(x, torch.tensor([True, False, True]))
    assert torch.equal(out[0], TF.hflip(x[0])) and torch.equal(out[1], x[1])
    assert torch.equal(out[2], x[2].flip(-1))


def test_flip_probabilities() -> None:
    x = _img(n=400, c=1, h=2, w=3)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(Flip(p=1.0)(x, g), x.flip(-1))
    assert torch.equal(Flip(p=0.0)(x, g), x)
    flipped = (Flip(p=0.3)(x, g) != x).flatten(1).any(1).float().mean().item()
    assert 0.22 < flipped < 0.38


def test_flip_from_spec_flips_half() -> None:
    x = _img(n=400, c=1, h=2, w=3)
    aug = parse_spec("flip", scope="image")
    flipped = (aug(x, torch.Generator().manual_seed(1)) != x).flatten(1).any(1).float().mean()
    assert 0.42 < float(flipped) < 0.58


def test_flip_spec_probability_is_not_compounded() -> None:
    x = _img(n=400, c=1, h=2, w=3)
    aug = parse_spec("flip(p=0.8)", scope="image")
    flipped = (aug(x, torch.Generator().manual_seed(1)) != x).flatten(1).any(1).float().mean()
    assert 0.72 < float(flipped) < 0.88


def test_full_box_crop_is_identity_and_flip_mirrors() -> None:
    x = _img(h=16, w=16)
    g = torch.Generator().manual_seed(0)
    same = RandomResizedCrop(16, scale=(1.0, 1.0), ratio=(1.0, 1.0))(x, g)
    torch.testing.assert_close(same, x, atol=1e-6, rtol=0)
    mirrored = RandomResizedCrop(16, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=1.0)(x, g)
    torch.testing.assert_close(mirrored, x.flip(-1), atol=1e-6, rtol=0)


def test_crop_boxes_stay_inside_and_follow_scale_and_ratio() -> None:
    h, w, n = 64, 48, 4000
    scale, ratio = (0.2, 0.7), (0.5, 2.0)
    boxes = sample_crop_boxes(n, h, w, scale, ratio, torch.Generator().manual_seed(0),
                              torch.device("cpu"))
    top, left, bh, bw = boxes.unbind(1)
    assert torch.equal(boxes, boxes.round())
    assert bool(((top >= 0) & (left >= 0) & (top + bh <= h) & (left + bw <= w)).all())
    frac = bh * bw / (h * w)
    # rounding w and h to integers moves the area by at most about (w + h + 1) pixels
    slack = (bh + bw + 1) / (h * w)
    assert bool(((frac >= scale[0] - slack) & (frac <= scale[1] + slack)).all())
    aspect = bw / bh
    assert bool(((aspect >= ratio[0] * 0.9) & (aspect <= ratio[1] * 1.1)).all())
    assert frac.std() > 0.1  # the fractions spread over the range


def test_crop_statistics_match_torchvision() -> None:
    h, w, n = 40, 60, 3000
    torch.manual_seed(0)
    ref = torch.tensor([T.RandomResizedCrop.get_params(torch.zeros(1, h, w), [0.08, 1.0],
                                                       [3 / 4, 4 / 3]) for _ in range(n)],
                       dtype=torch.float32)
    ours = sample_crop_boxes(n, h, w, (0.08, 1.0), (3 / 4, 4 / 3),
                             torch.Generator().manual_seed(0), torch.device("cpu"))
    for col in range(4):  # mean top, left, height, width agree within sampling error
        a, b = ours[:, col], ref[:, col]
        se = math.sqrt(a.var().item() / n + b.var().item() / n)
        assert abs(a.mean().item() - b.mean().item()) < 4 * se + 1e-6


def test_center_crop_fallback_when_no_candidate_fits() -> None:
    # 10 x 100 image, square crops of >= 90% of the area never fit: torchvision's fallback is
    # the centered 10 x 10 box (aspect 10 > max ratio 1).
    boxes = sample_crop_boxes(5, 10, 100, (0.9, 1.0), (1.0, 1.0),
                              torch.Generator().manual_seed(0), torch.device("cpu"))
    assert boxes.tolist() == [[0.0, 45.0, 10.0, 10.0]] * 5


def test_crop_accepts_single_numbers_and_reprs() -> None:
    aug = RandomResizedCrop(32, scale=0.2, ratio=0.5, flip=0.5)
    assert aug.scale == (0.2, 1.0) and aug.ratio == (0.5, 2.0) and aug.size == (32, 32)
    assert repr(aug) == "crop(size=32,scale=0.2-1.0,ratio=0.5-2.0,flip=0.5)"
    assert RandomResizedCrop((24, 16)).size == (24, 16)
    out = RandomResizedCrop((24, 16))(torch.rand(2, 1, 30, 30))
    assert out.shape == (2, 1, 24, 16)


@pytest.mark.parametrize("spec,match", [
    ("crop(size=0)", "positive"),
    ("crop(size=32,scale=0.9-0.2)", "lo <= hi"),
    ("crop(size=32,scale=0.0-1.0)", "> 0"),
    ("crop(size=32,flip=1.5)", "probability"),
    ("crop(size=abc)", "size"),
])
def test_bad_crop_and_flip_arguments(spec: str, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        parse_spec(spec, scope="image")


def test_bad_flip_probability() -> None:
    with pytest.raises(ValueError, match="probability"):
        Flip(p=2.0)
