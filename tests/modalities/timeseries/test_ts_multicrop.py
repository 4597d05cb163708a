"""Time-series multi-crop: short_crop's windows, and every 2021 method's views on GunPoint."""

from __future__ import annotations

import math

import pytest
import torch

from anyssl.build import build_views
from anyssl.modalities.timeseries.augment_local import ShortCrop
from anyssl.modalities.timeseries.series import lengths
from anyssl.modality import get_modality


def test_short_crop_keeps_contiguous_windows_of_the_drawn_share() -> None:
    t = 40
    x = torch.arange(t, dtype=torch.float32).repeat(50, 2, 1)  # N x C x T, x[..., k] = k
    x[:10, :, 30:] = float("nan")  # ten series of length 30
    out = ShortCrop(scale=(0.2, 0.5))(x, torch.Generator().manual_seed(0))
    assert out.shape == (50, 2, math.ceil(0.5 * t))
    lens, width = lengths(x), lengths(out)
    share = width.double() / lens.double()
    assert bool((share >= 0.2 - 1 / 30).all() and (share <= 0.5 + 1 / 30).all())
    assert len(set(width.tolist())) > 3  # each series draws its share
    for i in range(50):
        w = int(width[i])
        seg = out[i, 0, :w]
        assert torch.equal(seg, seg[0] + torch.arange(w, dtype=torch.float32))  # contiguous
        assert float(seg[-1]) < float(lens[i])  # inside the series' valid part
        assert torch.isnan(out[i, :, w:]).all()
        assert torch.allclose(out[i, 0], out[i, 1], equal_nan=True)  # one window, all channels
    starts = out[:, 0, 0]
    assert len(set(starts.tolist())) > 5  # per-series start


def test_short_crop_bad_scale() -> None:
    for bad in (0.0, (0.5, 0.2), 1.5):
        with pytest.raises(ValueError, match="short_crop scale"):
            ShortCrop(scale=bad)


@pytest.fixture(scope="module")
def gunpoint() -> tuple[object, torch.Tensor]:
    ds = get_modality("timeseries").dataset(None, "train")
    return ds, torch.stack([ds[i][0] for i in range(6)])  # 6 x 1 x 150


@pytest.mark.parametrize("method,n_views", [
    ("simsiam", 2), ("barlowtwins", 2), ("vicreg", 2), ("mocov3", 2), ("nnclr", 2),
    ("dino", 8), ("swav", 8)])
def test_views_on_gunpoint(gunpoint: tuple[object, torch.Tensor], method: str,
                           n_views: int) -> None:
    ds, x = gunpoint
    views = build_views(get_modality("timeseries"), method, ds)
    assert (views.n_views, views.n_global) == (n_views, 2)
    views.manual_seed(0)
    out = views(x)
    assert [v.shape[-1] for v in out] == [150, 150] + [60] * (n_views - 2)  # 0.4 x 150
    assert not torch.isnan(out[0]).any()
    for v in out[2:]:
        w = lengths(v)
        assert bool((w >= 15).all() and (w <= 60).all()) and len(set(w.tolist())) > 1
    views.manual_seed(0)
    assert all(torch.allclose(a, b, rtol=0, atol=0, equal_nan=True)
               for a, b in zip(out, views(x), strict=True))


def test_local_size_override_and_bad_size(gunpoint: tuple[object, torch.Tensor]) -> None:
    ds, x = gunpoint
    mod = get_modality("timeseries")
    views = build_views(mod, "dino", ds, views="2+3x0.2")
    assert [v.shape[-1] for v in views(x)] == [150, 150, 30, 30, 30]
    with pytest.raises(ValueError, match="share of each series in \\(0, 1\\]"):
        build_views(mod, "swav", ds, views="2+3x16")
