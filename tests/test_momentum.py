"""EMA math, the cosine momentum schedule and MomentumTarget."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
from torch import nn

from anyssl.momentum import MomentumTarget, cosine_momentum, ema_update


def _net(seed: int) -> Any:  # an nn.Sequential
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))


def test_ema_update_matches_hand_math_and_copies_buffers() -> None:
    target, online = _net(0), _net(1)
    online.train()(torch.randn(8, 4))  # give the online BN non-trivial running stats
    before = {k: v.clone() for k, v in target.state_dict().items()}
    ema_update(target, online, 0.9)
    for name, p in target.named_parameters():
        o = dict(online.named_parameters())[name]
        torch.testing.assert_close(p, 0.9 * before[name] + 0.1 * o)
    for name, b in target.named_buffers():
        torch.testing.assert_close(b, dict(online.named_buffers())[name])


def test_ema_update_can_leave_buffers_alone() -> None:
    target, online = _net(0), _net(1)
    online.train()(torch.randn(8, 4))
    mean_before = target[1].running_mean.clone()
    ema_update(target, online, 0.5, copy_buffers=False)
    torch.testing.assert_close(target[1].running_mean, mean_before)


def test_ema_update_endpoints() -> None:
    target, online = _net(0), _net(1)
    w = target[0].weight.clone()
    ema_update(target, online, 1.0)
    torch.testing.assert_close(target[0].weight, w)
    ema_update(target, online, 0.0)
    torch.testing.assert_close(target[0].weight, online[0].weight)


def test_ema_update_rejects_bad_momentum_and_mismatched_modules() -> None:
    with pytest.raises(ValueError):
        ema_update(_net(0), _net(1), 1.5)
    with pytest.raises(ValueError, match="different parameters"):
        ema_update(_net(0), nn.Linear(4, 2), 0.9)


def test_cosine_momentum_schedule() -> None:
    assert cosine_momentum(0, 100, 0.996) == pytest.approx(0.996)
    assert cosine_momentum(100, 100, 0.996) == pytest.approx(1.0)
    assert cosine_momentum(50, 100, 0.996) == pytest.approx(0.998)
    assert cosine_momentum(25, 100, 0.9) == pytest.approx(1 - 0.1 * (math.cos(math.pi / 4) + 1) / 2)
    assert cosine_momentum(500, 100, 0.9) == pytest.approx(1.0)  # clamped past the end
    values = [cosine_momentum(s, 20, 0.9) for s in range(21)]
    assert values == sorted(values)
    with pytest.raises(ValueError):
        cosine_momentum(0, 0, 0.9)


def test_momentum_target_is_a_frozen_copy() -> None:
    online = _net(0)
    target = MomentumTarget(online, momentum=0.9)
    assert all(not p.requires_grad for p in target.parameters())
    for p, q in zip(target.module.parameters(), online.parameters(), strict=True):
        assert torch.equal(p, q) and p.data_ptr() != q.data_ptr()
    assert all(k.startswith("module.") for k in target.state_dict())  # online not saved twice
    out = target(torch.randn(5, 4))
    assert not out.requires_grad


def test_target_gets_no_gradient_and_update_follows_online() -> None:
    online = _net(0)
    target = MomentumTarget(online, momentum=0.9)
    x = torch.randn(8, 4)
    (online(x).sum() + target(x).sum()).backward()
    assert all(p.grad is None for p in target.parameters())
    assert all(p.grad is not None for p in online.parameters())
    copied: Any = target.module
    old = copied[0].weight.clone()
    with torch.no_grad():
        online[0].weight.add_(1.0)
    target.update(0, 10)
    torch.testing.assert_close(copied[0].weight, 0.9 * old + 0.1 * online[0].weight)
    assert target.momentum == 0.9


def test_cosine_schedule_sets_momentum_attribute() -> None:
    target = MomentumTarget(_net(0), momentum=0.99, schedule="cosine")
    target.update(5, 10)
    assert target.momentum == pytest.approx(cosine_momentum(5, 10, 0.99))
    target.update(10, 10)
    assert target.momentum == pytest.approx(1.0)


def test_momentum_target_bad_arguments() -> None:
    with pytest.raises(ValueError, match="valid: constant, cosine"):
        MomentumTarget(_net(0), schedule="linear")
    with pytest.raises(ValueError):
        MomentumTarget(_net(0), momentum=-0.1)


def test_deepcopy_of_a_parent_keeps_the_target_following_the_copied_online() -> None:
    parent: Any = nn.Module()
    parent.online = _net(0)
    parent.target = MomentumTarget(parent.online, momentum=0.5)
    clone: Any = copy.deepcopy(parent)
    assert clone.target.online is clone.online and clone.online is not parent.online
    with torch.no_grad():
        clone.online[0].weight.fill_(1.0)
    clone.target.update(0, 1)
    assert not torch.equal(clone.target.module[0].weight, parent.target.module[0].weight)
    assert torch.equal(parent.online[0].weight, parent.target.module[0].weight)


def test_average_schedule_is_the_uniform_average_of_the_weights_after_each_step() -> None:
    online = nn.Linear(3, 2)
    target = MomentumTarget(online, schedule="average")
    seen = []
    for step in range(4):
        with torch.no_grad():
            online.weight.add_(torch.randn_like(online.weight))
        seen.append(online.weight.detach().clone())
        target.update(step, 4)
    torch.testing.assert_close(target.module.weight, torch.stack(seen).mean(0))
    assert target.momentum == 3 / 4
