"""NNCLR: heads, loss and gradients against a transcription of solo-learn's NNCLR (a full support
set), the first steps with an empty or partly written support set, what enters the support set,
and the rank offset of the labels."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from conftest import IN_DIM
from torch import Tensor, nn

from anyssl import distributed
from anyssl.memory import SupportSet
from anyssl.methods.nnclr import NNCLR
from anyssl.objectives import info_nce
from anyssl.registry import METHODS

SMALL: dict[str, Any] = {"hidden_dim": 32, "out_dim": 16, "pred_hidden_dim": 32,
                         "queue_size": 64}


# ---- a transcription of solo-learn (solo/losses/nnclr.py, solo/methods/nnclr.py) -------------
def ref_nnclr_loss_func(nn_: Tensor, p: Tensor, temperature: float = 0.1, rank: int = 0,
                        p_all: Tensor | None = None) -> Tensor:
    """solo/losses/nnclr.py ``nnclr_loss_func``; ``gather(p)`` is ``p_all`` (default ``p``)."""
    nn_ = F.normalize(nn_, dim=-1)
    p = F.normalize(p if p_all is None else p_all, dim=-1)
    logits = nn_ @ p.T / temperature
    n = nn_.size(0)
    labels = torch.arange(n * rank, n * (rank + 1), device=p.device)
    return F.cross_entropy(logits, labels)


@torch.no_grad()
def ref_find_nn(z: Tensor, queue: Tensor) -> Tensor:
    """solo/methods/nnclr.py ``find_nn`` (``z`` normalized in ``forward``)."""
    idx = (z @ queue.T).max(dim=1)[1]
    return queue[idx]


def _filled(method: NNCLR, seed: int = 5) -> None:
    """Write the whole support set once (as after ``queue_size`` samples)."""
    g = torch.Generator().manual_seed(seed)
    method.support.enqueue(torch.randn(method.support.size, method.support.dim, generator=g))


# ---- tests ----------------------------------------------------------------------------------
def test_paper_defaults(make_parts) -> None:
    method = NNCLR(*make_parts())
    assert METHODS.get("nnclr") is NNCLR
    kinds = [type(m) for m in method.projector.layers]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU] * 2 + [nn.Linear, nn.BatchNorm1d]
    assert [m.out_features for m in method.projector.layers if isinstance(m, nn.Linear)] == [
        2048, 2048, 256]
    assert [type(m) for m in method.predictor.layers] == [nn.Linear, nn.BatchNorm1d, nn.ReLU,
                                                          nn.Linear]
    assert method.predictor.layers[0].out_features == 4096 and method.predictor.out_dim == 256
    assert isinstance(method.support, SupportSet)
    assert method.support.keys.shape == (98304, 256) and method.temperature == 0.1
    d = NNCLR.train_defaults
    assert (d["optimizer"], d["lr"], d["lr_scaling"], d["weight_decay"], d["warmup_epochs"]) == (
        "lars", 0.3, "linear", 1e-6, 10)


def test_loss_and_gradients_equal_solo_learn_with_a_full_support_set(make_parts,
                                                                      toy_batch) -> None:
    method = NNCLR(*make_parts(), **SMALL, temperature=0.2)
    _filled(method)
    ref = copy.deepcopy(method)
    method.views.manual_seed(2)
    ref.views.manual_seed(2)
    loss, logs = method.training_step(toy_batch)
    x_1, x_2 = ref.views(toy_batch[0])
    z_1, z_2 = ref.projector(ref.encoder(x_1)), ref.projector(ref.encoder(x_2))
    p_1, p_2 = ref.predictor(z_1), ref.predictor(z_2)
    queue = ref.support.keys.clone()
    nn_1 = ref_find_nn(F.normalize(z_1, dim=-1), queue)
    nn_2 = ref_find_nn(F.normalize(z_2, dim=-1), queue)
    want = (ref_nnclr_loss_func(nn_1, p_2, 0.2) / 2 + ref_nnclr_loss_func(nn_2, p_1, 0.2) / 2)
    torch.testing.assert_close(loss, want)
    loss.backward()
    want.backward()
    for (name, p), q in zip(method.named_parameters(), ref.parameters(), strict=True):
        assert (p.grad is None) == (q.grad is None), name
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, msg=name)
    # dequeue_and_enqueue(z1): the first view's normalized projections, at the pointer
    n = x_1.shape[0]
    torch.testing.assert_close(method.support.keys[:n], F.normalize(z_1.detach(), dim=1))
    torch.testing.assert_close(method.support.keys[n:], queue[n:])
    assert int(method.support.ptr) == n and int(method.support.filled) == SMALL["queue_size"]
    want_sim = F.cosine_similarity(nn_1, z_1.detach(), dim=1).mean()
    torch.testing.assert_close(logs["nn_similarity"], want_sim)


def test_first_step_uses_each_projection_as_its_own_neighbour(make_parts, toy_batch) -> None:
    """Nothing written yet: the positive of z_1 is z_1 itself (no gradient through it)."""
    method = NNCLR(*make_parts(), **SMALL)
    ref = copy.deepcopy(method)
    method.views.manual_seed(1)
    ref.views.manual_seed(1)
    loss, logs = method.training_step(toy_batch)
    x_1, x_2 = ref.views(toy_batch[0])
    z_1, z_2 = ref.projector(ref.encoder(x_1)), ref.projector(ref.encoder(x_2))
    p_1, p_2 = ref.predictor(z_1), ref.predictor(z_2)
    want = 0.5 * (info_nce(z_1.detach(), p_2, 0.1) + info_nce(z_2.detach(), p_1, 0.1))
    torch.testing.assert_close(loss, want)
    torch.testing.assert_close(logs["nn_similarity"], torch.tensor(1.0))
    assert int(method.support.filled) == x_1.shape[0]


def test_partly_written_support_set_gives_only_written_rows(make_parts, toy_batch) -> None:
    method = NNCLR(*make_parts(), **SMALL)
    method.training_step(toy_batch)  # writes 32 of 64 rows
    written = method.support.keys[:32].clone()
    z = method.projector(method.encoder(toy_batch[0]))
    with torch.no_grad():  # unwritten rows that would be every projection's exact match
        method.support.keys[32:] = F.normalize(z, dim=1)
    nn_z = method.support.nearest(z)
    rows = (nn_z[:, None] == written[None]).all(-1).any(1)
    assert rows.all()  # every neighbour is a written row, never a random initial one
    torch.testing.assert_close(nn_z, ref_find_nn(F.normalize(z.detach(), dim=1), written))


def test_labels_are_offset_by_the_rank(make_parts, monkeypatch) -> None:
    """Two ranks' shares, predictions gathered with gradient: each matches solo-learn's loss
    with its rank, and their mean is the whole batch's loss and gradient."""
    method = NNCLR(*make_parts(), **SMALL)
    g = torch.Generator().manual_seed(0)
    nn_z = torch.randn(8, 16, generator=g)
    p = torch.randn(8, 16, generator=g, requires_grad=True)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "gather_with_grad", lambda x: p)
    shares = []
    for r in range(2):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        rows = slice(4 * r, 4 * r + 4)
        share = method.contrast(nn_z[rows], p[rows])
        torch.testing.assert_close(share, ref_nnclr_loss_func(nn_z[rows], p[rows], 0.1, rank=r,
                                                              p_all=p))
        shares.append(share)
    got, want = torch.stack(shares).mean(), ref_nnclr_loss_func(nn_z, p, 0.1)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(torch.autograd.grad(got, p)[0], torch.autograd.grad(want, p)[0])


def test_bad_arguments(make_parts) -> None:
    encoder, views = make_parts()
    with pytest.raises(ValueError, match="temperature"):
        NNCLR(encoder, views, **SMALL, temperature=-1.0)
    with pytest.raises(ValueError, match="queue size"):
        NNCLR(encoder, views, **{**SMALL, "queue_size": 0})
    with pytest.raises(ValueError, match="out_dim"):
        NNCLR(nn.Linear(IN_DIM, 8), views, **SMALL)


def test_loss_decreases_over_steps(make_parts, toy_batch) -> None:
    """Training as the trainer does (the support set fills as it goes): the loss falls."""
    method = NNCLR(*make_parts(), **SMALL)
    opt = torch.optim.SGD(method.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for step in range(15):
        method.views.manual_seed(step % 2)
        loss, _ = method.training_step(toy_batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        method.on_step_end(step, 15)
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < 0.8 * losses[0], losses
