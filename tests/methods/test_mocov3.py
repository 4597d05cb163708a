"""MoCo v3: heads, loss and gradients against a transcription of facebookresearch/moco-v3's
``moco/builder.py``, the rank offset of the labels, the momentum schedule of ``main_moco.py``,
and the ViT recipe keyed on the encoder's patch embedding."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
from conftest import IN_DIM, GaussianNoise, ToyEncoder
from torch import Tensor, nn

from anyssl import distributed
from anyssl.methods.mocov3 import VIT_TRAIN_DEFAULTS, MoCoV3, patch_embedding
from anyssl.registry import METHODS
from anyssl.views import ViewGenerator

SMALL: dict[str, Any] = {"hidden_dim": 32, "out_dim": 16, "momentum": 0.9}


# ---- a transcription of moco-v3 (moco/builder.py, main_moco.py) ------------------------------
def ref_build_mlp(num_layers: int, input_dim: int, mlp_dim: int, output_dim: int,
                  last_bn: bool = True) -> nn.Sequential:
    """builder.py L36-52, ``MoCo._build_mlp``."""
    mlp: list[nn.Module] = []
    for layer in range(num_layers):
        dim1 = input_dim if layer == 0 else mlp_dim
        dim2 = output_dim if layer == num_layers - 1 else mlp_dim
        mlp.append(nn.Linear(dim1, dim2, bias=False))
        if layer < num_layers - 1:
            mlp.append(nn.BatchNorm1d(dim2))
            mlp.append(nn.ReLU(inplace=True))
        elif last_bn:
            mlp.append(nn.BatchNorm1d(dim2, affine=False))
    return nn.Sequential(*mlp)


def ref_contrastive_loss(q: Tensor, k: Tensor, t: float, rank: int = 0,
                         k_all: Tensor | None = None) -> Tensor:
    """builder.py L63-73; ``concat_all_gather(k)`` is ``k_all`` (default: ``k``)."""
    q = nn.functional.normalize(q, dim=1)
    k = nn.functional.normalize(k if k_all is None else k_all, dim=1)
    logits = torch.einsum("nc,mc->nm", [q, k]) / t
    n = logits.shape[0]
    labels = torch.arange(n, dtype=torch.long) + n * rank
    return nn.CrossEntropyLoss()(logits, labels) * (2 * t)


def ref_moco_momentum(epoch: float, epochs: int, moco_m: float) -> float:
    """main_moco.py L431-434, ``adjust_moco_momentum``."""
    return 1. - 0.5 * (1. + math.cos(math.pi * epoch / epochs)) * (1. - moco_m)


# ---- toy ViTs: a patch embedding the method must find -------------------------------------
class ToyViT(nn.Module):
    """N x 16 -> 4 patches of 4 -> patch_embed -> mean -> N x 24."""

    def __init__(self) -> None:
        super().__init__()
        self.out_dim = 24
        self.patch_embed = nn.Linear(4, 8)
        self.blocks = nn.Sequential(nn.LayerNorm(8), nn.Linear(8, 24))

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(self.patch_embed(x.view(x.shape[0], 4, 4)).mean(1))


class WrappedViT(nn.Module):
    """A ViT held one level down, as a timm wrapper would hold it."""

    def __init__(self) -> None:
        super().__init__()
        self.model, self.out_dim = ToyViT(), 24

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def _views() -> ViewGenerator:
    views = ViewGenerator(GaussianNoise(), 2)
    views.manual_seed(0)
    return views


def _types(head: nn.Module) -> list[tuple[type, bool]]:
    """Layer types, with whether each layer has a bias / an affine transform."""
    return [(type(m), getattr(m, "bias", None) is not None) for m in head.modules()
            if not isinstance(m, nn.Sequential) and m is not head and hasattr(m, "forward")
            and not list(m.children())]


# ---- tests ----------------------------------------------------------------------------------
def test_resnet_recipe_matches_the_reference(make_parts) -> None:
    encoder, views = make_parts()
    method = MoCoV3(encoder, views)
    assert METHODS.get("mocov3") is MoCoV3
    assert _types(method.projector) == _types(ref_build_mlp(2, 24, 4096, 256))
    # the reference's last predictor layer has no bias (bias=False everywhere); MLPHead keeps one
    want = _types(ref_build_mlp(2, 256, 4096, 256, last_bn=False))
    assert _types(method.predictor)[:-1] == want[:-1]
    assert _types(method.predictor)[-1] == (nn.Linear, True) and want[-1] == (nn.Linear, False)
    assert method.temperature == 1.0  # --moco-t default, kept by CONFIG.md's ResNet commands
    mom = method.momentum_encoder
    assert (mom.base_momentum, mom.schedule) == (0.99, "cosine")
    d = method.train_defaults
    assert (d["optimizer"], d["lr"], d["lr_scaling"], d["weight_decay"], d["warmup_epochs"]) == (
        "lars", 0.6, "linear", 1e-6, 10)
    assert all(p.requires_grad for p in method.encoder.parameters())


@pytest.mark.parametrize("make_encoder", [ToyViT, WrappedViT])
def test_vit_recipe_is_keyed_on_the_patch_embedding(make_encoder, toy_batch) -> None:
    encoder = make_encoder()
    assert patch_embedding(encoder) is not None and patch_embedding(ToyEncoder()) is None
    method = MoCoV3(encoder, _views(), **SMALL)
    assert _types(method.projector) == _types(ref_build_mlp(3, 24, 32, 16))
    assert _types(method.predictor) == _types(ref_build_mlp(2, 16, 32, 16, last_bn=True))
    assert method.temperature == 0.2
    assert method.train_defaults == VIT_TRAIN_DEFAULTS and MoCoV3.train_defaults["lr"] == 0.6
    frozen = patch_embedding(method.encoder)
    assert frozen is not None and not any(p.requires_grad for p in frozen.parameters())
    method.training_step(toy_batch)[0].backward()
    assert all(p.grad is None for p in frozen.parameters())
    assert all(p.grad is not None for n, p in method.encoder.named_parameters()
               if "patch_embed" not in n)
    unfrozen = MoCoV3(make_encoder(), _views(), **SMALL, freeze_patch_embed=False,
                      temperature=0.5, proj_layers=2)
    assert all(p.requires_grad for p in unfrozen.encoder.parameters())
    assert unfrozen.temperature == 0.5 and len(_types(unfrozen.projector)) == 5


def test_loss_and_gradients_equal_the_reference(make_parts, toy_batch) -> None:
    method = MoCoV3(*make_parts(), **SMALL)
    ref = copy.deepcopy(method)
    method.views.manual_seed(3)
    ref.views.manual_seed(3)
    loss, logs = method.training_step(toy_batch)
    x_1, x_2 = ref.views(toy_batch[0])
    q_1, q_2 = (ref.predictor(ref.projector(ref.encoder(x))) for x in (x_1, x_2))
    with torch.no_grad():
        k_1, k_2 = ref.momentum_encoder.module(x_1), ref.momentum_encoder.module(x_2)
    want = ref_contrastive_loss(q_1, k_2, 1.0) + ref_contrastive_loss(q_2, k_1, 1.0)
    torch.testing.assert_close(loss, want)
    loss.backward()
    want.backward()
    grads = {n: p.grad for n, p in ref.named_parameters() if p.grad is not None}
    assert set(grads) == {n for n, p in method.named_parameters() if p.grad is not None}
    for name, p in method.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(p.grad, grads[name], msg=name)
    assert not any(p.grad is not None for p in method.momentum_encoder.parameters())
    assert float(logs["momentum"]) == pytest.approx(0.9)


def test_labels_are_offset_by_the_rank(make_parts, monkeypatch) -> None:
    """Two ranks' shares, keys gathered without gradient: each matches the reference with its
    rank, and their mean is the whole batch's loss and gradient."""
    method = MoCoV3(*make_parts(), **SMALL, temperature=0.2)
    g = torch.Generator().manual_seed(0)
    q = torch.randn(8, 16, generator=g, requires_grad=True)
    k = torch.randn(8, 16, generator=g)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "gather_no_grad", lambda x: k)
    shares = []
    for r in range(2):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        share = method.contrast(q[4 * r:4 * r + 4], k[4 * r:4 * r + 4])
        torch.testing.assert_close(share, ref_contrastive_loss(
            q[4 * r:4 * r + 4], k[4 * r:4 * r + 4], 0.2, rank=r, k_all=k))
        shares.append(share)
    got = torch.stack(shares).mean()
    want = ref_contrastive_loss(q, k, 0.2)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(torch.autograd.grad(got, q)[0], torch.autograd.grad(want, q)[0])


