"""SwAV: swapped prediction of Sinkhorn codes, normalized prototypes, frozen prototypes early,
the queue (started by epoch, used once full), multi-crop with local views of another size."""

from __future__ import annotations

import copy
import inspect
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from test_dino import AnyLengthEncoder, MultiCrop

from anyssl.methods.swav import SwAV
from anyssl.objectives_cluster import sinkhorn_knopp, swav_loss

SMALL: dict[str, Any] = {"hidden_dim": 32, "out_dim": 16, "num_prototypes": 12}


def _scores(method: SwAV, views: list[Any]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    z = [F.normalize(method.projector(method.encoder(v)), dim=1) for v in views]
    return z, [method.prototypes(zv) for zv in z]


def test_defaults_are_the_reference_code() -> None:
    params = inspect.signature(SwAV).parameters
    want = {"hidden_dim": 2048, "out_dim": 128, "num_prototypes": 3000, "temperature": 0.1,
            "epsilon": 0.05, "sinkhorn_iterations": 3, "queue_size": 0, "queue_start_epoch": 15,
            "freeze_prototypes_iters": 313}
    assert {k: params[k].default for k in want} == want
    assert SwAV.train_defaults["optimizer"] == "lars" and SwAV.train_defaults["lr"] == 0.6
    assert SwAV.train_defaults["weight_decay"] == 1e-6


def test_loss_is_swapped_prediction_of_sinkhorn_codes(make_parts, toy_batch) -> None:
    method = SwAV(*make_parts(), **SMALL)
    with torch.no_grad():
        method.prototypes.weight.mul_(3.0)  # unnormalized: the step normalizes them
    method.views.manual_seed(3)
    loss, _ = method.training_step(toy_batch)
    weight = method.prototypes.weight
    torch.testing.assert_close(weight.norm(dim=1), torch.ones(12))
    ref = copy.deepcopy(method)
    ref.views.manual_seed(3)
    _, scores = _scores(ref, ref.views(toy_batch[0]))
    codes = [sinkhorn_knopp(s.detach()) for s in scores]
    torch.testing.assert_close(loss, swav_loss(scores, codes, 0.1))


def test_multicrop_codes_come_from_the_global_views_only(toy_batch) -> None:
    torch.manual_seed(0)
    method = SwAV(AnyLengthEncoder(), MultiCrop(), **SMALL)
    assert method.n_global == 2
    method.views.manual_seed(1)
    loss, _ = method.training_step(toy_batch)
    ref = copy.deepcopy(method)
    ref.views.manual_seed(1)
    _, scores = _scores(ref, ref.views(toy_batch[0]))
    codes = [sinkhorn_knopp(s.detach()) for s in scores[:2]]
    torch.testing.assert_close(loss, swav_loss(scores, codes, 0.1))
    loss.backward()
    assert all(p.grad is not None for p in method.encoder.parameters())


def test_prototypes_are_frozen_for_the_first_iterations(make_parts, toy_batch) -> None:
    method = SwAV(*make_parts(), **SMALL, freeze_prototypes_iters=5)
    method.training_step(toy_batch)[0].backward()
    grad = method.prototypes.weight.grad
    assert grad is not None
    for step, frozen in [(0, True), (4, True), (5, False), (40, False)]:
        method.prototypes.weight.grad = grad.clone()
        method.before_optimizer_step(step, steps_per_epoch=10, max_steps=100)
        assert (method.prototypes.weight.grad is None) == frozen, step
    assert method.projector.layers[0].weight.grad is not None


def test_queue_starts_by_epoch_and_joins_the_sinkhorn_once_full(make_parts, toy_batch) -> None:
    method = SwAV(*make_parts(), **SMALL, queue_size=64, queue_start_epoch=1)
    assert len(method.queues) == 2 and method.queues[0].size == 64
    method.training_step(toy_batch)  # epoch 0: no queue yet
    assert method.queued == 0 and int(method.queues[0].ptr) == 0
    method.before_optimizer_step(9, steps_per_epoch=10, max_steps=100)  # next: epoch 1
    for _ in range(2):  # 2 x 32 rows: full, not used yet
        method.training_step(toy_batch)
    assert method.queued == 64
    queued = [q.keys.clone() for q in method.queues]
    ref = copy.deepcopy(method)
    method.views.manual_seed(5)
    loss, _ = method.training_step(toy_batch)
    ref.views.manual_seed(5)
    z, scores = _scores(ref, ref.views(toy_batch[0]))
    codes = [sinkhorn_knopp(torch.cat([ref.prototypes(queued[i]), scores[i].detach()]))[-32:]
             for i in range(2)]
    torch.testing.assert_close(loss, swav_loss(scores, codes, 0.1))
    without = [sinkhorn_knopp(s.detach()) for s in scores]
    assert not torch.allclose(loss, swav_loss(scores, without, 0.1))  # the queue mattered
    for i in range(2):  # the batch's embeddings went in after the codes
        torch.testing.assert_close(method.queues[i].keys[:32], z[i].detach(), atol=1e-6,
                                   rtol=1e-5)
    other = SwAV(*make_parts(), **SMALL, queue_size=64, queue_start_epoch=1)
    other.load_state_dict(method.state_dict())
    assert (other.epoch, other.queued) == (1, 96)


def test_bad_arguments(make_parts) -> None:
    with pytest.raises(ValueError, match="queue_size"):
        SwAV(*make_parts(), **SMALL, queue_size=-1)
    encoder, views = make_parts()
    views.n_views = 1
    with pytest.raises(ValueError, match="at least 2"):
        SwAV(encoder, views, **SMALL)
