"""Contract tests run over every image augmentation: batch in, batch out, per-sample params,
seeded reproducibility, dtype and range, device kept, spec round trip."""

from __future__ import annotations

import pytest
import torch

import anyssl.modalities.image  # noqa: F401  (registers the augmentations)
from anyssl.registry import AUGMENTATIONS
from anyssl.types import Augmentation
from anyssl.views import parse_spec

# spec -> (output side or None for unchanged, draws per-sample randomness)
SPECS = {
    "crop(size=16,flip=0.5)": (16, True),
    "crop(size=24,scale=0.2-1.0)": (24, True),
    "flip": (None, True),
    "jitter": (None, True),
    "jitter(strength=0.5,p=0.8)": (None, True),
    "grayscale": (None, False),
    "grayscale(p=0.5)": (None, True),
    "blur": (None, True),
    "blur(sigma=0.5-3.0,kernel_size=5)": (None, True),
    "solarize": (None, False),
    "solarize(threshold=0.3,p=0.5)": (None, True),
    "center_crop(size=16)": (16, False),
}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _batch(n: int = 8, c: int = 3, h: int = 20, w: int = 28, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)


def _gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def test_every_registered_image_augmentation_is_covered() -> None:
    names = {s.split("(")[0] for s in SPECS}
    assert set(AUGMENTATIONS.names("image")) - {"identity"} <= names


@pytest.mark.parametrize("spec", list(SPECS))
@pytest.mark.parametrize("channels", [1, 3])
def test_shape_dtype_range(spec: str, channels: int) -> None:
    aug = parse_spec(spec, scope="image")
    assert isinstance(aug, Augmentation)
    x = _batch(c=channels)
    out = aug(x, _gen(0))
    side, _ = SPECS[spec]
    expect = (8, channels, side, side) if side else tuple(x.shape)
    assert tuple(out.shape) == expect
    assert out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


@pytest.mark.parametrize("spec", list(SPECS))
def test_uint8_and_float_inputs_agree(spec: str) -> None:
    aug = parse_spec(spec, scope="image")
    x = _batch()
    a, b = aug(x, _gen(3)), aug(x.float() / 255.0, _gen(3))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("spec", list(SPECS))
def test_seeded_reproducibility(spec: str) -> None:
    aug = parse_spec(spec, scope="image")
    x = _batch()
    torch.testing.assert_close(aug(x, _gen(7)), aug(x, _gen(7)), atol=0, rtol=0)
    if SPECS[spec][1]:
        assert not torch.equal(aug(x, _gen(7)), aug(x, _gen(8)))


@pytest.mark.parametrize("spec", [s for s, (_, rnd) in SPECS.items() if rnd])
def test_samples_draw_their_own_params(spec: str) -> None:
    aug = parse_spec(spec, scope="image")
    x = _batch(n=1, seed=1).expand(16, -1, -1, -1).contiguous()  # 16 copies of one image
    out = aug(x, _gen(0))
    distinct = {tuple(o.flatten()[::7].tolist()) for o in out}
    assert len(distinct) > 1


@pytest.mark.parametrize("spec", list(SPECS))
@pytest.mark.parametrize("device", DEVICES)
def test_device_is_kept(spec: str, device: str) -> None:
    aug = parse_spec(spec, scope="image")
    x = _batch().to(device)
    assert aug(x, _gen(0, device)).device == x.device
    assert aug(x).device == x.device  # no generator: the global RNG


@pytest.mark.parametrize("spec", [s for s in SPECS if "p=" not in s])
def test_repr_is_a_spec_that_parses_back(spec: str) -> None:
    aug = parse_spec(spec, scope="image")
    again = parse_spec(repr(aug), scope="image")
    assert repr(again) == repr(aug)
    x = _batch()
    torch.testing.assert_close(aug(x, _gen(5)), again(x, _gen(5)), atol=0, rtol=0)


@pytest.mark.parametrize("spec", list(SPECS))
def test_bad_batches_are_rejected(spec: str) -> None:
    aug = parse_spec(spec, scope="image")
    with pytest.raises(ValueError, match="B x C x H x W"):
        aug(_batch()[0], _gen(0))  # one image, not a batch
    with pytest.raises(ValueError, match="dtype"):
        aug(_batch().to(torch.int32), _gen(0))
