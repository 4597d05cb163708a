"""SimSiam: predictor + stop-gradient, symmetric negative cosine, fixed-lr predictor."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

from anyssl.methods.simsiam import SimSiam
from anyssl.objectives_redundancy import negative_cosine
from anyssl.train.optim import build_optimizer

SMALL: dict[str, Any] = {"out_dim": 16, "pred_hidden_dim": 8}


def test_paper_defaults(make_parts) -> None:
    method = SimSiam(*make_parts())
    kinds = [type(m).__name__ for m in method.projector.layers]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU"] * 2 + ["Linear", "BatchNorm1d"]
    assert method.projector.layers[0].out_features == 24  # the encoder's width (builder.py)
    last_bn = method.projector.layers[-1]
    assert isinstance(last_bn, nn.BatchNorm1d) and not last_bn.affine  # builder.py l. 35
    assert method.projector.out_dim == 2048 and method.predictor.layers[0].out_features == 512
    d = SimSiam.train_defaults
    assert (d["optimizer"], d["lr"], d["weight_decay"], d["momentum"]) == ("sgd", 0.05, 1e-4, 0.9)
    assert method.optimizer_overrides() == {"predictor.": {"fixed_lr": True}}
    assert SimSiam(*make_parts(), fix_pred_lr=False).optimizer_overrides() == {}
    assert SimSiam.scale_defaults["small"]["args"] == {"proj_layers": 2}


def test_loss_is_symmetric_negative_cosine_with_stop_gradient(make_parts, toy_batch) -> None:
    method = SimSiam(*make_parts(), **SMALL)
    ref = copy.deepcopy(method)
    method.views.manual_seed(3)
    ref.views.manual_seed(3)
    loss, logs = method.training_step(toy_batch)
    v1, v2 = ref.views(toy_batch[0])
    z1, z2 = ref.projector(ref.encoder(v1)), ref.projector(ref.encoder(v2))
    p1, p2 = ref.predictor(z1), ref.predictor(z2)
    want = 0.5 * (negative_cosine(p1, z2.detach()) + negative_cosine(p2, z1.detach()))
    torch.testing.assert_close(loss, want)
    assert -1 <= float(loss.detach()) <= 1 and 0 < float(logs["z_std"]) < 1
    # the stop-gradient: the gradient reaches z only through p
    z = torch.randn(4, 16, requires_grad=True)
    method.loss(method.predictor(z), z).backward()
    p_only = torch.autograd.grad(negative_cosine(method.predictor(z), z.detach()), z)[0]
    torch.testing.assert_close(z.grad, p_only)


def test_fixed_lr_predictor_group(make_parts) -> None:
    method = SimSiam(*make_parts(), **SMALL)
    opt = build_optimizer("sgd", method, 0.1, 1e-4, overrides=method.optimizer_overrides())
    fixed = [g for g in opt.param_groups if g["fixed_lr"]]
    assert len(fixed) == 1
    assert {id(p) for p in fixed[0]["params"]} == {id(p) for p in method.predictor.parameters()}
    assert all(g["weight_decay"] == 1e-4 for g in opt.param_groups)  # SGD decays everything


def test_needs_two_views(make_parts) -> None:
    encoder, _ = make_parts()
    with pytest.raises(ValueError, match="at least 2"):
        SimSiam(encoder, make_parts(n_views=1)[1])
