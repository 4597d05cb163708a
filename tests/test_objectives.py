"""Parity of the objectives against hand-written per-anchor loops, and their properties."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from anyssl.objectives import BYOLLoss, InfoNCELoss, NTXentLoss, byol_loss, info_nce, nt_xent
from anyssl.registry import OBJECTIVES

N, D, K, T = 5, 8, 7, 0.3


def _rand(*shape: int, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def _unit(v: Tensor) -> Tensor:
    return v / (v * v).sum().sqrt()


def _neg_log_softmax(logits: list[Tensor], target: int) -> Tensor:
    """-log(exp(l_target) / sum_j exp(l_j)), written out."""
    return -(logits[target] - torch.stack([torch.exp(lj) for lj in logits]).sum().log())


def ref_info_nce(q, k, temp, negatives=None, key_all=None, rank=0, normalize=True) -> Tensor:
    """One anchor at a time: MoCo eq. 1 with a queue, or in-batch with positive rank*N + i."""
    f = _unit if normalize else (lambda v: v)
    key_all = k if key_all is None else key_all
    losses = []
    for i in range(q.shape[0]):
        qi = f(q[i])
        if negatives is not None:
            logits = [qi @ f(k[i]) / temp] + [qi @ f(n) / temp for n in negatives]
            target = 0
        else:
            logits = [qi @ f(kj) / temp for kj in key_all]
            target = rank * q.shape[0] + i
        losses.append(_neg_log_softmax(logits, target))
    return torch.stack(losses).mean()


def ref_nt_xent(z_a, z_b, temp, z_a_all=None, z_b_all=None, rank=0) -> Tensor:
    """SimCLR eq. 1 over the 2N local anchors; candidates are every view on every rank."""
    z_a_all = z_a if z_a_all is None else z_a_all
    z_b_all = z_b if z_b_all is None else z_b_all
    n, m = z_a.shape[0], z_a_all.shape[0]
    cands = [_unit(c) for c in torch.cat([z_a_all, z_b_all])]
    losses = []
    for view, anchors in enumerate((z_a, z_b)):
        for i in range(n):
            own = view * m + rank * n + i  # the anchor's own column
            pos = (1 - view) * m + rank * n + i  # its other view
            cols = [j for j in range(2 * m) if j != own]
            logits = [_unit(anchors[i]) @ cands[j] / temp for j in cols]
            losses.append(_neg_log_softmax(logits, cols.index(pos)))
    return torch.stack(losses).mean()


def ref_byol(p, z) -> Tensor:
    return torch.stack([2 - 2 * (_unit(p[i]) @ _unit(z[i])) for i in range(p.shape[0])]).mean()


def test_info_nce_with_queue_matches_loop() -> None:
    q, k, neg = _rand(N, D, seed=1), _rand(N, D, seed=2), _rand(K, D, seed=3)
    got = info_nce(q, k, T, negatives=neg)
    torch.testing.assert_close(got, ref_info_nce(q, k, T, negatives=neg))


@pytest.mark.parametrize("normalize", [True, False])
def test_info_nce_in_batch_matches_loop(normalize: bool) -> None:
    q, k = _rand(N, D, seed=1), _rand(N, D, seed=2)
    got = info_nce(q, k, T, normalize=normalize)
    torch.testing.assert_close(got, ref_info_nce(q, k, T, normalize=normalize))


def test_info_nce_symmetric_averages_both_directions() -> None:
    q, k = _rand(N, D, seed=1), _rand(N, D, seed=2)
    want = 0.5 * (ref_info_nce(q, k, T) + ref_info_nce(k, q, T))
    torch.testing.assert_close(info_nce(q, k, T, symmetric=True), want)


def test_info_nce_rank1_uses_offset_targets() -> None:
    q, k_all = _rand(N, D, seed=1), _rand(2 * N, D, seed=2)
    k = k_all[N:]  # this rank's keys are the second half
    got = info_nce(q, k, T, key_all=k_all, rank=1)
    torch.testing.assert_close(got, ref_info_nce(q, k, T, key_all=k_all, rank=1))
    assert not torch.allclose(got, info_nce(q, k, T, key_all=k_all, rank=0))


@pytest.mark.parametrize("symmetric", [False, True])
def test_info_nce_mean_over_fake_ranks_is_full_batch_loss(symmetric: bool) -> None:
    q_all, k_all = _rand(2 * N, D, seed=1), _rand(2 * N, D, seed=2)
    per_rank = [
        info_nce(q_all[r * N:(r + 1) * N], k_all[r * N:(r + 1) * N], T, symmetric=symmetric,
                 key_all=k_all, query_all=q_all, rank=r)
        for r in range(2)
    ]
    torch.testing.assert_close(sum(per_rank) / 2, info_nce(q_all, k_all, T, symmetric=symmetric))


def test_info_nce_gradient_matches_loop() -> None:
    q, k = _rand(N, D, seed=1).requires_grad_(), _rand(N, D, seed=2)
    neg = _rand(K, D, seed=3)
    (g_got,) = torch.autograd.grad(info_nce(q, k, T, negatives=neg), q)
    (g_ref,) = torch.autograd.grad(ref_info_nce(q, k, T, negatives=neg), q)
    torch.testing.assert_close(g_got, g_ref)


def test_nt_xent_matches_loop_and_gradient() -> None:
    a, b = _rand(N, D, seed=1).requires_grad_(), _rand(N, D, seed=2).requires_grad_()
    got, want = nt_xent(a, b, T), ref_nt_xent(a, b, T)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(torch.autograd.grad(got, [a, b]), torch.autograd.grad(want, [a, b]))


def test_nt_xent_rank1_and_mean_over_fake_ranks() -> None:
    a_all, b_all = _rand(2 * N, D, seed=1), _rand(2 * N, D, seed=2)
    per_rank = []
    for r in range(2):
        a, b = a_all[r * N:(r + 1) * N], b_all[r * N:(r + 1) * N]
        got = nt_xent(a, b, T, z_a_all=a_all, z_b_all=b_all, rank=r)
        torch.testing.assert_close(got, ref_nt_xent(a, b, T, a_all, b_all, rank=r))
        per_rank.append(got)
    torch.testing.assert_close(sum(per_rank) / 2, nt_xent(a_all, b_all, T))


def test_nt_xent_is_symmetric_in_views_and_low_for_matching_views() -> None:
    a, b = _rand(N, D, seed=1), _rand(N, D, seed=2)
    torch.testing.assert_close(nt_xent(a, b, T), nt_xent(b, a, T))
    assert nt_xent(a, a + 1e-3 * b, 0.1) < nt_xent(a, b, 0.1)


def test_byol_loss_matches_loop_and_normalized_mse() -> None:
    p, z = _rand(N, D, seed=1), _rand(N, D, seed=2)
    torch.testing.assert_close(byol_loss(p, z), ref_byol(p, z))
    mse = ((F.normalize(p, dim=1) - F.normalize(z, dim=1)) ** 2).sum(1).mean()  # eq. 2
    torch.testing.assert_close(byol_loss(p, z), mse)
    torch.testing.assert_close(byol_loss(p, 3 * p), torch.zeros((), dtype=torch.float64))


def test_float32_inputs_agree_with_float64() -> None:
    q, k, neg = _rand(N, D, seed=1), _rand(N, D, seed=2), _rand(K, D, seed=3)
    pairs = [
        (info_nce(q.float(), k.float(), T), info_nce(q, k, T)),
        (info_nce(q.float(), k.float(), T, negatives=neg.float()),
         info_nce(q, k, T, negatives=neg)),
        (nt_xent(q.float(), k.float(), T), nt_xent(q, k, T)),
        (byol_loss(q.float(), k.float()), byol_loss(q, k)),
    ]
    for low, high in pairs:
        assert low.dtype == torch.float32
        torch.testing.assert_close(low.double(), high, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "call",
    [
        lambda q, k: info_nce(q, k[:-1], T),  # N mismatch
        lambda q, k: info_nce(q, k, 0.0),  # temperature
        lambda q, k: info_nce(q, k, T, negatives=torch.zeros(K, D + 1)),  # queue dim
        lambda q, k: info_nce(q, k, T, negatives=torch.zeros(K, D), symmetric=True),
        lambda q, k: info_nce(q, k, T, key_all=torch.cat([k, k]), rank=2),  # rank outside
        lambda q, k: info_nce(q, k, T, key_all=k[:-1]),  # not a multiple of N
        lambda q, k: info_nce(q, k, T, key_all=torch.cat([k, k]), symmetric=True),
        lambda q, k: nt_xent(q, k, T, z_a_all=torch.cat([q, q])),  # only one gathered view
        lambda q, k: nt_xent(q[0], k[0], T),  # not 2-D
        lambda q, k: byol_loss(q, k[:, :-1]),
        lambda q, k: InfoNCELoss(temperature=-1.0),
    ],
)
def test_bad_inputs_raise_value_error(call) -> None:
    q, k = torch.randn(N, D), torch.randn(N, D)
    with pytest.raises(ValueError):
        call(q, k)


def test_modules_are_registered_and_match_functions() -> None:
    q, k, neg = torch.randn(N, D), torch.randn(N, D), torch.randn(K, D)
    nce = OBJECTIVES.build("info_nce", temperature=T, symmetric=True)
    assert isinstance(nce, InfoNCELoss)
    torch.testing.assert_close(nce(q, k), info_nce(q, k, T, symmetric=True))
    queue_loss = OBJECTIVES.build("info_nce", temperature=T)
    torch.testing.assert_close(queue_loss(q, k, neg), info_nce(q, k, T, negatives=neg))
    ntx = OBJECTIVES.build("nt_xent", temperature=T)
    assert isinstance(ntx, NTXentLoss)
    torch.testing.assert_close(ntx(q, k), nt_xent(q, k, T))
    assert isinstance(OBJECTIVES.build("byol"), BYOLLoss)


def test_byol_module_detaches_the_target() -> None:
    p, z = torch.randn(N, D, requires_grad=True), torch.randn(N, D, requires_grad=True)
    BYOLLoss()(p, z).backward()
    assert p.grad is not None and z.grad is None


def test_bfloat16_inputs_give_float32_losses() -> None:
    q, k, neg = torch.randn(N, D), torch.randn(N, D), torch.randn(K, D)
    b = torch.bfloat16
    for low, high in [
        (info_nce(q.to(b), k.to(b), T), info_nce(q, k, T)),
        (info_nce(q.to(b), k.to(b), T, negatives=neg.to(b)), info_nce(q, k, T, negatives=neg)),
        (nt_xent(q.to(b), k.to(b), T), nt_xent(q, k, T)),
        (byol_loss(q.to(b), k.to(b)), byol_loss(q, k)),
    ]:
        assert low.dtype == torch.float32
        torch.testing.assert_close(low, high, rtol=0.05, atol=0.05)
