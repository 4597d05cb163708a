"""Parity of DINO's and SwAV's objectives with transcriptions of the reference code
(facebookresearch/dino ``main_dino.py`` ``DINOLoss``; facebookresearch/swav ``main_swav.py``
``train`` and ``distributed_sinkhorn``), values and gradients, and their properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from anyssl.objectives_cluster import (
    DINOCenter,
    DINOLoss,
    SinkhornKnopp,
    dino_loss,
    sinkhorn_knopp,
    swav_loss,
    teacher_temperature,
)

N, K = 6, 10


def _rand(*shape: int, seed: int = 0) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---- the reference code, transcribed -------------------------------------------------------------
def ref_dino(student_output: Tensor, teacher_output: Tensor, center: Tensor, ncrops: int,
             n_global: int, student_temp: float, temp: float) -> Tensor:
    """``DINOLoss.forward`` (main_dino.py L380-404), ``chunk(2)`` generalized to ``n_global``."""
    student_out = student_output / student_temp
    student_out = student_out.chunk(ncrops)
    teacher_out = F.softmax((teacher_output - center) / temp, dim=-1)
    teacher_out = teacher_out.detach().chunk(n_global)
    total_loss: Tensor | float = 0
    n_loss_terms = 0
    for iq, q in enumerate(teacher_out):
        for v in range(len(student_out)):
            if v == iq:
                continue
            loss = torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1)
            total_loss += loss.mean()
            n_loss_terms += 1
    return total_loss / n_loss_terms  # type: ignore[return-value]


def ref_center(center: Tensor, teacher_output: Tensor, momentum: float) -> Tensor:
    """``DINOLoss.update_center`` (L407-416) on one process."""
    batch_center = torch.sum(teacher_output, dim=0, keepdim=True) / len(teacher_output)
    return center * momentum + batch_center * (1 - momentum)


def ref_sinkhorn(out: Tensor, epsilon: float = 0.05, iterations: int = 3) -> Tensor:
    """``distributed_sinkhorn`` (main_swav.py L354-376) with world_size 1."""
    Q = torch.exp(out / epsilon).t()
    B = Q.shape[1]
    K = Q.shape[0]
    Q /= torch.sum(Q)
    for _ in range(iterations):
        Q /= torch.sum(Q, dim=1, keepdim=True)
        Q /= K
        Q /= torch.sum(Q, dim=0, keepdim=True)
        Q /= B
    Q *= B
    return Q.t()


def ref_swav(output: Tensor, bs: int, nmb_crops: int, crops_for_assign: list[int],
             temperature: float) -> Tensor:
    """The loss of ``train`` (main_swav.py L289-315), without a queue."""
    loss: Tensor | float = 0
    for crop_id in crops_for_assign:
        with torch.no_grad():
            out = output[bs * crop_id: bs * (crop_id + 1)].detach()
            q = ref_sinkhorn(out)[-bs:]
        subloss: Tensor | float = 0
        for v in np.delete(np.arange(nmb_crops), crop_id):
            x = output[bs * v: bs * (v + 1)] / temperature
            subloss -= torch.mean(torch.sum(q * F.log_softmax(x, dim=1), dim=1))
        loss += subloss / (nmb_crops - 1)
    return loss / len(crops_for_assign)  # type: ignore[return-value]


# ---- DINO --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("n_views", "n_global"), [(2, 2), (5, 2), (3, 3), (4, 1)])
def test_dino_loss_matches_reference_values_and_gradients(n_views: int, n_global: int) -> None:
    student = _rand(n_views * N, K, seed=1).requires_grad_()
    teacher = _rand(n_global * N, K, seed=2)
    center = _rand(1, K, seed=3)
    got = dino_loss(student.chunk(n_views), teacher.chunk(n_global), center, 0.1, 0.04)
    want = ref_dino(student, teacher, center, n_views, n_global, 0.1, 0.04)
    torch.testing.assert_close(got, want)
    (g_got,) = torch.autograd.grad(got, student)
    (g_want,) = torch.autograd.grad(want, student)
    torch.testing.assert_close(g_got, g_want)


def test_dino_teacher_gets_no_gradient() -> None:
    teacher = _rand(2 * N, K, seed=2).requires_grad_()
    student = _rand(3 * N, K, seed=1).requires_grad_()
    dino_loss(student.chunk(3), teacher.chunk(2), torch.zeros(1, K), 0.1, 0.04).backward()
    assert teacher.grad is None and student.grad is not None


def test_dino_loss_module_centers_with_the_old_center_then_updates() -> None:
    module = DINOLoss(K, student_temp=0.1, center_momentum=0.9).double()
    module.center.center.copy_(_rand(1, K, seed=4))
    student, teacher = _rand(3 * N, K, seed=1), _rand(2 * N, K, seed=2)
    old = module.center.center.clone()
    got = module(student.chunk(3), teacher.chunk(2), 0.07)
    torch.testing.assert_close(got, ref_dino(student, teacher, old, 3, 2, 0.1, 0.07))
    torch.testing.assert_close(module.center.center, ref_center(old, teacher, 0.9))


def test_dino_center_reduces_over_ranks_like_one_process_with_the_whole_batch() -> None:
    """Rank 0's update with the other rank's sum and count added by ``reduce`` (what the
    all-reduce gives it) equals one process's update with both ranks' rows."""
    rows = _rand(2 * N, K, seed=5)
    other = torch.cat([rows[N:].sum(0, keepdim=True), rows.new_full((1, 1), N)], dim=1)
    ranked, whole = DINOCenter(K, 0.8).double(), DINOCenter(K, 0.8).double()
    ranked.update(rows[:N], reduce=lambda x: x + other)
    whole.update(rows, reduce=lambda x: x)
    torch.testing.assert_close(ranked.center, whole.center)
    torch.testing.assert_close(whole.center, ref_center(torch.zeros(1, K), rows, 0.8))


@pytest.mark.parametrize(("warmup", "final", "epochs"), [(0.04, 0.07, 30), (0.04, 0.04, 0),
                                                         (0.02, 0.05, 1), (0.07, 0.04, 4)])
def test_teacher_temperature_follows_the_reference_schedule(warmup, final, epochs) -> None:
    total = 40
    schedule = np.concatenate((np.linspace(warmup, final, epochs),
                               np.ones(total - epochs) * final))  # DINOLoss.__init__
    got = [teacher_temperature(e, warmup, final, epochs) for e in range(total)]
    np.testing.assert_allclose(got, schedule, rtol=1e-12)


def test_dino_loss_bad_inputs() -> None:
    a = torch.zeros(N, K)
    with pytest.raises(ValueError, match="student views"):
        dino_loss([a], [a], torch.zeros(1, K), 0.1, 0.04)
    with pytest.raises(ValueError, match="same shape"):
        dino_loss([a, torch.zeros(N, K + 1)], [a], torch.zeros(1, K), 0.1, 0.04)
    with pytest.raises(ValueError, match="temperatures"):
        dino_loss([a, a], [a], torch.zeros(1, K), 0.1, 0.0)
    with pytest.raises(ValueError, match="momentum"):
        DINOCenter(K, 1.5)


def test_dino_loss_is_float32_under_bfloat16_autocast() -> None:
    s, t = _rand(2 * N, K, seed=1).float(), _rand(2 * N, K, seed=2).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = dino_loss(s.bfloat16().chunk(2), t.bfloat16().chunk(2), torch.zeros(1, K), 0.1, 0.04)
    assert got.dtype == torch.float32 and torch.isfinite(got)


# ---- SwAV --------------------------------------------------------------------------------------
@pytest.mark.parametrize("iterations", [0, 1, 3])
def test_sinkhorn_matches_reference(iterations: int) -> None:
    scores = F.normalize(_rand(N, K, seed=1), dim=1)  # cosine scores, as SwAV's
    torch.testing.assert_close(sinkhorn_knopp(scores, 0.05, iterations),
                               ref_sinkhorn(scores.clone(), 0.05, iterations))


def test_sinkhorn_codes_are_assignments_with_balanced_prototypes() -> None:
    scores = F.normalize(_rand(40, 4, seed=2), dim=1)
    q = sinkhorn_knopp(scores, 0.5, 50)
    torch.testing.assert_close(q.sum(1), torch.ones(40, dtype=q.dtype))  # each sample: 1
    torch.testing.assert_close(q.sum(0), torch.full((4,), 10.0, dtype=q.dtype), rtol=1e-4,
                               atol=1e-4)  # each prototype: B/K
    assert not q.requires_grad
    torch.testing.assert_close(SinkhornKnopp(0.5, 50)(scores), q)  # one process: the same


def test_sinkhorn_reduce_sums_the_global_batch() -> None:
    """With a ``reduce`` that doubles (two ranks holding the same rows), the codes are those of
    one process with the rows twice."""
    scores = F.normalize(_rand(N, K, seed=3), dim=1)
    got = sinkhorn_knopp(scores, 0.05, 3, reduce=lambda x: 2 * x)
    torch.testing.assert_close(got, ref_sinkhorn(torch.cat([scores, scores]))[:N])


@pytest.mark.parametrize(("n_views", "assign"), [(2, [0, 1]), (5, [0, 1]), (3, [0])])
def test_swav_loss_matches_reference_values_and_gradients(n_views: int, assign) -> None:
    output = F.normalize(_rand(n_views * N, K, seed=6), dim=1).requires_grad_()
    views = output.chunk(n_views)
    codes = [sinkhorn_knopp(views[i].detach()) for i in assign]
    got = swav_loss(views, codes, 0.1)
    want = ref_swav(output, N, n_views, assign, 0.1)
    torch.testing.assert_close(got, want)
    (g_got,) = torch.autograd.grad(got, output)
    (g_want,) = torch.autograd.grad(want, output)
    torch.testing.assert_close(g_got, g_want)


def test_swav_bad_inputs() -> None:
    a = torch.zeros(N, K)
    with pytest.raises(ValueError, match="B x K"):
        sinkhorn_knopp(torch.zeros(N))
    with pytest.raises(ValueError, match="epsilon"):
        sinkhorn_knopp(a, epsilon=0.0)
    with pytest.raises(ValueError, match="temperature"):
        swav_loss([a, a], [a], 0.0)
    with pytest.raises(ValueError, match="teacher views"):
        swav_loss([a, a], [a, a, a], 0.1)
