"""Clustering and self-distillation objectives: DINO's centered, sharpened cross-entropy and
SwAV's Sinkhorn-Knopp codes with swapped prediction. Pure functions first, then thin modules.

Several processes: both objectives average their cross-entropy over the local samples only,
so DDP's averaged gradients are the whole batch's (the teacher probabilities and the codes carry
no gradient). What spans the batch is summed over every process with an all-reduce, exactly as
the reference code does: DINO's batch center (``main_dino.py`` ``DINOLoss.update_center``) and
SwAV's Sinkhorn normalizers (``main_swav.py`` ``distributed_sinkhorn``). The pure functions take
that reduction as an argument (``reduce``, the identity on one process), so their math is
testable without a process group. Reduced-precision inputs are upcast to float32 first: the
temperatures (0.04, 0.05) divide the logits and ``exp`` overflows bfloat16 scores quickly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from anyssl import distributed
from anyssl.objectives import _upcast

__all__ = ["DINOCenter", "DINOLoss", "SinkhornKnopp", "all_reduce_sum", "dino_loss",
           "sinkhorn_knopp", "swav_loss", "teacher_temperature"]

Reduce = Callable[[Tensor], Tensor]


def _identity(x: Tensor) -> Tensor:
    return x


def all_reduce_sum(x: Tensor) -> Tensor:
    """``x`` summed over every process (a new tensor); ``x`` itself without a process group."""
    if distributed.world_size() == 1:
        return x
    x = x.clone()
    dist.all_reduce(x)
    return x


def _check_views(student: Sequence[Tensor], teacher: Sequence[Tensor]) -> None:
    if not teacher or len(student) < 2 or len(teacher) > len(student):
        raise ValueError(f"need at least 2 student views and 1 to {len(student)} teacher views, "
                         f"got {len(student)} and {len(teacher)}")
    shape = teacher[0].shape
    if len(shape) != 2 or shape[0] == 0 or any(t.shape != shape for t in [*student, *teacher]):
        raise ValueError("every view's output must be N x K (N > 0) with the same shape, got "
                         f"{[tuple(t.shape) for t in [*student, *teacher]]}")


# ---- DINO ----------------------------------------------------------------------------------------
def dino_loss(student: Sequence[Tensor], teacher: Sequence[Tensor], center: Tensor,
              student_temp: float, teacher_temp: float) -> Tensor:
    """DINO's loss (Caron et al. 2021, Algorithm 1 and eq. 2-3; ``DINOLoss.forward``):
    ``H(P_t(x_i), P_s(x_v))`` averaged over the pairs of a teacher view ``i`` and a *different*
    student view ``v``, each the mean over the batch of ``-sum softmax((t - center) / T_t) *
    log_softmax(s / T_s)``. Teacher view ``i`` is student view ``i`` (the global views come
    first). The teacher probabilities are detached.

    Shape: student: V x (N x K); teacher: G x (N x K), G <= V; center: 1 x K. Returns 0-dim.
    """
    _check_views(student, teacher)
    if student_temp <= 0 or teacher_temp <= 0:
        raise ValueError(f"temperatures must be > 0, got {student_temp} and {teacher_temp}")
    log_p = [F.log_softmax(_upcast(s) / student_temp, dim=-1) for s in student]  # V x (N x K)
    losses = []
    for i, t in enumerate(teacher):
        q = F.softmax((_upcast(t) - center) / teacher_temp, dim=-1).detach()  # N x K
        losses += [-(q * log_p[v]).sum(dim=-1).mean() for v in range(len(student)) if v != i]
    return torch.stack(losses).mean()


def teacher_temperature(epoch: int, warmup_temp: float, temp: float, warmup_epochs: int) -> float:
    """DINO's teacher temperature at ``epoch``: ``np.linspace(warmup_temp, temp,
    warmup_epochs)[epoch]`` during the warm-up, then ``temp`` (``DINOLoss.__init__``)."""
    if epoch >= warmup_epochs:
        return temp
    if warmup_epochs == 1:
        return warmup_temp
    return warmup_temp + (temp - warmup_temp) * epoch / (warmup_epochs - 1)


class DINOCenter(nn.Module):
    """The center ``c`` subtracted from the teacher's outputs (Caron et al. 2021, eq. 4):
    ``c <- m c + (1 - m) mean of the teacher outputs of the global batch``, the mean all-reduced
    over processes (``DINOLoss.update_center``). ``center`` (1 x K, zeros at first) is a buffer,
    so it is checkpointed and follows the module's device.
    """

    center: Tensor

    def __init__(self, dim: int, momentum: float = 0.9) -> None:
        super().__init__()
        if dim < 1 or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"need dim >= 1 and momentum in [0, 1], got {dim} and {momentum}")
        self.momentum = momentum
        self.register_buffer("center", torch.zeros(1, dim))

    @torch.no_grad()
    def update(self, teacher: Tensor, reduce: Reduce = all_reduce_sum) -> None:
        """EMA step with the batch mean of ``teacher`` (every view's rows, N' x K)."""
        teacher = _upcast(teacher)  # N' x K, float32 under autocast
        count = teacher.new_full((1, 1), teacher.shape[0])  # 1 x 1
        total = reduce(torch.cat([teacher.sum(dim=0, keepdim=True), count], dim=1))  # 1 x (K+1)
        batch_center = total[:, :-1] / total[:, -1:]  # 1 x K: global sum / global count
        self.center.mul_(self.momentum).add_(batch_center.to(self.center), alpha=1 - self.momentum)


class DINOLoss(nn.Module):
    """``dino_loss`` with the center of ``DINOCenter``, updated after each call with the teacher
    outputs of the global views, as ``DINOLoss.forward`` does (centered with the old center)."""

    def __init__(self, dim: int, student_temp: float = 0.1, center_momentum: float = 0.9) -> None:
        super().__init__()
        self.student_temp = student_temp
        self.center = DINOCenter(dim, center_momentum)

    def forward(self, student: Sequence[Tensor], teacher: Sequence[Tensor],
                teacher_temp: float) -> Tensor:
        """Shape: student: V x (N x K); teacher: G x (N x K). Returns a 0-dim tensor."""
        loss = dino_loss(student, teacher, self.center.center, self.student_temp, teacher_temp)
        self.center.update(torch.cat(list(teacher)))  # G*N x K
        return loss

    def extra_repr(self) -> str:
        return f"student_temp={self.student_temp}"


# ---- SwAV ----------------------------------------------------------------------------------------
@torch.no_grad()
def sinkhorn_knopp(scores: Tensor, epsilon: float = 0.05, iterations: int = 3,
                   reduce: Reduce = _identity) -> Tensor:
    """SwAV's codes (Caron et al. 2020, sec. 3.1 and eq. 3; ``main_swav.py``
    ``distributed_sinkhorn``): ``Q = exp(scores / epsilon)``, then ``iterations`` rounds of
    making each prototype's total mass ``1/K`` and each sample's ``1/B``; returned with rows that
    sum to 1. ``reduce`` sums a tensor over every process (``all_reduce_sum``; the identity for
    one process): the prototype totals and ``B`` span the global batch, the samples' are local.

    Shape: scores: B x K (this process's samples) -> B x K, no gradient.
    """
    if scores.dim() != 2 or scores.shape[0] == 0:
        raise ValueError(f"scores must be B x K (B > 0), got {tuple(scores.shape)}")
    if epsilon <= 0 or iterations < 0:
        raise ValueError(f"need epsilon > 0 and iterations >= 0, got {epsilon}, {iterations}")
    q = torch.exp(_upcast(scores) / epsilon).t()  # K x B
    b = reduce(torch.tensor(float(q.shape[1]), device=q.device))  # samples over every process
    k = q.shape[0]
    q = q / reduce(q.sum())
    for _ in range(iterations):
        q = q / reduce(q.sum(dim=1, keepdim=True)) / k  # each prototype: total 1/K
        q = q / q.sum(dim=0, keepdim=True) / b  # each sample: total 1/B
    return (q * b).t()  # B x K


def swav_loss(scores: Sequence[Tensor], codes: Sequence[Tensor], temperature: float) -> Tensor:
    """SwAV's swapped prediction (Caron et al. 2020, eq. 1-2; ``main_swav.py`` ``train``): the
    code ``q_i`` of view ``i`` (the first ``len(codes)`` views) is predicted from every other
    view ``v``: ``-mean sum q_i log softmax(scores_v / T)``, averaged over the ``V - 1`` views
    and then over the codes.

    Shape: scores: V x (N x K) prototype scores; codes: C x (N x K), C <= V. Returns 0-dim.
    """
    _check_views(scores, codes)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    log_p = [F.log_softmax(_upcast(s) / temperature, dim=1) for s in scores]  # V x (N x K)
    losses = []
    for i, q in enumerate(codes):
        sub = [-(q * log_p[v]).sum(dim=1).mean() for v in range(len(scores)) if v != i]
        losses.append(torch.stack(sub).sum() / (len(scores) - 1))
    return torch.stack(losses).mean()


class SinkhornKnopp(nn.Module):
    """``sinkhorn_knopp`` summed over every process (``all_reduce_sum``)."""

    def __init__(self, epsilon: float = 0.05, iterations: int = 3) -> None:
        super().__init__()
        self.epsilon, self.iterations = epsilon, iterations

    def forward(self, scores: Tensor) -> Tensor:
        """Shape: B x K -> B x K codes (rows sum to 1), no gradient."""
        return sinkhorn_knopp(scores, self.epsilon, self.iterations, all_reduce_sum)

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}, iterations={self.iterations}"
