"""tsaug wrappers: shape, seeded reproducibility, parity with calling tsaug directly, NaN
padding and missing values, spec use and errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import anyssl.modalities.timeseries.tsaug_augment as ts_tsaug
from anyssl.registry import AUGMENTATIONS
from anyssl.views import RandomApply, SpecError, parse_spec

tsaug = pytest.importorskip("tsaug")

# spec -> (tsaug class, its kwargs, output length or None, random)
SPECS: dict[str, tuple[str, dict[str, object], int | None, bool]] = {
    "tsaug_add_noise": ("AddNoise", {}, None, True),
    "tsaug_add_noise(scale=0.01-0.05,normalize=false)":
        ("AddNoise", {"scale": (0.01, 0.05), "normalize": False}, None, True),
    "tsaug_crop(size=12)": ("Crop", {"size": 12}, 12, True),
    "tsaug_crop(size=10-16,resize=14)": ("Crop", {"size": (10, 16), "resize": 14}, 14, True),
    "tsaug_drift": ("Drift", {}, None, True),
    "tsaug_dropout(rate=0.2)": ("Dropout", {"p": 0.2}, None, True),
    "tsaug_pool(size=3)": ("Pool", {"size": 3}, None, False),
    "tsaug_pool(size=2-5)": ("Pool", {"size": (2, 5)}, None, True),
    "tsaug_quantize(n_levels=5-12)": ("Quantize", {"n_levels": (5, 12)}, None, True),
    "tsaug_resize(size=40)": ("Resize", {"size": 40}, 40, False),
    "tsaug_reverse": ("Reverse", {}, None, False),
    "tsaug_time_warp": ("TimeWarp", {}, None, True),
    "tsaug_time_warp(n_speed_change=2,max_speed_ratio=2)":
        ("TimeWarp", {"n_speed_change": 2, "max_speed_ratio": 2}, None, True),
    "tsaug_convolve(size=5-9)": ("Convolve", {"size": (5, 9)}, None, True),
}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _batch(n: int = 6, c: int = 2, t: int = 32, lens: tuple[int, ...] = (32,)) -> torch.Tensor:
    x = torch.randn(n, c, t, generator=_gen(0))
    for i in range(n):
        x[i, :, lens[i % len(lens)]:] = float("nan")
    return x


def test_every_tsaug_wrapper_is_covered() -> None:
    names = {n for n in AUGMENTATIONS.names("timeseries") if n.startswith("tsaug_")}
    assert names == {s.split("(")[0] for s in SPECS}


@pytest.mark.parametrize("spec", list(SPECS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_and_dtype(spec: str, dtype: torch.dtype) -> None:
    x = _batch(lens=(32, 20)).to(dtype)
    out = parse_spec(spec, scope="timeseries")(x, _gen(0))
    assert out.shape == (6, 2, SPECS[spec][2] or 32) and out.dtype == dtype


@pytest.mark.parametrize("spec", list(SPECS))
def test_matches_tsaug_called_with_the_drawn_seed(spec: str) -> None:
    name, kwargs, _, _ = SPECS[spec]
    x = _batch()
    out = parse_spec(spec, scope="timeseries")(x, _gen(4))
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=_gen(4)))
    ref = getattr(tsaug, name)(**kwargs, seed=seed).augment(x.double().permute(0, 2, 1).numpy())
    torch.testing.assert_close(out, torch.from_numpy(ref).permute(0, 2, 1).float())


@pytest.mark.parametrize("spec", list(SPECS))
def test_seeded_reproducibility(spec: str) -> None:
    aug, x = parse_spec(spec, scope="timeseries"), _batch(lens=(32, 25))
    a, b, c = aug(x, _gen(1)), aug(x, _gen(1)), aug(x, _gen(2))
    torch.testing.assert_close(a, b, atol=0, rtol=0, equal_nan=True)
    if SPECS[spec][3]:
        assert not torch.equal(torch.nan_to_num(a), torch.nan_to_num(c))


@pytest.mark.parametrize("spec", [s for s, v in SPECS.items() if v[2] is None])
def test_padding_stays_at_the_end(spec: str) -> None:
    x = _batch(lens=(32, 20, 27))
    out = parse_spec(spec, scope="timeseries")(x, _gen(3))
    assert torch.equal(torch.isnan(out), torch.isnan(x))


def test_reverse_acts_on_each_valid_part() -> None:
    x = _batch(lens=(32, 20))
    x[0, 1, 4] = float("nan")  # an interior missing value moves with its step
    out = parse_spec("tsaug_reverse", scope="timeseries")(x, _gen(0))
    for i in range(6):
        length = 32 if i % 2 == 0 else 20
        torch.testing.assert_close(out[i, :, :length], x[i, :, :length].flip(-1), equal_nan=True)
        assert torch.isnan(out[i, :, length:]).all()


def test_interior_missing_values_follow_the_series() -> None:
    x = _batch()
    x[0, 0, 10:13] = float("nan")
    noisy = parse_spec("tsaug_add_noise", scope="timeseries")(x, _gen(0))
    assert torch.equal(torch.isnan(noisy), torch.isnan(x))
    resized = parse_spec("tsaug_resize(size=64)", scope="timeseries")(x, _gen(0))
    missing = torch.isnan(resized[0, 0]).nonzero().flatten()
    assert 4 <= len(missing) <= 8 and 19 <= int(missing[0]) <= 22  # the gap, stretched 2x
    assert not torch.isnan(resized[0, 1]).any() and not torch.isnan(resized[1:]).any()
    warped = parse_spec("tsaug_time_warp", scope="timeseries")(x, _gen(0))
    assert torch.isnan(warped[0, 0]).any() and not torch.isnan(warped[1:]).any()


def test_spec_p_is_random_apply_and_dropout_rate_is_tsaugs_p() -> None:
    aug = parse_spec("tsaug_reverse(p=0.5)", scope="timeseries")
    assert isinstance(aug, RandomApply) and aug.p == 0.5
    aug = parse_spec("tsaug_dropout(rate=0.3,p=0.5)", scope="timeseries")
    assert isinstance(aug, RandomApply)
    assert isinstance(aug.augmentation, ts_tsaug.TsaugAugmentation)
    assert aug.augmentation.augmenter.p == 0.3


def test_crop_of_a_too_short_series_says_how_to_fix_it() -> None:
    aug = parse_spec("tsaug_crop(size=24)", scope="timeseries")
    with pytest.raises(ValueError, match=r"size=24\).*one of 20; lower size= to at most 20"):
        aug(_batch(lens=(32, 20)), _gen(0))


@pytest.mark.parametrize("spec", ["tsaug_crop(size=8-12)", "tsaug_time_warp(max_speed_ratio=0.5)",
                                  "tsaug_add_noise(distr=cauchy)", "tsaug_resize(size=0)",
                                  "tsaug_reverse(size=3)"])
def test_bad_arguments_raise_spec_errors(spec: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(spec, scope="timeseries")
    assert "\n" not in str(err.value)


def test_missing_tsaug_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tsaug", None)
    with pytest.raises(ImportError, match=r"pip install 'anyssl\[timeseries\]'"):
        ts_tsaug.tsaug_reverse()


def test_numpy_core_groups_series_by_length() -> None:
    arr = np.random.default_rng(0).normal(size=(4, 10, 1))
    arr[1::2, 6:] = np.nan
    out = ts_tsaug.tsaug_reverse().augment_numpy(arr, np.array([10, 6, 10, 6]), seed=0)
    np.testing.assert_array_equal(out[0::2], arr[0::2, ::-1])
    np.testing.assert_array_equal(out[1::2, :6], arr[1::2, 5::-1])
    assert np.isnan(out[1::2, 6:]).all()
