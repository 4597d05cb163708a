"""MoCo v1/v2: the loss against the queue, enqueue order, symmetric variant, momentum update."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from anyssl.methods.moco import MoCo, MoCoV1
from anyssl.objectives import info_nce
from anyssl.registry import METHODS

SMALL: dict[str, Any] = {"hidden_dim": 32, "out_dim": 16, "queue_size": 80, "momentum": 0.9}


def _moco(make_parts, **kw) -> MoCo:
    encoder, views = make_parts()
    return MoCo(encoder, views, **{**SMALL, **kw})


def test_registered_factories_and_paper_defaults(make_parts) -> None:
    assert METHODS.get("mocov2") is MoCo and METHODS.get("mocov1") is MoCoV1
    encoder, views = make_parts()
    v1 = MoCoV1(encoder, views)
    assert [type(m) for m in v1.head.layers] == [nn.Linear]  # linear 128-d head
    assert v1.head.out_dim == 128 and v1.loss.temperature == 0.07
    assert v1.queue.keys.shape == (65536, 128) and v1.key_encoder.momentum == 0.999
    v2 = MoCo(*make_parts())
    assert [type(m) for m in v2.head.layers] == [nn.Linear, nn.ReLU, nn.Linear]  # no BN
    assert v2.head.layers[0].out_features == 2048 and v2.loss.temperature == 0.2
    assert v2.queue.keys.shape == (65536, 128)
    assert MoCoV1.train_defaults["schedule"] == "step"
    assert MoCo.train_defaults["schedule"] == "cosine"


def test_key_encoder_starts_as_a_copy_of_encoder_and_head(make_parts, toy_batch) -> None:
    moco = _moco(make_parts)
    x = toy_batch[0]
    torch.testing.assert_close(moco.key_encoder(x), moco.head(moco.encoder(x)))
    keys = {"queue.keys", "queue.ptr", "key_encoder.module.0.net.0.weight"}
    assert keys <= set(moco.state_dict())


def test_loss_uses_the_queue_before_the_step_then_enqueues_keys(make_parts, toy_batch) -> None:
    moco = _moco(make_parts)
    ref = copy.deepcopy(moco)
    ref.views.manual_seed(0)
    moco.views.manual_seed(0)
    loss, _ = moco.training_step(toy_batch)
    x_q, x_k = ref.views(toy_batch[0])
    q, k = ref.head(ref.encoder(x_q)), ref.key_encoder(x_k)
    want = info_nce(q, k, 0.2, negatives=ref.queue.keys)
    torch.testing.assert_close(loss, want)
    n = x_q.shape[0]
    torch.testing.assert_close(moco.queue.keys[:n], F.normalize(k, dim=1))
    torch.testing.assert_close(moco.queue.keys[n:], ref.queue.keys[n:])  # the rest untouched
    assert int(moco.queue.ptr) == n
    loss.backward()  # in-place enqueue must not break the backward pass


def test_symmetric_averages_both_directions_and_enqueues_both_keys(make_parts, toy_batch):
    moco = _moco(make_parts, symmetric=True)
    ref = copy.deepcopy(moco)
    ref.views.manual_seed(0)
    moco.views.manual_seed(0)
    loss, _ = moco.training_step(toy_batch)
    x_1, x_2 = ref.views(toy_batch[0])
    q_1, q_2 = ref.head(ref.encoder(x_1)), ref.head(ref.encoder(x_2))
    k_1, k_2 = ref.key_encoder(x_1), ref.key_encoder(x_2)
    neg = ref.queue.keys
    want = 0.5 * (info_nce(q_1, k_2, 0.2, negatives=neg) + info_nce(q_2, k_1, 0.2, negatives=neg))
    torch.testing.assert_close(loss, want)
    n = x_1.shape[0]
    torch.testing.assert_close(moco.queue.keys[:2 * n], F.normalize(torch.cat([k_2, k_1]), dim=1))
    assert int(moco.queue.ptr) == 2 * n


def test_on_step_end_is_the_momentum_update(make_parts, toy_batch) -> None:
    moco = _moco(make_parts, momentum=0.8)
    with torch.no_grad():
        for p in moco.encoder.parameters():
            p.add_(0.5)
    old = [p.clone() for p in moco.key_encoder.parameters()]
    moco.on_step_end(3, 10)
    online = list(moco.encoder.parameters()) + list(moco.head.parameters())
    for new, o, q in zip(moco.key_encoder.parameters(), old, online, strict=True):
        torch.testing.assert_close(new, 0.8 * o + 0.2 * q)


def test_bad_arguments(make_parts) -> None:
    encoder, views = make_parts(n_views=3)
    with pytest.raises(ValueError, match="exactly 2 views"):
        MoCo(encoder, views, **SMALL)
    with pytest.raises(ValueError, match="valid: mlp, linear"):
        _moco(make_parts, head="conv")
    with pytest.raises(ValueError):
        _moco(make_parts, queue_size=0)
