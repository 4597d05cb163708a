"""LARS against hand-written math, and the param-group split."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from anyssl.train import LARS, build_optimizer, param_groups


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)
        self.head = nn.Linear(3, 2)


def net() -> Net:
    torch.manual_seed(0)
    return Net()


def set_grads(module: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        p.grad = torch.randn(p.shape, generator=g)


def test_param_groups_split_bias_and_norm() -> None:
    m = net()
    m.head.requires_grad_(False)  # like a momentum target: never optimized
    decay, no_decay = param_groups(m, 0.5)
    assert [p.shape for p in decay["params"]] == [(3, 4)]
    assert [tuple(p.shape) for p in no_decay["params"]] == [(3,), (3,), (3,)]
    assert (decay["weight_decay"], decay["lars_exclude"]) == (0.5, False)
    assert (no_decay["weight_decay"], no_decay["lars_exclude"]) == (0.0, True)


def test_lars_excluded_params_follow_plain_sgd_momentum() -> None:
    m = net()
    ref = copy.deepcopy(m)
    lars = build_optimizer("lars", m, lr=0.1, weight_decay=0.01, momentum=0.9)
    sgd = torch.optim.SGD([ref.lin.bias, ref.bn.weight, ref.bn.bias], lr=0.1, momentum=0.9)
    for seed in range(3):
        set_grads(m, seed)
        set_grads(ref, seed)
        lars.step()
        sgd.step()
    assert torch.equal(m.lin.bias, ref.lin.bias)
    assert torch.equal(m.bn.weight, ref.bn.weight)
    assert not torch.allclose(m.lin.weight, ref.lin.weight)  # weights are adapted


def test_lars_weight_update_matches_formula() -> None:
    w0 = torch.randn(5, 3)
    w = nn.Parameter(w0.clone())
    opt = LARS([{"params": [w]}], lr=0.5, momentum=0.9, weight_decay=0.1, eta=0.01)
    mu = torch.zeros_like(w0)
    ref = w0.clone()
    for seed in range(3):
        g = torch.randn(5, 3, generator=torch.Generator().manual_seed(seed))
        w.grad = g.clone()
        opt.step()
        d = g + 0.1 * ref
        d = d * (0.01 * ref.norm() / d.norm())
        mu = 0.9 * mu + d
        ref = ref - 0.5 * mu
    assert torch.allclose(w.detach(), ref, atol=1e-6)


def test_lars_zero_weight_uses_trust_ratio_one() -> None:
    w = nn.Parameter(torch.zeros(2, 2))
    opt = LARS([w], lr=1.0, momentum=0.0, eta=0.001)
    w.grad = torch.ones(2, 2)
    opt.step()
    assert torch.equal(w.detach(), -torch.ones(2, 2))


@pytest.mark.parametrize("name,cls", [("sgd", torch.optim.SGD), ("lars", LARS),
                                      ("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam)])
def test_build_optimizer_only_trainable(name: str, cls: type) -> None:
    m = net()
    m.head.requires_grad_(False)
    opt = build_optimizer(name, m, lr=0.1, weight_decay=1e-4)
    assert isinstance(opt, cls)
    params = {id(p) for g in opt.param_groups for p in g["params"]}
    assert params == {id(p) for p in list(m.lin.parameters()) + list(m.bn.parameters())}
    if name == "adamw":
        assert sorted(g["weight_decay"] for g in opt.param_groups) == [0.0, 1e-4]
    if name == "adam":  # coupled L2 on every parameter, as the GraphCL / GRACE code
        assert [g["weight_decay"] for g in opt.param_groups] == [1e-4]
        assert not isinstance(opt, torch.optim.AdamW)


def test_build_optimizer_errors() -> None:
    with pytest.raises(ValueError, match="unknown optimizer 'adagrad'; choose one of"):
        build_optimizer("adagrad", net(), 0.1, 0.0)
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_optimizer("sgd", net().requires_grad_(False), 0.1, 0.0)
