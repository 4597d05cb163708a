"""View recipes: they parse, make two views of the right size, and carry the papers' numbers."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from anyssl.modalities.image.blur import GaussianBlur
from anyssl.modalities.image.color import ColorJitter, Grayscale, Solarize
from anyssl.modalities.image.geometry import RandomResizedCrop
from anyssl.modalities.image.recipes import image_recipe
from anyssl.views import Compose, RandomApply, ViewGenerator, parse_spec


def _ds(size: int, channels: int = 3) -> SimpleNamespace:
    return SimpleNamespace(encoder_kwargs={"in_channels": channels, "image_size": size})


def _steps(spec: str) -> list:
    pipe = parse_spec(spec, scope="image")
    assert isinstance(pipe, Compose)
    return pipe.augmentations


def _lookup(steps: list, kind: type) -> tuple[Any, float] | None:
    for s in steps:
        inner, p = (s.augmentation, s.p) if isinstance(s, RandomApply) else (s, 1.0)
        if isinstance(inner, kind):
            return inner, p
    return None


def _find(steps: list, kind: type) -> tuple[Any, float]:
    """The augmentation of ``kind`` in ``steps`` and its probability (it must be there)."""
    found = _lookup(steps, kind)
    assert found is not None, f"no {kind.__name__} in {steps}"
    return found


def _absent(steps: list, kind: type) -> bool:
    return _lookup(steps, kind) is None


@pytest.mark.parametrize("method", ["simclr", "mocov1", "mocov2", "byol", "mocov3", "other"])
@pytest.mark.parametrize("size,channels", [(32, 1), (32, 3), (96, 3)])
def test_recipes_make_two_views_of_the_right_size(method: str, size: int, channels: int) -> None:
    specs = image_recipe(method, _ds(size, channels))
    assert len(specs) == 2 and all(isinstance(s, str) for s in specs)
    views = ViewGenerator([parse_spec(s, scope="image") for s in specs])
    views.manual_seed(0)
    x = torch.randint(0, 256, (4, channels, size + 8, size + 4), dtype=torch.uint8)
    out = views(x)
    assert len(out) == 2
    for v in out:
        assert v.shape == (4, channels, size, size) and v.dtype == torch.float32
        assert float(v.min()) >= 0 and float(v.max()) <= 1
    assert not torch.equal(out[0], out[1])


def test_simclr_cifar_and_imagenet_settings() -> None:
    small = _steps(image_recipe("simclr", _ds(32))[0])
    crop, p = _find(small, RandomResizedCrop)
    assert p == 1.0 and crop.scale == (0.08, 1.0) and crop.flip == 0.5 and crop.size == (32, 32)
    jitter, p = _find(small, ColorJitter)
    assert p == 0.8 and jitter.brightness == pytest.approx((0.6, 1.4))  # strength 0.5
    assert _find(small, Grayscale)[1] == 0.2
    assert _absent(small, GaussianBlur)  # SimCLR drops blur on CIFAR
    big = _steps(image_recipe("simclr", _ds(224))[0])
    assert _find(big, ColorJitter)[0].brightness == pytest.approx((0.2, 1.8))  # strength 1.0
    blur, p = _find(big, GaussianBlur)
    assert p == 0.5 and blur.sigma == (0.1, 2.0)


def test_mocov1_and_mocov2() -> None:
    v1 = _steps(image_recipe("mocov1", _ds(224))[0])
    assert _find(v1, RandomResizedCrop)[0].scale == (0.2, 1.0)
    jitter, p = _find(v1, ColorJitter)
    assert p == 1.0 and jitter.hue == pytest.approx((-0.4, 0.4))
    assert _find(v1, Grayscale)[1] == 0.2 and _absent(v1, GaussianBlur)
    v2 = _steps(image_recipe("moco-v2", _ds(224))[0])
    assert _find(v2, RandomResizedCrop)[0].scale == (0.2, 1.0)
    jitter, p = _find(v2, ColorJitter)
    assert p == 0.8 and jitter.saturation == pytest.approx((0.6, 1.4))
    assert jitter.hue == pytest.approx((-0.1, 0.1))
    assert _find(v2, GaussianBlur)[1] == 0.5


def test_byol_is_asymmetric() -> None:
    one, two = (_steps(s) for s in image_recipe("byol", _ds(224)))
    assert _find(one, GaussianBlur)[1] == 1.0 and _absent(one, Solarize)
    assert _find(two, GaussianBlur)[1] == 0.1 and _find(two, Solarize)[1] == 0.2
    jitter, p = _find(one, ColorJitter)
    assert p == 0.8 and jitter.saturation == pytest.approx((0.8, 1.2))
    assert _find(one, RandomResizedCrop)[0].scale == (0.08, 1.0)
    small = [_steps(s) for s in image_recipe("byol", _ds(32))]
    assert _absent(small[0], GaussianBlur) and _find(small[1], Solarize)[1] == 0.2


def test_unknown_method_falls_back_to_simclr() -> None:
    assert image_recipe("no-such-method", _ds(64)) == image_recipe("simclr", _ds(64))
    assert image_recipe("MoCo_V3", _ds(64)) == image_recipe("byol", _ds(64))


def test_dataset_without_image_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="image_size"):
        image_recipe("simclr", SimpleNamespace(encoder_kwargs={"in_channels": 3}))
