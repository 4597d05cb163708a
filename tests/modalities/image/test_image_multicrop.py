"""Image multi-crop and the 2021 methods' recipes: view counts, sizes, per-sample randomness on
the embedded digits, and the papers' numbers (DINO's DataAugmentationDINO, SwAV's multi-crop)."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
import torch

from anyssl.build import build_views
from anyssl.modalities.image.blur import GaussianBlur
from anyssl.modalities.image.color import ColorJitter, Solarize
from anyssl.modalities.image.geometry import RandomResizedCrop
from anyssl.modalities.image.recipes import image_recipe, local_size
from anyssl.modality import get_modality
from anyssl.multicrop import MultiCrop
from anyssl.views import Compose, RandomApply, parse_spec

TWO_VIEW = ["simsiam", "barlowtwins", "vicreg", "mocov3", "nnclr"]


@pytest.fixture(scope="module")
def digits() -> tuple[object, torch.Tensor]:
    mod = get_modality("image")
    ds = mod.dataset(None, "train")
    return ds, torch.stack([ds[i][0] for i in range(6)])  # 6 x 1 x 32 x 32 uint8


@pytest.mark.parametrize("method,n_views,n_global", [
    *[(m, 2, 2) for m in TWO_VIEW], ("dino", 8, 2), ("swav", 8, 2)])
def test_views_on_digits(digits: tuple[object, torch.Tensor], method: str, n_views: int,
                         n_global: int) -> None:
    ds, x = digits
    views = build_views(get_modality("image"), method, ds)
    assert (views.n_views, views.n_global) == (n_views, n_global)
    views.manual_seed(0)
    out = views(x)
    sizes = [tuple(v.shape) for v in out]
    assert sizes == [(6, 1, 32, 32)] * n_global + [(6, 1, 18, 18)] * (n_views - n_global)
    for a, b in itertools.pairwise(out):
        if a.shape == b.shape:
            assert not torch.equal(a, b)  # every view draws again
    crops = out[-1]
    same = [torch.equal(crops[0], crops[i]) for i in range(1, 6)]
    assert not any(same)  # per-sample crops, not one box for the batch
    views.manual_seed(0)
    assert all(torch.equal(a, b) for a, b in zip(out, views(x), strict=True))


def _steps(spec: str) -> list:
    pipe = parse_spec(spec, "image")
    assert isinstance(pipe, Compose)
    return [(s.augmentation, s.p) if isinstance(s, RandomApply) else (s, 1.0)
            for s in pipe.augmentations]


def _prob(spec: str, kind: type) -> float:
    return next((p for a, p in _steps(spec) if isinstance(a, kind)), 0.0)


def _crop(spec: str) -> RandomResizedCrop:
    crop = _steps(spec)[0][0]
    assert isinstance(crop, RandomResizedCrop)
    return crop


def test_dino_recipe_is_data_augmentation_dino_at_224() -> None:
    r = image_recipe("dino", SimpleNamespace(encoder_kwargs={"image_size": 224}))
    assert isinstance(r, MultiCrop) and (r.n_global, r.n_local, r.local_size) == (2, 8, 96)
    g1, g2, *local = r.specs()
    assert len(local) == 8 and isinstance(g1, str) and isinstance(g2, str)
    assert isinstance(local[0], str)
    assert _crop(g1).scale == (0.4, 1.0) and _crop(local[0]).scale == (0.05, 0.4)
    assert _crop(local[0]).size == (96, 96) and _crop(g1).flip == 0.5
    assert (_prob(g1, GaussianBlur), _prob(g2, GaussianBlur), _prob(local[0], GaussianBlur)) == (
        1.0, 0.1, 0.5)
    assert (_prob(g1, Solarize), _prob(g2, Solarize), _prob(local[0], Solarize)) == (0, 0.2, 0)
    jitter = next(a for a, p in _steps(local[0]) if isinstance(a, ColorJitter))
    assert jitter.saturation == (0.8, 1.2) and _prob(local[0], ColorJitter) == 0.8


def test_swav_recipe_is_swav_multicrop_at_224() -> None:
    r = image_recipe("swav", SimpleNamespace(encoder_kwargs={"image_size": 224}))
    assert isinstance(r, MultiCrop) and (r.n_global, r.n_local, r.local_size) == (2, 6, 96)
    g1, g2, local = r.specs()[0], r.specs()[1], r.specs()[2]
    assert g1 == g2 and isinstance(g1, str) and isinstance(local, str)
    assert _crop(g1).scale == (0.14, 1.0) and _crop(local).scale == (0.05, 0.14)
    jitter = next(a for a, p in _steps(g1) if isinstance(a, ColorJitter))
    assert jitter.brightness == pytest.approx((0.2, 1.8))  # strength 1: 0.8 and 0.2
    assert jitter.hue == pytest.approx((-0.2, 0.2))
    assert _prob(g1, GaussianBlur) == _prob(local, GaussianBlur) == 0.5


@pytest.mark.parametrize("method,same_as", [
    ("simsiam", "mocov2"), ("barlowtwins", "byol"), ("vicreg", "byol"), ("nnclr", "byol"),
    ("mocov3", "byol")])
@pytest.mark.parametrize("size", [32, 224])
def test_two_view_methods_take_their_papers_recipe(method: str, same_as: str, size: int) -> None:
    ds = SimpleNamespace(encoder_kwargs={"image_size": size})
    assert image_recipe(method, ds) == image_recipe(same_as, ds)


@pytest.mark.parametrize("size,want", [(224, 96), (32, 18), (96, 41), (16, 9)])
def test_local_size(size: int, want: int) -> None:
    assert local_size(size) == want
