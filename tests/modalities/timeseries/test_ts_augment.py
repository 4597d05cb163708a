"""Native time-series augmentations: contract over every registered one (shape, device, seeds,
per-series parameters, NaN padding), then each augmentation's own math and bad input."""

from __future__ import annotations

import math

import pytest
import torch

import anyssl.modalities.timeseries.augment as ts_augment
import anyssl.modalities.timeseries.augment_warp as ts_warp
from anyssl.registry import AUGMENTATIONS
from anyssl.views import RandomApply, SpecError, ViewGenerator, parse_spec

# spec -> output length (None: unchanged)
SPECS: dict[str, int | None] = {
    "jitter": None,
    "jitter(sigma=0.1,p=0.5)": None,
    "scale": None,
    "magnitude_warp": None,
    "magnitude_warp(sigma=0.3,knots=2)": None,
    "time_warp": None,
    "time_warp(sigma=0.5,knots=6,p=0.5)": None,
    "window_slice": None,
    "window_slice(ratio=0.5-1.0)": None,
    "crop_resize(scale=0.6)": None,
    "window_warp": None,
    "window_warp(ratio=0.3,scales=0.8-1.5)": None,
    "permute": None,
    "permute(max_segments=3)": None,
    "time_mask": None,
    "time_mask(ratio=0.3,spans=2,p=0.5)": None,
    "channel_dropout(rate=0.5)": None,
    "channel_dropout(p=0.5)": None,
    "crop(length=12)": 12,
}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
OURS = (ts_augment.__name__, ts_warp.__name__)


def _gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _batch(n: int = 8, c: int = 3, t: int = 32, lens: tuple[int, ...] = (32, 20, 25),
           seed: int = 0) -> torch.Tensor:
    """Random series; series i is NaN-padded after ``lens[i % len(lens)]`` steps."""
    x = torch.randn(n, c, t, generator=_gen(seed))
    for i in range(n):
        x[i, :, lens[i % len(lens)]:] = float("nan")
    return x


def _ramp(n: int = 6, t: int = 40, lens: tuple[int, ...] = (40, 23)) -> torch.Tensor:
    x = torch.arange(t, dtype=torch.float32).repeat(n, 1, 1)  # N x 1 x T
    for i in range(n):
        x[i, :, lens[i % len(lens)]:] = float("nan")
    return x


def test_every_native_augmentation_is_covered() -> None:
    ours = {name for name in AUGMENTATIONS.names("timeseries")
            if AUGMENTATIONS.get(name, "timeseries").__module__ in OURS}
    assert ours == {s.split("(")[0] for s in SPECS}


@pytest.mark.parametrize("spec", list(SPECS))
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_device(spec: str, device: str, dtype: torch.dtype) -> None:
    x = _batch().to(device, dtype)
    out = parse_spec(spec, scope="timeseries")(x, _gen(0, device))
    length = SPECS[spec] or x.shape[2]
    assert out.shape == (8, 3, length) and out.dtype == dtype and out.device == x.device


@pytest.mark.parametrize("spec", list(SPECS))
def test_seeded_reproducibility(spec: str) -> None:
    aug, x = parse_spec(spec, scope="timeseries"), _batch()
    a, b, c = aug(x, _gen(5)), aug(x, _gen(5)), aug(x, _gen(6))
    torch.testing.assert_close(a, b, atol=0, rtol=0, equal_nan=True)
    assert not torch.equal(torch.nan_to_num(a, nan=7.0), torch.nan_to_num(c, nan=7.0))


@pytest.mark.parametrize("spec", list(SPECS))
def test_series_draw_their_own_params(spec: str) -> None:
    x = _batch(n=1, lens=(32,)).expand(16, -1, -1).contiguous()  # 16 copies of one series
    out = parse_spec(spec, scope="timeseries")(x, _gen(0))
    distinct = {tuple(row.flatten().tolist()) for row in out}
    assert len(distinct) > 2


