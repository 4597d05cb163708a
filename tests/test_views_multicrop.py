"""Multi-crop views: ViewGenerator's n_global, the MultiCrop recipe, ``--views G+L[xS]`` parsing
and build_views' errors when a recipe or a modality has no local views."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import Tensor

from anyssl.build import build_views
from anyssl.modality import get_modality
from anyssl.multicrop import MultiCrop, parse_counts
from anyssl.registry import AUGMENTATIONS
from anyssl.views import ViewGenerator

SCOPE = "multicroptest"


class Shrink:
    """Keeps the first ``size`` features of each sample plus per-sample noise (a 'local crop')."""

    def __init__(self, size: int = 4) -> None:
        self.size = size

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        noise = torch.randn(x.shape[0], self.size, generator=generator, device=x.device)
        return x[:, : self.size] + noise

    def __repr__(self) -> str:
        return f"shrink(size={self.size})"


AUGMENTATIONS.add("shrink", Shrink, scope=SCOPE, override=True)


def _recipe(n_local: int = 3, size: int = 2) -> MultiCrop:
    return MultiCrop(("shrink(size=8)", "shrink(size=8)"), lambda s: f"shrink(size={s})",
                     n_local, size, modality=SCOPE)


@pytest.mark.parametrize("text,want", [
    ("2+6", (2, 6, None)), (" 2 + 0 ", (2, 0, None)), ("2+6x96", (2, 6, 96)),
    ("2+4x0.3", (2, 4, 0.3)), ("1+2*16", (1, 2, 16)), ("4", None), ("a; b", None),
    ("recipe:dino", None), ("2+", None), ("2+6x", None),
])
def test_parse_counts(text: str, want: tuple[int, int, Any] | None) -> None:
    got = parse_counts(text)
    assert got == want
    if got is not None and got[2] is not None:
        assert isinstance(got[2], type(want[2]))  # type: ignore[index]  # 96 int, 0.3 float


def test_view_generator_puts_global_views_first_with_their_own_size() -> None:
    views = _recipe(n_local=3, size=2).view_generator(SCOPE)
    assert (views.n_views, views.n_global) == (5, 2)
    views.manual_seed(0)
    out = views(torch.zeros(6, 10))
    assert [v.shape[1] for v in out] == [8, 8, 2, 2, 2]
    assert not torch.equal(out[2], out[3])  # each local view draws its own noise
    assert not torch.equal(out[2][0], out[2][1])  # and each sample its own
    views.manual_seed(0)
    again = views(torch.zeros(6, 10))
    assert all(torch.equal(a, b) for a, b in zip(out, again, strict=True))  # seeded: resumable
    assert repr(views) == "ViewGenerator(shrink(size=8); shrink(size=8) + 3 x shrink(size=2))"


def test_view_generator_default_and_bad_n_global() -> None:
    assert ViewGenerator(Shrink(), n_views=3).n_global == 3  # default: every view is global
    for bad in (0, 4, True, 1.5):
        with pytest.raises(ValueError, match="n_global"):
            ViewGenerator(Shrink(), n_views=3, n_global=bad)  # type: ignore[arg-type]


def test_override_changes_counts_and_local_size() -> None:
    r = _recipe().override(n_global=3, n_local=1, local_size=5)
    assert (r.n_global, r.n_local, r.local_size) == (3, 1, 5)
    assert r.specs() == ["shrink(size=8)"] * 3 + ["shrink(size=5)"]
    assert _recipe().override(n_local=0).specs() == ["shrink(size=8)"] * 2
    base = _recipe()
    assert base.override() == base  # None keeps the recipe's values


def test_multicrop_without_local_views_says_why() -> None:
    r = MultiCrop(("shrink",), modality="x", no_local="x: no local views; use --views 2+0",
                  n_global=2)
    assert r.view_generator(SCOPE).n_views == 2
    with pytest.raises(ValueError, match="x: no local views; use --views 2"):
        r.override(n_local=2)
    with pytest.raises(ValueError, match="no local views"):
        MultiCrop(("shrink",), n_local=2, modality="x")
    with pytest.raises(ValueError, match=">= 1 global"):
        MultiCrop(("shrink",), n_global=0)


def _images() -> tuple[Any, SimpleNamespace]:
    return get_modality("image"), SimpleNamespace(encoder_kwargs={"image_size": 32})


def test_build_views_reads_g_plus_l_and_the_local_size() -> None:
    mod, ds = _images()
    default = build_views(mod, "dino", ds)
    assert (default.n_views, default.n_global) == (8, 2)  # solo-learn CIFAR: 2 x 32 + 6 x 18
    views = build_views(mod, "dino", ds, views="2+3x12")
    assert (views.n_views, views.n_global) == (5, 2)
    views.manual_seed(1)
    out = views(torch.randint(0, 256, (3, 3, 40, 40), dtype=torch.uint8))
    assert [tuple(v.shape[-2:]) for v in out] == [(32, 32)] * 2 + [(12, 12)] * 3
    assert build_views(mod, "swav", ds, views="2+0").n_views == 2
    recipe = mod.recipe("swav", ds)
    assert build_views(mod, "simclr", ds, views=recipe.override(n_local=1)).n_views == 3


@pytest.mark.parametrize("method,views,aug,match", [
    ("simclr", "2+4", None, "image recipe of 'simclr' has no local views"),
    ("dino", "4", None, "give --views G\\+L"),
    ("dino", "2+4", "crop(size=8)", "either --aug"),
])
def test_build_views_errors(method: str, views: str, aug: str | None, match: str) -> None:
    mod, ds = _images()
    with pytest.raises(ValueError, match=match):
        build_views(mod, method, ds, aug, views)


def test_node_level_graphs_and_image_text_have_no_local_views() -> None:
    graph = get_modality("graph")
    node = SimpleNamespace(level="node")
    assert build_views(graph, "dino", node).n_views == 2  # the GRACE pair, no local views
    with pytest.raises(ValueError, match="node-level data has no local views"):
        build_views(graph, "dino", node, views="2+4")
    pair = get_modality("image-text")
    ds = SimpleNamespace(encoder_kwargs={"image_size": 32})
    with pytest.raises(ValueError, match=r"image-text has no local views.*--modality image"):
        pair.recipe("swav", ds)
    with pytest.raises(ValueError, match="image-text recipe of 'clip' has no local views"):
        build_views(pair, "clip", ds, views="2+4")