def test_on_step_end_uses_the_next_iteration_momentum(make_parts) -> None:
    method = MoCoV3(*make_parts(), **SMALL)
    with torch.no_grad():
        for p in method.projector.parameters():
            p.add_(1.0)
    target: Any = method.momentum_encoder.module  # encoder, projector
    old = [p.clone() for p in target[1].parameters()]
    method.on_step_end(4, 10)  # after optimizer step 4: the reference's iteration 5
    m = ref_moco_momentum(5 / 10, 1, 0.9)
    assert method.momentum_encoder.momentum == pytest.approx(m)
    for new, o, q in zip(target[1].parameters(), old, method.projector.parameters(),
                         strict=True):
        torch.testing.assert_close(new, m * o + (1 - m) * q)


def test_bad_arguments(make_parts) -> None:
    one_view = copy.copy(_views())
    one_view.n_views = 1
    with pytest.raises(ValueError, match="at least 2 views"):
        MoCoV3(ToyEncoder(), one_view, **SMALL)
    multicrop = ViewGenerator(GaussianNoise(), 4, n_global=2)
    with pytest.raises(ValueError, match="multi-crop"):
        MoCoV3(ToyEncoder(), multicrop, **SMALL)
    with pytest.raises(ValueError, match="patch_embed"):
        MoCoV3(*make_parts(), **SMALL, freeze_patch_embed=True)
    with pytest.raises(ValueError, match="temperature"):
        MoCoV3(*make_parts(), **SMALL, temperature=0.0)
    with pytest.raises(ValueError, match="out_dim"):
        MoCoV3(nn.Linear(IN_DIM, 8), make_parts()[1], **SMALL)


def test_loss_decreases_on_a_fixed_batch(make_parts, toy_batch) -> None:
    method = MoCoV3(*make_parts(), **SMALL, temperature=0.2)
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.1,
                          momentum=0.9)
    losses = []
    for step in range(15):
        method.views.manual_seed(0)
        loss, _ = method.training_step(toy_batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        method.on_step_end(step, 15)
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses) and losses[-1] < 0.8 * losses[0], losses
