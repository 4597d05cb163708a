"""BYOL: symmetric predictive loss against an EMA target of encoder + projector."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from anyssl.methods.byol import BYOL
from anyssl.momentum import cosine_momentum
from anyssl.objectives import byol_loss

SMALL: dict[str, Any] = {"hidden_dim": 32, "out_dim": 16, "pred_hidden_dim": 32}


def test_paper_defaults(make_parts) -> None:
    method = BYOL(*make_parts())
    assert method.projector.layers[0].out_features == 4096 and method.projector.out_dim == 256
    assert method.predictor.layers[0].out_features == 4096 and method.predictor.out_dim == 256
    assert method.target.base_momentum == 0.996 and method.target.schedule == "cosine"
    assert BYOL.train_defaults["lr"] == 0.2 and BYOL.train_defaults["weight_decay"] == 1.5e-6


def test_target_is_encoder_and_projector_without_predictor(make_parts, toy_batch) -> None:
    method = BYOL(*make_parts(), **SMALL)
    x = toy_batch[0]
    torch.testing.assert_close(method.target(x), method.projector(method.encoder(x)))
    target_keys = [k for k in method.state_dict() if k.startswith("target.")]
    assert target_keys and all(k.startswith(("target.module.0.", "target.module.1."))
                               for k in target_keys)


def test_loss_is_symmetrized_byol_loss(make_parts, toy_batch) -> None:
    method = BYOL(*make_parts(), **SMALL)
    ref = copy.deepcopy(method)
    method.views.manual_seed(3)
    ref.views.manual_seed(3)
    loss, logs = method.training_step(toy_batch)
    v_1, v_2 = ref.views(toy_batch[0])
    p_1, p_2 = (ref.predictor(ref.projector(ref.encoder(v))) for v in (v_1, v_2))
    z_1, z_2 = ref.target(v_1), ref.target(v_2)
    torch.testing.assert_close(loss, byol_loss(p_1, z_2) + byol_loss(p_2, z_1))
    assert float(logs["momentum"]) == pytest.approx(0.996)


def test_on_step_end_follows_the_cosine_momentum(make_parts, toy_batch) -> None:
    method = BYOL(*make_parts(), **SMALL, momentum=0.9)
    with torch.no_grad():
        for p in method.projector.parameters():
            p.add_(1.0)
    target: Any = method.target.module  # encoder, projector
    old = [p.clone() for p in target[1].parameters()]
    method.on_step_end(5, 10)
    m = cosine_momentum(5, 10, 0.9)
    assert method.target.momentum == pytest.approx(m)
    for new, o, q in zip(target[1].parameters(), old,
                         method.projector.parameters(), strict=True):
        torch.testing.assert_close(new, m * o + (1 - m) * q)
    _, logs = method.training_step(toy_batch)
    assert float(logs["momentum"]) == pytest.approx(m)
