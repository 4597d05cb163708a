"""Views: combinators keep per-sample randomness, seeds reproduce views, the text spec parser."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from anyssl.registry import AUGMENTATIONS
from anyssl.views import (
    Compose,
    Identity,
    OneOf,
    RandomApply,
    SpecError,
    ViewGenerator,
    parse_spec,
)

SCOPE = "viewtest"


class AddNoise:
    """Adds per-sample N(0, sigma) noise."""

    def __init__(self, sigma: float = 1.0, shift: tuple[float, float] = (0.0, 0.0)) -> None:
        self.sigma, self.shift = sigma, shift

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        noise = torch.randn(x.shape, generator=generator, device=x.device)
        return x + self.sigma * noise + self.shift[0]


class Negate:
    """Multiplies by -1."""

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return -x


AUGMENTATIONS.add("noise", AddNoise, scope=SCOPE, override=True)
AUGMENTATIONS.add("negate", Negate, scope=SCOPE, override=True)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_random_apply_is_per_sample() -> None:
    x = torch.ones(400, 3)
    out = RandomApply(Negate(), p=0.3)(x, gen(0))
    flipped = (out[:, 0] < 0).float()
    assert 0.2 < flipped.mean().item() < 0.4  # each sample decides on its own
    assert torch.all((out == 1) | (out == -1))
    assert torch.all(out == out[:, :1])  # whole sample flipped, not single features


class ToFloatNegate:
    """Converts uint8 to float [0, 1] and negates (a dtype-changing augmentation)."""

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return -(x.float() / 255.0)


def test_random_apply_leaves_the_input_alone_and_converts_dtype() -> None:
    x = torch.full((50, 2), 255, dtype=torch.uint8)
    out = RandomApply(ToFloatNegate(), p=0.5)(x, gen(3))
    assert torch.equal(x, torch.full((50, 2), 255, dtype=torch.uint8))  # copy, not in place
    assert out.dtype == torch.float32
    assert set(out[:, 0].tolist()) == {1.0, -1.0}  # unselected samples rescaled to [0, 1]


def test_random_apply_rejects_shape_changes() -> None:
    class Shrink:
        def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
            return x[:, :1]

    with pytest.raises(ValueError, match="shape-preserving"):
        RandomApply(Shrink(), p=0.5)(torch.ones(64, 2), gen(0))


def test_random_apply_bounds() -> None:
    x = torch.ones(8, 2)
    assert torch.equal(RandomApply(Negate(), p=0.0)(x, gen(0)), x)
    assert torch.equal(RandomApply(Negate(), p=1.0)(x, gen(0)), -x)
    with pytest.raises(ValueError, match="probability"):
        RandomApply(Negate(), p=1.5)


def test_one_of_picks_per_sample_with_weights() -> None:
    x = torch.ones(1000, 1)
    out = OneOf([Negate(), Identity()], p=[0.75, 0.25])(x, gen(1))
    assert 0.7 < (out < 0).float().mean().item() < 0.8


def test_compose_applies_in_order() -> None:
    x = torch.arange(4.0).view(2, 2)
    out = Compose([Negate(), AddNoise(sigma=0.0, shift=(2.0, 2.0))])(x)
    assert torch.equal(out, -x + 2.0)


def test_view_generator_seed_reproduces_and_views_differ() -> None:
    vg = ViewGenerator(AddNoise(), n_views=3)
    x = torch.zeros(5, 4)
    vg.manual_seed(7)
    a = vg(x)
    vg.manual_seed(7)
    b = vg(x)
    assert len(a) == 3
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=False))
    assert not torch.equal(a[0], a[1])  # each view draws fresh parameters
    vg.manual_seed(8)
    assert not torch.equal(vg(x)[0], a[0])


def test_view_generator_asymmetric_pipelines() -> None:
    vg = ViewGenerator([Identity(), Negate()])
    x = torch.ones(2, 2)
    v1, v2 = vg(x)
    assert torch.equal(v1, x) and torch.equal(v2, -x)


def test_view_generator_needs_two_views() -> None:
    with pytest.raises(ValueError, match="at least 2 views"):
        ViewGenerator(Identity(), n_views=1)


def test_parse_spec_builds_pipeline() -> None:
    pipe = parse_spec("noise(sigma=0.5, shift=1-2), negate(p=0.5), negate | noise", SCOPE)
    assert isinstance(pipe, Compose)
    first, second, third = pipe.augmentations
    assert isinstance(first, AddNoise) and first.sigma == 0.5 and first.shift == (1.0, 2.0)
    assert isinstance(second, RandomApply) and second.p == 0.5
    assert isinstance(third, OneOf) and len(third.augmentations) == 2


def test_parse_spec_negative_ranges() -> None:
    aug = parse_spec("noise(shift=-0.5-0.5)", SCOPE)
    assert isinstance(aug, AddNoise) and aug.shift == (-0.5, 0.5)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("noise, negatee", r"negatee.*did you mean 'negate'.*valid: identity, negate, noise"),
        ("noise(sigmaa=1)", r"noise\(sigmaa=1\).*takes sigma, shift and p"),
        ("noise(sigma)", r"expected key=value"),
        ("noise((", r"unbalanced"),
        ("noise,,negate", r"empty item"),
        ("", r"empty augmentation spec"),
        ("negate(p=2)", r"bad value in 'negate\(p=2\)'"),
    ],
)
def test_bad_specs_name_the_token(spec: str, expected: str) -> None:
    with pytest.raises(SpecError, match=expected):
        parse_spec(spec, SCOPE)