@pytest.mark.parametrize("spec", list(SPECS))
def test_padding_kept_and_no_nan_from_observed(spec: str) -> None:
    x = _batch()
    x_in = x.clone()
    out = parse_spec(spec, scope="timeseries")(x, _gen(1))
    torch.testing.assert_close(x, x_in, atol=0, rtol=0, equal_nan=True)  # input untouched
    if SPECS[spec] is None:
        assert torch.equal(torch.isnan(out), torch.isnan(x))
    else:
        assert not torch.isnan(out).any()


@pytest.mark.parametrize("spec", ["jitter", "scale", "magnitude_warp", "time_mask(ratio=0.5)",
                                  "channel_dropout(rate=0.5)"])
def test_pointwise_augmentations_keep_interior_missing_values(spec: str) -> None:
    x = _batch()
    x[0, 1, 3:6] = float("nan")
    x[1, 0, 10] = float("nan")
    out = parse_spec(spec, scope="timeseries")(x, _gen(2))
    assert torch.equal(torch.isnan(out), torch.isnan(x))


def test_jitter_noise_has_std_sigma() -> None:
    x = torch.randn(256, 4, 256, generator=_gen(0))
    noise = ts_augment.Jitter(sigma=0.2)(x, _gen(1)) - x
    assert abs(float(noise.std()) - 0.2) < 0.004 and abs(float(noise.mean())) < 0.003


def test_scale_multiplies_each_channel_by_one_factor() -> None:
    x = torch.rand(512, 3, 16, generator=_gen(0)) + 0.5
    ratio = ts_augment.Scale(sigma=0.3)(x, _gen(1)) / x
    torch.testing.assert_close(ratio, ratio[..., :1].expand_as(ratio))  # constant over time
    assert abs(float(ratio[..., 0].std()) - 0.3) < 0.03
    assert abs(float(ratio[..., 0].mean()) - 1.0) < 0.03


