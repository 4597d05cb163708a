"""MoCo v1/v2: the loss against the queue, enqueue order, symmetric variant, momentum update, and
the one-process guard against the BatchNorm shortcut (split BatchNorm + key shuffle)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from anyssl.methods import moco as moco_module
from anyssl.methods.moco import MoCo, MoCoV1
from anyssl.norm import SplitBatchNorm
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
    moco = _moco(make_parts, split_bn=0)
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
    moco = _moco(make_parts, symmetric=True, split_bn=0)
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


def _grouped(fn: Any, x: torch.Tensor, splits: int) -> torch.Tensor:
    """``fn`` applied to each interleaved group ``x[j::splits]`` on its own (train-mode
    BatchNorm statistics per group), put back in order."""
    out = [fn(x[j::splits]) for j in range(splits)]
    result = torch.empty(x.shape[0], out[0].shape[1])
    for j, part in enumerate(out):
        result[j::splits] = part
    return result


def test_one_process_splits_batchnorm_and_shuffles_the_keys(make_parts, toy_batch) -> None:
    """The default (split_bn=8): both encoders normalize 8 groups of the batch, and the key batch
    is shuffled (a permutation drawn from the views' generator) before the key encoder, as in the
    MoCo CIFAR-10 demo; a hand-written reference of that step gives the same loss and keys."""
    moco = _moco(make_parts)  # split_bn=8 by default
    assert moco.split_bn == 8
    assert sum(isinstance(m, SplitBatchNorm) for m in moco.modules()) == 2  # online and key
    ref = copy.deepcopy(moco)  # outside a training step its BatchNorm is plain
    moco.views.manual_seed(0)
    ref.views.manual_seed(0)
    seen: list[torch.Tensor] = []
    moco.key_encoder.module.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    loss, _ = moco.training_step(toy_batch)
    x_q, x_k = ref.views(toy_batch[0])
    perm = torch.randperm(32, generator=ref.views.generator_for(torch.device("cpu")))
    with torch.no_grad():
        q = _grouped(lambda v: ref.head(ref.encoder(v)), x_q, 8)
        k = _grouped(ref.key_encoder.module, x_k[perm], 8)[torch.argsort(perm)]
        want = info_nce(q, k, 0.2, negatives=ref.queue.keys)
    torch.testing.assert_close(seen[0], x_k[perm])  # the key encoder saw the shuffled batch
    assert not torch.equal(perm, torch.arange(32))
    torch.testing.assert_close(loss.detach(), want)
    torch.testing.assert_close(moco.queue.keys[:32], F.normalize(k, dim=1))
    plain = _moco(make_parts, split_bn=0)
    plain.load_state_dict(ref.state_dict())
    plain.views.manual_seed(0)
    assert not torch.allclose(plain.training_step(toy_batch)[0], loss)  # the split changes it


def test_split_bn_off_and_several_processes_use_plain_batchnorm(make_parts, monkeypatch) -> None:
    off = _moco(make_parts, split_bn=0)
    assert not any(isinstance(m, SplitBatchNorm) for m in off.modules())
    v1 = MoCoV1(*make_parts(), queue_size=80, split_bn=4)
    assert v1._splits() == 4
    monkeypatch.setattr(moco_module, "world_size", lambda: 2)  # the cross-rank shuffle instead
    assert v1._splits() == 1
    with pytest.raises(ValueError, match="split_bn must be >= 0"):
        _moco(make_parts, split_bn=-1)
