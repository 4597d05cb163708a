"""Barlow Twins: cross-correlation of the BN'd embeddings, wide projector, bias lr."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from anyssl.methods.barlowtwins import BarlowTwins
from anyssl.objectives_redundancy import barlow_twins_loss
from anyssl.train import TrainConfig
from anyssl.train.config import resolve_defaults
from anyssl.train.optim import build_optimizer


def test_paper_defaults(make_parts) -> None:
    method = BarlowTwins(*make_parts())
    linears = [m for m in method.projector.layers if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [96, 96, 96]  # 4 x 24: 8192 for ResNet-50's 2048
    assert linears[-1].bias is None  # main.py l. 201
    assert method.loss.lambd == 0.0051  # the code's value (the paper: 5e-3)
    d = BarlowTwins.train_defaults
    assert (d["optimizer"], d["lr"], d["bias_lr"], d["weight_decay"], d["warmup_epochs"]) == (
        "lars", 0.2, 0.0048, 1.5e-6, 10)
    wide = BarlowTwins(*make_parts(), hidden_dim=40, out_dim=32, num_layers=2)
    assert [m.out_features for m in wide.projector.layers if isinstance(m, nn.Linear)] == [40, 32]


def test_loss_is_barlow_twins_of_the_two_projections(make_parts, toy_batch) -> None:
    method = BarlowTwins(*make_parts(), hidden_dim=32, out_dim=16, lambd=0.01)
    ref = copy.deepcopy(method)
    method.views.manual_seed(3)
    ref.views.manual_seed(3)
    loss, _ = method.training_step(toy_batch)
    z1, z2 = (ref.projector(ref.encoder(v)) for v in ref.views(toy_batch[0]))
    torch.testing.assert_close(loss, barlow_twins_loss(z1, z2, 0.01))


def test_three_views_average_the_pairs(make_parts, toy_batch) -> None:
    method = BarlowTwins(*make_parts(n_views=3), hidden_dim=32, out_dim=16)
    ref = copy.deepcopy(method)
    method.views.manual_seed(4)
    ref.views.manual_seed(4)
    loss, _ = method.training_step(toy_batch)
    z = [ref.projector(ref.encoder(v)) for v in ref.views(toy_batch[0])]
    pairs = [(0, 1), (0, 2), (1, 2)]
    want = sum(barlow_twins_loss(z[i], z[j]) for i, j in pairs) / 3
    torch.testing.assert_close(loss, want)


def test_biases_get_the_bias_lr(make_parts) -> None:
    """LARS lr of weights 0.2 x B/256, of biases and BN parameters 0.0048 x B/256 (main.py
    l. 167-168)."""
    method = BarlowTwins(*make_parts(), hidden_dim=32, out_dim=16)
    h = resolve_defaults(TrainConfig(batch_size=512), BarlowTwins.train_defaults)
    assert h["lr"] == pytest.approx(0.4) and h["bias_lr_factor"] == pytest.approx(0.0048 / 0.2)
    opt = build_optimizer("lars", method, h["lr"], h["weight_decay"],
                          bias_lr_factor=h["bias_lr_factor"])
    lrs = {g["lars_exclude"]: g["lr"] for g in opt.param_groups}
    assert lrs[False] == pytest.approx(0.4) and lrs[True] == pytest.approx(0.0096)
