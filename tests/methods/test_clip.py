"""CLIP: projections + clip_loss with a learnable, clamped logit scale over two towers."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anyssl.methods.clip import CLIP
from anyssl.objectives_pair import clip_loss
from anyssl.pair import KeyedViews, PairEncoder
from anyssl.registry import METHODS
from anyssl.train.optim import build_optimizer
from anyssl.views import ViewGenerator

A_DIM, B_DIM = 8, 5


class Tower(nn.Module):
    """A linear tower over float vectors. N x in_dim -> N x out_dim."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.net = nn.Sequential(nn.Linear(in_dim, 16), nn.ReLU(), nn.Linear(16, out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Noise:
    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return x + 0.05 * torch.randn(x.shape, generator=generator, device=x.device)


def _clip(seed: int = 0, **kw) -> CLIP:
    torch.manual_seed(seed)
    encoder = PairEncoder({"image": Tower(A_DIM, 12), "text": Tower(B_DIM, 10)})
    views = KeyedViews({"image": Noise(), "text": None})
    views.manual_seed(seed)
    return CLIP(encoder, views, **{"embed_dim": 6, **kw})


def _pairs(n: int, seed: int = 0) -> tuple[dict[str, Tensor], Tensor]:
    """Paired data: text = a fixed random linear map of the image vector + noise."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(A_DIM, B_DIM, generator=torch.Generator().manual_seed(99))
    a = torch.randn(n, A_DIM, generator=g)
    b = a @ mix + 0.1 * torch.randn(n, B_DIM, generator=g)
    return {"image": a, "text": b}, torch.full((n,), -1, dtype=torch.long)


def test_registered_with_paper_defaults() -> None:
    assert METHODS.get("clip") is CLIP
    method = _clip()
    assert method.keys == ("image", "text")
    torch.testing.assert_close(method.scale(), torch.tensor(1 / 0.07))
    for key, width in (("image", 12), ("text", 10)):
        proj = method.projections[key]
        assert proj.bias is None and proj.weight.shape == (6, width)
    d = CLIP.train_defaults
    assert (d["optimizer"], d["lr"], d["weight_decay"], d["schedule"]) == ("adamw", 5e-4, 0.2,
                                                                           "cosine")


def test_loss_is_clip_loss_of_the_normalized_projections() -> None:
    method, batch = _clip(), _pairs(16)
    ref = copy.deepcopy(method)
    method.views.manual_seed(1)
    ref.views.manual_seed(1)
    loss, logs = method.training_step(batch)
    view = ref.views(batch[0])[0]
    a = F.normalize(ref.encoder.tower("image")(view["image"]) @ ref.projections["image"].weight.T,
                    dim=1)
    b = F.normalize(ref.encoder.tower("text")(batch[0]["text"]) @ ref.projections["text"].weight.T,
                    dim=1)
    torch.testing.assert_close(loss, clip_loss(a, b, 1 / 0.07))
    torch.testing.assert_close(method.encode("text", batch[0]["text"]), b)
    assert set(logs) == {"loss", "logit_scale", "acc"}
    for value in logs.values():
        assert value.dim() == 0 and not value.requires_grad and value.dtype == torch.float32
    sims = a @ b.T
    target = torch.arange(16)
    acc = ((sims.argmax(1) == target).float().mean() + (sims.argmax(0) == target).float().mean())
    torch.testing.assert_close(logs["acc"], acc / 2)
    torch.testing.assert_close(logs["logit_scale"], torch.tensor(1 / 0.07))


def test_logit_scale_is_clamped_in_the_forward_and_after_each_step() -> None:
    method = _clip(max_logit_scale=50.0)
    with torch.no_grad():
        method.logit_scale.fill_(math.log(80.0))
    torch.testing.assert_close(method.scale(), torch.tensor(50.0))
    method.on_step_end(0, 10)
    torch.testing.assert_close(method.logit_scale.detach(), torch.tensor(math.log(50.0)))
    with torch.no_grad():
        method.logit_scale.fill_(-1.0)
    method.on_step_end(1, 10)
    assert method.logit_scale.item() == 0.0
    default = _clip()
    with torch.no_grad():
        default.logit_scale.fill_(10.0)
    torch.testing.assert_close(default.scale(), torch.tensor(100.0))


def test_logit_scale_is_not_weight_decayed() -> None:
    method = _clip()
    opt = build_optimizer("adamw", method, lr=1e-3, weight_decay=0.2)
    group = next(g for g in opt.param_groups if any(p is method.logit_scale for p in g["params"]))
    assert group["weight_decay"] == 0.0
    proj = method.projections["image"].weight
    assert any(any(p is proj for p in g["params"]) and g["weight_decay"] == 0.2
               for g in opt.param_groups)


def test_training_raises_in_batch_retrieval_well_above_chance() -> None:
    method = _clip(embed_dim=16)
    opt = torch.optim.AdamW(method.parameters(), lr=1e-2, weight_decay=0.0)
    test_x, _ = _pairs(64, seed=123)

    def accuracy() -> float:
        with torch.no_grad():
            a, b = method.encode("image", test_x["image"]), method.encode("text", test_x["text"])
            target = torch.arange(64)
            sims = a @ b.T
            return float(((sims.argmax(1) == target).float().mean()
                          + (sims.argmax(0) == target).float().mean()) / 2)

    before = accuracy()
    for step in range(150):
        loss, logs = method.training_step(_pairs(64, seed=step))
        opt.zero_grad()
        loss.backward()
        opt.step()
        method.on_step_end(step, 150)
    assert before < 0.3 and accuracy() > 0.8 and logs["acc"] > 0.8  # chance: 1/64


def test_keys_put_the_primary_side_first() -> None:
    enc = PairEncoder({"text": Tower(B_DIM, 10), "image": Tower(A_DIM, 12)}, primary="image")
    method = CLIP(enc, KeyedViews({"image": None}), embed_dim=4)
    assert method.keys == ("image", "text")
    assert method.projections["text"].weight.shape == (4, 10)


def test_needs_a_pair_encoder_and_one_view() -> None:
    views = KeyedViews({"image": None})
    enc = Tower(A_DIM, 4)
    with pytest.raises(ValueError, match="two-tower encoder"):
        CLIP(enc, views)
    pair = PairEncoder({"image": Tower(A_DIM, 12), "text": Tower(B_DIM, 10)})
    with pytest.raises(ValueError, match="one-view"):
        CLIP(pair, ViewGenerator(Noise(), n_views=2))
    with pytest.raises(ValueError, match="init_temperature"):
        CLIP(pair, views, init_temperature=0.0)
    with pytest.raises(ValueError, match="no side"):
        CLIP(pair, views).encode("audio", torch.zeros(2, 3))


def test_state_dict_round_trip() -> None:
    method, batch = _clip(seed=0), _pairs(16)
    opt = torch.optim.AdamW(method.parameters(), lr=1e-2)
    loss, _ = method.training_step(batch)
    loss.backward()
    opt.step()
    method.on_step_end(0, 10)
    other = _clip(seed=1)
    other.load_state_dict(copy.deepcopy(method.state_dict()))
    assert "logit_scale" in other.state_dict() and "projections.text.weight" in other.state_dict()
    for (k, a), (k2, b) in zip(method.state_dict().items(), other.state_dict().items(),
                               strict=True):
        assert k == k2 and torch.equal(a, b), k
    method.views.manual_seed(7)
    other.views.manual_seed(7)
    torch.testing.assert_close(method.training_step(batch)[0], other.training_step(batch)[0])


def test_bfloat16_autocast_gives_a_float32_loss() -> None:
    method, batch = _clip(), _pairs(16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, logs = method(batch)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert all(v.dtype == torch.float32 for v in logs.values())
    loss.backward()
    assert method.logit_scale.grad is not None
    assert all(p.grad is not None for p in method.encoder.parameters())
