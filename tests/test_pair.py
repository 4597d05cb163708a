"""PairEncoder (two towers, primary side for the core evaluation) and KeyedViews (one keyed
view with per-key, per-sample randomness)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from anyssl.eval.embed import embed
from anyssl.pair import KeyedViews, PairEncoder
from anyssl.registry import AUGMENTATIONS
from anyssl.spec import SpecError
from anyssl.types import ViewSource


class Tower(nn.Module):
    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.net = nn.Linear(in_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Noise:
    """Adds per-sample gaussian noise of scale ``sigma`` drawn from the generator."""

    def __init__(self, sigma: float = 1.0) -> None:
        self.sigma = sigma

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return x + self.sigma * torch.randn(x.shape, generator=generator, device=x.device)


AUGMENTATIONS.add("pairtest_noise", Noise, scope="pairtest", override=True)


def _batch(n: int = 6) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"image": torch.randn(n, 4, generator=g), "text": torch.randn(n, 3, generator=g),
            "id": torch.arange(n)}


def _encoder(primary: str | None = None) -> PairEncoder:
    torch.manual_seed(0)
    return PairEncoder({"image": Tower(4, 5), "text": Tower(3, 7)}, primary=primary)


def test_pair_encoder_keeps_order_and_uses_the_primary_tower() -> None:
    enc, x = _encoder(), _batch()
    assert enc.keys == ("image", "text") and enc.primary == "image" and enc.out_dim == 5
    assert list(enc.towers) == ["image", "text"] and enc.out_dims == {"image": 5, "text": 7}
    torch.testing.assert_close(enc(x), enc.tower("image")(x["image"]))
    torch.testing.assert_close(enc.encode("text", x["text"]), enc.towers["text"](x["text"]))
    assert enc.encode("text", x["text"]).shape == (6, 7)
    other = _encoder(primary="text")
    assert other.keys == ("image", "text") and other.out_dim == 7
    torch.testing.assert_close(other(x), other.tower("text")(x["text"]))


def test_pair_encoder_state_dict_names_the_towers() -> None:
    keys = list(_encoder().state_dict())
    assert keys == ["towers.image.net.weight", "towers.image.net.bias",
                    "towers.text.net.weight", "towers.text.net.bias"]


def test_core_embed_sees_the_primary_tower() -> None:
    enc, x = _encoder(), _batch(10)
    data = [({"image": x["image"][i], "text": x["text"][i]}, i % 3) for i in range(10)]
    feats, labels = embed(enc, data, batch_size=4)  # type: ignore[arg-type]
    with torch.no_grad():
        want = enc.tower("image")(x["image"]).numpy()
    assert feats.shape == (10, 5) and list(labels) == [i % 3 for i in range(10)]
    assert abs(feats - want).max() < 1e-6


def test_compile_compiles_each_tower(monkeypatch) -> None:
    enc, calls = _encoder(), []
    for key in enc.keys:
        monkeypatch.setattr(enc.tower(key), "compile", lambda *a, key=key, **kw: calls.append(
            (key, kw)))
    enc.compile(dynamic=False)
    assert calls == [("image", {"dynamic": False}), ("text", {"dynamic": False})]


@pytest.mark.parametrize(
    "towers",
    [
        {"image": Tower(4, 5)},
        {"a": Tower(1, 2), "b": Tower(1, 2), "c": Tower(1, 2)},
        {"image": Tower(4, 5), "text": nn.Linear(3, 7)},  # no out_dim
        {"image": Tower(4, 5), "te.xt": Tower(3, 7)},  # not a module name
    ],
)
def test_pair_encoder_rejects_bad_towers(towers) -> None:
    with pytest.raises(ValueError):
        PairEncoder(towers)


def test_pair_encoder_bad_keys_and_inputs() -> None:
    with pytest.raises(ValueError, match="primary"):
        PairEncoder({"image": Tower(4, 5), "text": Tower(3, 7)}, primary="audio")
    enc = _encoder()
    with pytest.raises(ValueError, match="'image'"):
        enc({"text": torch.zeros(2, 3)})
    with pytest.raises(ValueError, match="dict batch"):
        enc(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="towers are"):
        enc.encode("audio", torch.zeros(2, 4))


def test_keyed_views_applies_each_pipeline_and_passes_the_rest() -> None:
    views: ViewSource = KeyedViews({"image": Noise(1.0), "text": None})
    x = _batch()
    before = {k: v.clone() for k, v in x.items()}
    out = views(x)
    assert views.n_views == 1 and isinstance(out, list) and len(out) == 1
    (view,) = out
    assert set(view) == {"image", "text", "id"}
    assert view["text"] is x["text"] and view["id"] is x["id"]
    assert view["image"].shape == x["image"].shape
    assert not torch.allclose(view["image"], x["image"], atol=0.1)
    assert all(torch.equal(x[k], before[k]) for k in x)  # the batch itself is untouched


def test_keyed_views_seeding_is_reproducible_and_per_sample() -> None:
    x = {"image": torch.zeros(8, 4), "text": torch.zeros(8, 3)}
    views = KeyedViews({"image": Noise(), "text": Noise()})
    views.manual_seed(3)
    first = views(x)[0]
    views.manual_seed(3)
    again = views(x)[0]
    assert all(torch.equal(first[k], again[k]) for k in x)
    assert not torch.equal(views(x)[0]["image"], first["image"])  # the stream moves on
    noise = first["image"]
    assert not torch.allclose(noise[0], noise[1])  # each sample draws its own parameters
    views.manual_seed(4)
    assert not torch.equal(views(x)[0]["image"], first["image"])


def test_keyed_views_keys_draw_separate_streams() -> None:
    x = {"image": torch.zeros(8, 4), "text": torch.zeros(8, 4)}
    both = KeyedViews({"image": Noise(), "text": Noise()})
    image_only = KeyedViews({"image": Noise(), "text": None})
    both.manual_seed(5)
    image_only.manual_seed(5)
    a, b = both(x)[0], image_only(x)[0]
    torch.testing.assert_close(a["image"], b["image"])  # the text pipeline does not shift it
    assert not torch.allclose(a["image"], a["text"])  # nor do the keys share one stream


def test_keyed_views_parses_specs_in_each_keys_scope() -> None:
    views = KeyedViews({"image": "pairtest_noise(sigma=0.5)", "text": "identity"},
                       scopes={"image": "pairtest"})
    assert isinstance(views.pipelines["image"], Noise) and views.pipelines["image"].sigma == 0.5
    x = {"image": torch.zeros(4, 2), "text": torch.ones(4, 3)}
    view = views(x)[0]
    assert torch.equal(view["text"], x["text"]) and view["image"].abs().sum() > 0
    assert repr(views).startswith("KeyedViews(image: ") and "text: identity" in repr(views)
    with pytest.raises(SpecError, match="pairtest_noise"):  # unscoped: the name is unknown
        KeyedViews({"image": "pairtest_noise"})


def test_keyed_views_bad_inputs() -> None:
    views = KeyedViews({"image": Noise(), "text": None})
    with pytest.raises(ValueError, match="'image'"):
        views({"text": torch.zeros(2, 3)})
    with pytest.raises(ValueError, match="dict batch"):
        views(torch.zeros(2, 3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pipeline"):
        KeyedViews({"image": 3})  # type: ignore[dict-item]