def test_magnitude_warp_passes_through_its_knots_on_each_valid_length() -> None:
    # lengths 31 and 16 with 4 knots: knot j sits at step j * (len - 1) / 5
    x = torch.ones(2, 2, 31)
    x[1, :, 16:] = float("nan")
    sigma, knots = 0.3, 4
    out = ts_augment.MagnitudeWarp(sigma=sigma, knots=knots)(x, _gen(3))
    expected = 1.0 + sigma * torch.randn(2, 2, knots + 2, generator=_gen(3))  # the same draw
    for i, length in enumerate((31, 16)):
        steps = [j * (length - 1) // (knots + 1) for j in range(knots + 2)]
        torch.testing.assert_close(out[i, :, steps], expected[i])


def test_smooth_curve_of_constant_knots_is_constant() -> None:
    u = torch.linspace(0, 1, 50).expand(3, 50)
    curve = ts_augment.smooth_curve(torch.full((3, 2, 6), 1.7), u)
    torch.testing.assert_close(curve, torch.full((3, 2, 50), 1.7))


def test_resample_interpolates_values_and_mask_separately() -> None:
    x = torch.tensor([[[0.0, 1.0, float("nan"), 3.0, 4.0, float("nan")]]])  # length 5
    pos = torch.tensor([[[0.0, 1.4, 1.6, 2.5, 3.2, 0.0]]])
    out = ts_warp.resample(x, pos, torch.tensor([5]))
    # 1.4: (0.6*1 + 0.4*0) / 0.6; 1.6: mask 0.4 < 0.5; 2.5: (0.5*3) / 0.5; step 5 is padding
    expected = torch.tensor([[[0.0, 1.0, float("nan"), 3.0, 3.2, float("nan")]]])
    torch.testing.assert_close(out, expected, equal_nan=True)


@pytest.mark.parametrize("aug", [ts_warp.TimeWarp(sigma=0.5), ts_warp.WindowSlice(ratio=0.5),
                                 ts_warp.WindowWarp(ratio=0.3), ts_warp.crop_resize(0.3)],
                         ids=repr)
def test_warps_keep_a_ramp_monotone_inside_its_range(aug: object) -> None:
    x = _ramp()
    out = aug(x, _gen(4))  # type: ignore[operator]
    for i, length in enumerate([40, 23] * 3):
        valid = out[i, 0, :length]
        assert not torch.isnan(valid).any() and torch.isnan(out[i, 0, length:]).all()
        assert (valid.diff() >= -1e-5).all()
        assert float(valid[0]) >= -1e-5 and float(valid[-1]) <= length - 1 + 1e-4
    assert not torch.allclose(out[0, 0], x[0, 0])


@pytest.mark.parametrize("aug", [ts_warp.TimeWarp(sigma=0.5), ts_warp.WindowWarp(ratio=0.3)],
                         ids=repr)
def test_time_and_window_warp_keep_the_endpoints(aug: object) -> None:
    out = aug(_ramp(), _gen(5))  # type: ignore[operator]
    torch.testing.assert_close(out[:, 0, 0], torch.zeros(6))
    torch.testing.assert_close(out[:, 0, [39, 22, 39, 22, 39, 22]].diagonal(),
                               torch.tensor([39.0, 22.0] * 3))


def test_window_slice_reads_a_window_of_ratio_of_the_length() -> None:
    out = ts_warp.WindowSlice(ratio=0.6)(_ramp(), _gen(6))
    for i, length in enumerate([40, 23] * 3):
        valid = out[i, 0, :length]
        torch.testing.assert_close(valid.diff(), torch.full((length - 1,), 0.6))
        assert float(valid[0]) <= 0.4 * (length - 1) + 1e-4


def test_zero_strength_warps_are_the_identity() -> None:
    x = _batch()
    for aug in (ts_warp.TimeWarp(sigma=0.0), ts_warp.WindowSlice(ratio=1.0),
                ts_warp.WindowWarp(scales=1.0), ts_augment.MagnitudeWarp(sigma=0.0)):
        torch.testing.assert_close(aug(x, _gen(0)), x, equal_nan=True)


def test_window_warp_picks_one_of_the_two_scales() -> None:
    x = torch.arange(101, dtype=torch.float32).repeat(64, 1, 1)
    out = ts_warp.WindowWarp(ratio=0.2, scales=(0.5, 2.0))(x, _gen(7))
    slopes = out[:, 0].diff(dim=1)  # ramp slopes: outside and inside the window
    ratios = slopes.amax(dim=1) / slopes.amin(dim=1)
    torch.testing.assert_close(ratios, torch.full((64,), 2.0), atol=0.02, rtol=0)


def test_permute_moves_whole_time_steps_in_few_contiguous_segments() -> None:
    x = torch.randn(32, 3, 30, generator=_gen(0))
    x[:, 0] = torch.arange(30.0)  # channel 0 holds each step's index
    x[1::2, :, 17:] = float("nan")
    out = ts_warp.Permute(max_segments=4)(x, _gen(1))
    for i in range(32):
        length = 30 if i % 2 == 0 else 17
        src = out[i, 0, :length].long()
        assert sorted(src.tolist()) == list(range(length))  # a permutation of the valid steps
        torch.testing.assert_close(out[i, :, :length], x[i, :, src])  # channels move together
        assert int((src.diff() != 1).sum()) <= 3  # at most 4 contiguous runs
    assert torch.isnan(out[1::2, :, 17:]).all()
    identity = ts_warp.Permute(max_segments=1)(x, _gen(1))
    torch.testing.assert_close(identity, x, equal_nan=True)


def test_time_mask_zeroes_one_contiguous_span_of_ratio_of_the_length() -> None:
    x = torch.rand(16, 2, 40, generator=_gen(0)) + 1.0  # no zeros
    x[1::2, :, 25:] = float("nan")
    out = ts_augment.TimeMask(ratio=0.3)(x, _gen(1))
    for i in range(16):
        length = 40 if i % 2 == 0 else 25
        zero = (out[i] == 0).all(dim=0).nonzero().flatten()
        assert len(zero) == math.ceil(0.3 * length) and int(zero[-1]) < length
        assert torch.equal(zero, torch.arange(int(zero[0]), int(zero[0]) + len(zero)))
        assert int((out[i] == 0).sum()) == 2 * len(zero)


def test_channel_dropout_never_drops_every_channel() -> None:
    x = torch.rand(400, 3, 8, generator=_gen(0)) + 1.0
    out = ts_augment.ChannelDropout(rate=1.0)(x, _gen(1))
    kept = (out != 0).all(dim=2)  # N x C
    assert (kept.sum(dim=1) == 1).all()  # rate 1: exactly the one protected channel survives
    assert torch.equal(out[kept], x[kept])
    dropped = (ts_augment.ChannelDropout(rate=0.5)(x, _gen(2)) == 0).all(dim=2)
    assert (dropped.sum(dim=1) < 3).all() and 0.4 < float(dropped.float().mean()) < 0.55
    torch.testing.assert_close(ts_augment.ChannelDropout(rate=0.0)(x, _gen(1)), x)


def test_crop_takes_a_contiguous_window_of_each_series() -> None:
    x = _batch(lens=(32, 20))
    out = ts_warp.RandomCrop(length=15)(x, _gen(3))
    for i in range(8):
        length = 32 if i % 2 == 0 else 20
        starts = [s for s in range(length - 15 + 1) if torch.equal(out[i], x[i, :, s:s + 15])]
        assert len(starts) == 1


def test_crop_of_a_too_short_series_says_how_to_fix_it() -> None:
    with pytest.raises(ValueError, match=r"crop\(length=21\).*one of 20; lower length= .* 20"):
        ts_warp.RandomCrop(length=21)(_batch(), _gen(0))


def test_spec_p_wraps_in_random_apply_and_applies_per_series() -> None:
    for spec in ("jitter(p=0.5)", "channel_dropout(rate=0.5,p=0.5)", "time_warp(p=0.5)"):
        aug = parse_spec(spec, scope="timeseries")
        assert isinstance(aug, RandomApply) and aug.p == 0.5
    x = _batch(n=64)
    out = parse_spec("jitter(p=0.5)", scope="timeseries")(x, _gen(0))
    same = (torch.nan_to_num(out) == torch.nan_to_num(x)).flatten(1).all(dim=1)
    assert 16 < int(same.sum()) < 48


@pytest.mark.parametrize("spec", list(SPECS))
def test_repr_parses_back_to_the_same_augmentation(spec: str) -> None:
    aug = parse_spec(spec, scope="timeseries")
    aug = aug.augmentation if isinstance(aug, RandomApply) else aug  # its repr is the core's
    assert repr(parse_spec(repr(aug), scope="timeseries")) == repr(aug)


def test_view_generator_reproduces_seeded_views() -> None:
    views = ViewGenerator(parse_spec("window_slice(p=0.5), time_warp, jitter", "timeseries"))
    x = _batch()
    views.manual_seed(3)
    a = views(x)
    views.manual_seed(3)
    b = views(x)
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v, atol=0, rtol=0, equal_nan=True)
    assert not torch.equal(torch.nan_to_num(a[0]), torch.nan_to_num(a[1]))


@pytest.mark.parametrize("spec", [
    "jitter(sigma=-1)", "scale(sigma=x)", "magnitude_warp(knots=1.5)", "time_warp(knots=-1)",
    "window_slice(ratio=1.5)", "window_slice(ratio=0.9-0.5)", "window_warp(scales=0-2)",
    "window_warp(ratio=2)", "permute(max_segments=0)", "time_mask(spans=0)",
    "channel_dropout(rate=2)", "crop(length=0)", "crop", "crop_resize(scale=0-2)",
])
def test_bad_arguments_raise_one_line_errors(spec: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(spec, scope="timeseries")
    assert "\n" not in str(err.value)


def test_non_series_input_is_refused() -> None:
    with pytest.raises(ValueError, match="N x C x T"):
        ts_augment.Jitter()(torch.zeros(4, 8), _gen(0))
