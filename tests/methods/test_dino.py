"""DINO: student vs EMA teacher on the global views, centering, multi-crop, the last layer
frozen in the first epoch, and DINO's head against the reference's weight-normalized layer."""

from __future__ import annotations

import copy
import inspect
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from conftest import GaussianNoise
from torch import Tensor, nn

from anyssl.heads_dino import DINOHead, WeightNormLinear
from anyssl.methods.dino import DINO
from anyssl.objectives_cluster import dino_loss, teacher_temperature
from anyssl.views import ViewGenerator

SMALL: dict[str, Any] = {"out_dim": 32, "hidden_dim": 32, "bottleneck_dim": 8,
                         "momentum": 0.9}


class AnyLengthEncoder(nn.Module):
    """N x L vectors of any length L, pooled to 16, then an MLP. N x L -> N x 24."""

    def __init__(self) -> None:
        super().__init__()
        self.out_dim = 24
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 24))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(F.adaptive_avg_pool1d(x[:, None], 16)[:, 0])


class MultiCrop(ViewGenerator):
    """2 global views (noise) then 2 local views (the first 8 features, noised)."""

    def __init__(self) -> None:
        super().__init__([GaussianNoise(), GaussianNoise(), self._local, self._local])
        self.n_global = 2

    @staticmethod
    def _local(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return GaussianNoise()(x[:, :8], generator)


def test_defaults_are_the_reference_code(make_parts) -> None:
    params = inspect.signature(DINO).parameters
    want = {"out_dim": 65536, "hidden_dim": 2048, "bottleneck_dim": 256, "momentum": 0.996,
            "teacher_temp": 0.04, "warmup_teacher_temp": 0.04, "student_temp": 0.1,
            "center_momentum": 0.9, "freeze_last_layer": 1, "norm_last_layer": True}
    assert {k: params[k].default for k in want} == want
    assert DINO.train_defaults["lr"] == 0.0005 and DINO.train_defaults["weight_decay_end"] == 0.4
    method = DINO(*make_parts(), out_dim=64)
    assert [m.out_features for m in method.head.mlp if isinstance(m, nn.Linear)] == [2048, 2048,
                                                                                      256]
    assert isinstance(method.head.mlp[1], nn.GELU)
    assert not method.head.last_layer.weight_g.requires_grad  # norm_last_layer
    assert method.teacher.schedule == "cosine" and method.n_global == 2


def test_loss_is_dino_loss_over_student_and_teacher_then_center_moves(make_parts,
                                                                      toy_batch) -> None:
    method = DINO(*make_parts(), **SMALL, center_momentum=0.5)
    ref = copy.deepcopy(method)
    method.views.manual_seed(3)
    ref.views.manual_seed(3)
    loss, logs = method.training_step(toy_batch)
    views = ref.views(toy_batch[0])
    student = [ref.head(ref.encoder(v)) for v in views]
    teacher = [ref.teacher(v) for v in views]
    torch.testing.assert_close(loss, dino_loss(student, teacher, torch.zeros(1, 32), 0.1, 0.04))
    torch.testing.assert_close(method.loss.center.center,
                               0.5 * torch.cat(teacher).mean(0, keepdim=True))
    assert float(logs["teacher_temp"]) == pytest.approx(0.04)


def test_multicrop_teacher_sees_only_the_global_views(toy_batch) -> None:
    torch.manual_seed(0)
    method = DINO(AnyLengthEncoder(), MultiCrop(), **SMALL)
    seen: list[tuple[int, ...]] = []
    method.teacher.module.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape))
    method.views.manual_seed(1)
    loss, _ = method.training_step(toy_batch)
    assert seen == [(32, 16), (32, 16)]  # the 2 global views, not the 8-long local ones
    ref = copy.deepcopy(method)
    ref.views.manual_seed(1)
    views = ref.views(toy_batch[0])
    student = [ref.head(ref.encoder(v)) for v in views]
    teacher = [ref.teacher(v) for v in views[:2]]
    torch.testing.assert_close(loss, dino_loss(student, teacher, torch.zeros(1, 32), 0.1, 0.04))
    loss.backward()
    assert all(p.grad is not None for p in method.encoder.parameters())


def test_last_layer_is_frozen_in_the_first_epoch_only(make_parts, toy_batch) -> None:
    method = DINO(*make_parts(), **SMALL, norm_last_layer=False)
    last = list(method.head.last_layer.parameters())
    assert len(last) == 2  # v and g both trainable without norm_last_layer
    method.training_step(toy_batch)[0].backward()
    grads = {p: p.grad for p in method.parameters() if p.grad is not None}
    assert all(p in grads for p in last)
    for step, frozen in [(0, True), (9, True), (10, False), (25, False)]:
        for p, g in grads.items():
            p.grad = g.clone()
        method.before_optimizer_step(step, steps_per_epoch=10, max_steps=100)
        assert all((p.grad is None) == frozen for p in last), step
        assert method.head.mlp[0].weight.grad is not None


def test_teacher_temperature_warms_up_by_epoch_and_survives_a_reload(make_parts,
                                                                     toy_batch) -> None:
    method = DINO(*make_parts(), **SMALL, warmup_teacher_temp=0.04, teacher_temp=0.07,
                  warmup_teacher_temp_epochs=4)
    method.before_optimizer_step(19, steps_per_epoch=10, max_steps=100)  # next: epoch 2
    _, logs = method.training_step(toy_batch)
    assert float(logs["teacher_temp"]) == pytest.approx(teacher_temperature(2, 0.04, 0.07, 4))
    assert float(logs["teacher_temp"]) == pytest.approx(0.06)  # linspace(0.04, 0.07, 4)[2]
    other = DINO(*make_parts(), **SMALL)
    other.load_state_dict(method.state_dict())
    assert other.epoch == 2


def test_head_matches_torch_weight_norm() -> None:
    torch.manual_seed(0)
    head = DINOHead(12, out_dim=20, hidden_dim=16, bottleneck_dim=8, norm_last_layer=False)
    with torch.no_grad():
        head.last_layer.weight_g.mul_(torch.rand(20, 1) + 0.5)
    # vision_transformer.py L276: nn.utils.weight_norm; the same as the parametrization
    ref = nn.utils.parametrizations.weight_norm(nn.Linear(8, 20, bias=False))
    with torch.no_grad():
        ref.parametrizations.weight.original0.copy_(head.last_layer.weight_g)  # g
        ref.parametrizations.weight.original1.copy_(head.last_layer.weight_v)  # v
    x = torch.randn(5, 12)
    torch.testing.assert_close(head(x), ref(F.normalize(head.mlp(x), dim=-1)))
    assert all(m.bias is None or not m.bias.any() for m in head.mlp if isinstance(m, nn.Linear))
    assert WeightNormLinear(8, 20).weight_g.requires_grad is False
    with pytest.raises(ValueError, match="N x 12"):
        head(torch.randn(5, 11))


def test_needs_two_views_and_a_valid_n_global(make_parts) -> None:
    encoder, views = make_parts()
    views.n_global = 3  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="n_global"):
        DINO(encoder, views, **SMALL)
