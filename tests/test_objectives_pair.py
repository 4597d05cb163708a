"""clip_loss against a row-by-row reference, its gathered (multi-rank) forms simulated on one
CPU, including the gradients a real DDP run would apply, and ClipLoss's gathering."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from anyssl import distributed
from anyssl.objectives_pair import ClipLoss, clip_loss
from anyssl.registry import OBJECTIVES

N, D, W, SCALE = 4, 6, 2, 7.5


def _unit(*shape: int, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


def _nll(logits: list[Tensor], target: int) -> Tensor:
    """-log softmax(logits)[target], written out."""
    return -(logits[target] - torch.stack([torch.exp(v) for v in logits]).sum().log())


def ref_clip(a, b, scale, a_all=None, b_all=None, rank=0, local=False) -> Tensor:
    """CLIP fig. 3 one row at a time: each a-query scores every b (its positive: its pair),
    each b-query every a, and the two directions are averaged."""
    a_all = a if a_all is None else a_all
    b_all = b if b_all is None else b_all
    qa, qb, offset = (a, b, rank * a.shape[0]) if local else (a_all, b_all, 0)
    loss_a = [_nll([scale * (qa[i] @ c) for c in b_all], offset + i) for i in range(len(qa))]
    loss_b = [_nll([scale * (qb[i] @ c) for c in a_all], offset + i) for i in range(len(qb))]
    return (torch.stack(loss_a).mean() + torch.stack(loss_b).mean()) / 2


def test_single_batch_matches_reference_and_gradients() -> None:
    a, b = _unit(N, D, seed=1).requires_grad_(), _unit(N, D, seed=2).requires_grad_()
    scale = torch.tensor(SCALE, dtype=torch.float64, requires_grad=True)
    got, want = clip_loss(a, b, scale), ref_clip(a, b, scale)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(torch.autograd.grad(got, [a, b, scale]),
                               torch.autograd.grad(want, [a, b, scale]))
    torch.testing.assert_close(clip_loss(a, b, SCALE), got)  # a float scale works the same


def test_properties_symmetry_and_alignment() -> None:
    a, b = _unit(N, D, seed=1), _unit(N, D, seed=2)
    torch.testing.assert_close(clip_loss(a, b, SCALE), clip_loss(b, a, SCALE))
    assert clip_loss(a, a, 100.0) < 0.01 < clip_loss(a, b, 100.0)
    uniform = clip_loss(a, b, 1e-9)  # a zero scale scores everything alike: log N
    torch.testing.assert_close(uniform, torch.tensor(N, dtype=torch.float64).log())


def _ranks(a_full: Tensor, b_full: Tensor) -> list[tuple[Tensor, Tensor]]:
    return [(a_full[r * N:(r + 1) * N], b_full[r * N:(r + 1) * N]) for r in range(W)]


@pytest.mark.parametrize("local", [False, True])
def test_gathered_forms_match_reference_and_the_global_loss(local: bool) -> None:
    a_full, b_full = _unit(W * N, D, seed=3), _unit(W * N, D, seed=4)
    full = clip_loss(a_full, b_full, SCALE)
    per_rank = []
    for r, (a, b) in enumerate(_ranks(a_full, b_full)):
        got = clip_loss(a, b, SCALE, a_all=a_full, b_all=b_full, rank=r, local_loss=local)
        torch.testing.assert_close(got, ref_clip(a, b, SCALE, a_full, b_full, r, local))
        per_rank.append(got)
        if not local:  # every rank computes the whole global-batch loss
            torch.testing.assert_close(got, full)
    if local:  # each rank its own rows; their mean is the global loss
        assert not torch.allclose(per_rank[0], per_rank[1])
        torch.testing.assert_close(sum(per_rank) / W, full)


def _simulated_ddp_grads(a_full: Tensor, b_full: Tensor, scale: Tensor,
                         local: bool) -> list[Tensor]:
    """The gradients of a W-process run, built rank by rank on one CPU.

    Rank r holds leaves for its local slices and for its gathered copies of the other ranks'
    slices. gather_with_grad's backward sums the copies' gradients over ranks into their owner
    (all_reduce), and DDP averages the parameter gradients over ranks: owner s's gradient is
    (1/W) * sum over ranks of the gradient w.r.t. slice s, and likewise for the logit scale.
    """
    grad_a, grad_b = torch.zeros_like(a_full), torch.zeros_like(b_full)
    grad_scale = torch.zeros_like(scale)
    for r in range(W):
        parts_a = [a_full[s * N:(s + 1) * N].detach().clone().requires_grad_() for s in range(W)]
        parts_b = [b_full[s * N:(s + 1) * N].detach().clone().requires_grad_() for s in range(W)]
        s_r = scale.detach().clone().requires_grad_()
        loss = clip_loss(parts_a[r], parts_b[r], s_r, a_all=torch.cat(parts_a),
                         b_all=torch.cat(parts_b), rank=r, local_loss=local)
        grads = torch.autograd.grad(loss, [*parts_a, *parts_b, s_r])
        for s in range(W):
            grad_a[s * N:(s + 1) * N] += grads[s] / W
            grad_b[s * N:(s + 1) * N] += grads[W + s] / W
        grad_scale += grads[-1] / W
    return [grad_a, grad_b, grad_scale]


@pytest.mark.parametrize("local", [False, True])
def test_simulated_ddp_gradients_equal_the_single_process_gradients(local: bool) -> None:
    a_full = _unit(W * N, D, seed=5).requires_grad_()
    b_full = _unit(W * N, D, seed=6).requires_grad_()
    scale = torch.tensor(SCALE, dtype=torch.float64, requires_grad=True)
    want = torch.autograd.grad(clip_loss(a_full, b_full, scale), [a_full, b_full, scale])
    got = _simulated_ddp_grads(a_full, b_full, scale, local)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)


def test_low_precision_logits_are_upcast() -> None:
    a, b = _unit(N, D, seed=1).float(), _unit(N, D, seed=2).float()
    high = clip_loss(a, b, SCALE)
    for dtype in (torch.bfloat16, torch.float16):
        low = clip_loss(a.to(dtype), b.to(dtype), SCALE)
        assert low.dtype == torch.float32
        torch.testing.assert_close(low, high, rtol=0.05, atol=0.05)
    scale32 = torch.tensor(SCALE)
    assert clip_loss(a.bfloat16(), b.bfloat16(), scale32).dtype == torch.float32
    assert clip_loss(a.double(), b.double(), SCALE).dtype == torch.float64


@pytest.mark.parametrize(
    "call",
    [
        lambda a, b: clip_loss(a, b[:-1], SCALE),  # N mismatch
        lambda a, b: clip_loss(a[0], b[0], SCALE),  # not 2-D
        lambda a, b: clip_loss(a, b, 0.0),  # scale
        lambda a, b: clip_loss(a, b, torch.ones(2)),  # not a scalar
        lambda a, b: clip_loss(a, b, SCALE, a_all=torch.cat([a, a])),  # one side gathered
        lambda a, b: clip_loss(a, b, SCALE, a_all=torch.cat([a, a])[:-1], b_all=b),
        lambda a, b: clip_loss(a, b, SCALE, a_all=torch.cat([a, a]), b_all=torch.cat([b, b]),
                               rank=2),  # rank outside
        lambda a, b: clip_loss(a, b, SCALE, a_all=torch.cat([a, a]), b_all=b),  # sizes differ
        lambda a, b: clip_loss(a, b, SCALE, a_all=torch.zeros(2 * N, D + 1),
                               b_all=torch.zeros(2 * N, D + 1)),  # width
    ],
)
def test_bad_inputs_raise_value_error(call) -> None:
    a, b = torch.randn(N, D), torch.randn(N, D)
    with pytest.raises(ValueError):
        call(a, b)


def test_module_is_registered_and_matches_the_function() -> None:
    a, b = _unit(N, D, seed=1), _unit(N, D, seed=2)
    loss = OBJECTIVES.build("clip")
    assert isinstance(loss, ClipLoss) and not loss.local_loss and loss.gather
    torch.testing.assert_close(loss(a, b, SCALE), clip_loss(a, b, SCALE))


@pytest.mark.parametrize("local", [False, True])
def test_module_gathers_both_sides_on_several_processes(local: bool, monkeypatch) -> None:
    """As rank 1 of 2: the module gathers a and b and passes its rank."""
    a_full, b_full = _unit(W * N, D, seed=7), _unit(W * N, D, seed=8)
    (a0, b0), (a1, b1) = _ranks(a_full, b_full)
    others = {id(a1): a0, id(b1): b0}
    monkeypatch.setattr(distributed, "world_size", lambda: W)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    monkeypatch.setattr(distributed, "gather_with_grad", lambda x: torch.cat([others[id(x)], x]))
    got = ClipLoss(local_loss=local)(a1, b1, SCALE)
    want = clip_loss(a1, b1, SCALE, a_all=a_full, b_all=b_full, rank=1, local_loss=local)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(ClipLoss(gather=False)(a1, b1, SCALE), clip_loss(a1, b1, SCALE))
