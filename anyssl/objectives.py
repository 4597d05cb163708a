"""Contrastive and predictive objectives: pure functions first, then thin modules.

The functions hold the math and take the distributed facts (gathered tensors, ``rank``) as
arguments, so the multi-device case is testable on one CPU. Under autocast the embeddings
(gathered ones and queue negatives too) are upcast to float32 first and normalized, compared
(``_similarities``, with autocast off so the matmul is not cast back down) and softmaxed in
float32: in bfloat16 a cosine keeps ~3 significant digits, which a temperature of 0.07-0.2
blows up in the logits. Every loss is returned in float32 (float64 for float64 inputs); the
gradients flow back to the inputs in their own dtype. The modules registered in ``OBJECTIVES``
gather across processes themselves (a no-op on one device).

Gradient scaling across processes: each rank's loss is the mean over its own anchors, scored
against every rank's candidates (gathered with ``distributed.gather_with_grad``, whose backward
sums every rank's gradient for each slice). With the same number of anchors per rank the mean
of the per-rank losses is the whole batch's loss, and DDP, which *averages* the parameter
gradients over ranks, then yields exactly the gradient of one process holding the whole batch;
no extra factor of the world size is needed (``tests/test_distributed_methods.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anyssl import distributed
from anyssl.registry import OBJECTIVES

__all__ = ["BYOLLoss", "InfoNCELoss", "NTXentLoss", "byol_loss", "info_nce", "matmul_fp32",
           "nt_xent"]


def _upcast(x: Tensor) -> Tensor:
    """float16/bfloat16 -> float32 (similarity and loss precision under autocast); else as is."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def matmul_fp32(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` in float32 (float64 for float64 inputs) even under autocast, which would
    otherwise cast float32 operands back down to its lower dtype. For similarity matrices that
    a temperature divides (every contrastive loss, in the core and in the plugins).

    Shape: a: ... x N x D, b: ... x D x M; returns ... x N x M.
    """
    a, b = _upcast(a), _upcast(b)
    available = getattr(torch.amp, "is_autocast_available", None)  # torch >= 2.4
    if available is not None and not available(a.device.type):  # e.g. meta: no autocast
        return a @ b
    with torch.autocast(a.device.type, enabled=False):
        return a @ b


def _similarities(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b.T`` in float32 (``matmul_fp32``). Shape: a: N x D, b: M x D; returns N x M."""
    return matmul_fp32(a, b.T)  # N x M


def _check_pair(a: Tensor, b: Tensor, names: str) -> None:
    if a.dim() != 2 or a.shape != b.shape or a.shape[0] == 0:
        raise ValueError(
            f"{names} must both be N x D (N > 0) with the same shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )


def _check_temperature(temperature: float) -> None:
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def _check_all(local: Tensor, gathered: Tensor, rank: int, name: str) -> None:
    n = local.shape[0]
    if gathered.dim() != 2 or gathered.shape[1] != local.shape[1] or gathered.shape[0] % n:
        raise ValueError(
            f"{name} must be (N * world_size) x D for a local batch of {tuple(local.shape)}, "
            f"got {tuple(gathered.shape)}"
        )
    if not 0 <= rank < gathered.shape[0] // n:
        raise ValueError(
            f"rank {rank} is outside the {gathered.shape[0] // n} ranks that {name} holds"
        )


def _in_batch(query: Tensor, key_all: Tensor, temperature: float, rank: int) -> Tensor:
    """Cross-entropy of ``query`` against every row of ``key_all``; query ``i``'s positive is
    row ``rank*N + i``."""
    n = query.shape[0]
    logits = _similarities(query, key_all) / temperature  # N x (N*W)
    targets = torch.arange(n, device=query.device) + rank * n  # N
    return F.cross_entropy(logits, targets)


def info_nce(
    query: Tensor,
    key: Tensor,
    temperature: float,
    *,
    negatives: Tensor | None = None,
    symmetric: bool = False,
    key_all: Tensor | None = None,
    query_all: Tensor | None = None,
    rank: int = 0,
    normalize: bool = True,
) -> Tensor:
    """InfoNCE loss (Oord et al. 2018; MoCo, He et al. 2020, eq. 1), mean over the batch.

    With ``negatives`` (e.g. a MoCo queue) query ``i`` scores its own key against the K
    negatives: logits ``[q.k, q.neg] / T`` of size ``1 + K``, target 0. Without, the negatives
    are the other keys of the batch: logits ``q @ key_all.T / T`` with target ``rank*N + i``,
    where ``key_all`` holds the keys of every rank (default: ``key``, one device).
    ``symmetric=True`` (in-batch only) averages this with the same loss with keys as queries
    against ``query_all`` (needed whenever ``key_all`` is given). ``normalize`` L2-normalizes
    every input first, so the scores are cosine similarities. Reduced-precision inputs are
    upcast to float32 before any of this.

    Shape:
        query, key: N x D. negatives: K x D. key_all, query_all: (N * world_size) x D.
        Returns a 0-dim tensor.
    """
    _check_pair(query, key, "query and key")
    _check_temperature(temperature)
    query, key = _upcast(query), _upcast(key)  # N x D each, float32 under autocast
    if normalize:
        query, key = F.normalize(query, dim=1), F.normalize(key, dim=1)
    if negatives is not None:
        if symmetric or key_all is not None or query_all is not None:
            raise ValueError(
                "symmetric, key_all and query_all apply to in-batch negatives only; with a "
                "queue, call info_nce twice with the views swapped for a symmetrized loss"
            )
        return _with_queue(query, key, negatives, temperature, normalize)
    if symmetric and key_all is not None and query_all is None:
        raise ValueError("symmetric in-batch info_nce with key_all also needs query_all")
    if key_all is not None:
        _check_all(key, key_all, rank, "key_all")
        key_all = F.normalize(_upcast(key_all), dim=1) if normalize else key_all
    loss = _in_batch(query, key if key_all is None else key_all, temperature, rank)
    if not symmetric:
        return loss
    if query_all is not None:
        _check_all(query, query_all, rank, "query_all")
        query_all = F.normalize(_upcast(query_all), dim=1) if normalize else query_all
    return 0.5 * (loss + _in_batch(key, query if query_all is None else query_all, temperature,
                                   rank))


def _with_queue(
    query: Tensor, key: Tensor, negatives: Tensor, temperature: float, normalize: bool
) -> Tensor:
    """MoCo's loss (eq. 1): each query's own key against the K shared negatives, target 0."""
    if negatives.dim() != 2 or negatives.shape[1] != query.shape[1]:
        raise ValueError(f"negatives must be K x {query.shape[1]}, got {tuple(negatives.shape)}")
    negatives = _upcast(negatives)  # K x D
    if normalize:
        negatives = F.normalize(negatives, dim=1)
    l_pos = (query * key).sum(dim=1, keepdim=True)  # N x 1 (query, key: already upcast)
    l_neg = _similarities(query, negatives)  # N x K
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature  # N x (1+K)
    targets = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)  # N
    return F.cross_entropy(logits, targets)


def nt_xent(
    z_a: Tensor,
    z_b: Tensor,
    temperature: float,
    *,
    z_a_all: Tensor | None = None,
    z_b_all: Tensor | None = None,
    rank: int = 0,
    normalize: bool = True,
) -> Tensor:
    """NT-Xent, SimCLR's loss (Chen et al. 2020, eq. 1), mean over the 2N local anchors.

    Every row of ``z_a`` and ``z_b`` is an anchor whose positive is the other view of its sample
    and whose negatives are the other 2NW - 2 embeddings of both views on every rank; the
    anchor's similarity to itself is masked out. ``z_a_all``/``z_b_all`` hold the embeddings of
    every rank (default: the local ones), local rows at ``rank*N:(rank+1)*N``.

    Shape:
        z_a, z_b: N x D. z_a_all, z_b_all: (N * world_size) x D. Returns a 0-dim tensor.
    """
    _check_pair(z_a, z_b, "z_a and z_b")
    _check_temperature(temperature)
    if (z_a_all is None) != (z_b_all is None):
        raise ValueError("pass both z_a_all and z_b_all (the gathered views) or neither")
    z_a_all = z_a if z_a_all is None else z_a_all
    z_b_all = z_b if z_b_all is None else z_b_all
    _check_all(z_a, z_a_all, rank, "z_a_all")
    _check_pair(z_a_all, z_b_all, "z_a_all and z_b_all")
    n, m = z_a.shape[0], z_a_all.shape[0]  # local and global batch
    anchors = _upcast(torch.cat([z_a, z_b]))  # 2N x D, float32 under autocast
    candidates = _upcast(torch.cat([z_a_all, z_b_all]))  # 2M x D
    if normalize:
        anchors, candidates = F.normalize(anchors, dim=1), F.normalize(candidates, dim=1)
    logits = _similarities(anchors, candidates) / temperature  # 2N x 2M
    local = torch.arange(n, device=z_a.device) + rank * n  # local rows within one view: N
    self_idx = torch.cat([local, local + m])  # 2N: each anchor's own column
    pos_idx = torch.cat([local + m, local])  # 2N: the other view of the same sample
    is_self = torch.zeros_like(logits, dtype=torch.bool)  # 2N x 2M
    is_self[torch.arange(2 * n, device=z_a.device), self_idx] = True
    logits = logits.masked_fill(is_self, float("-inf"))
    return F.cross_entropy(logits, pos_idx)


def byol_loss(p: Tensor, z: Tensor) -> Tensor:
    """BYOL's loss (Grill et al. 2020, eq. 2): ``2 - 2 cos(p, z)``, mean over the batch.

    ``p`` is the online prediction, ``z`` the target projection; the caller detaches ``z``
    (the target gets no gradient). Shape: p, z: N x D. Returns a 0-dim tensor.
    """
    _check_pair(p, z, "p and z")
    return 2 - 2 * F.cosine_similarity(_upcast(p), _upcast(z), dim=1).mean()


# ---- modules -----------------------------------------------------------------------------------
@OBJECTIVES.register("info_nce")
class InfoNCELoss(nn.Module):
    """InfoNCE (MoCo, He et al. 2020, eq. 1) with a queue of negatives or in-batch negatives.

    In-batch, keys (and queries, when symmetric) are gathered from every process with
    ``gather=True`` (a no-op on one device).
    """

    def __init__(self, temperature: float = 0.07, symmetric: bool = False, gather: bool = True):
        super().__init__()
        _check_temperature(temperature)
        self.temperature, self.symmetric, self.gather = temperature, symmetric, gather

    def forward(self, query: Tensor, key: Tensor, negatives: Tensor | None = None) -> Tensor:
        """Shape: query, key: N x D; negatives: K x D. Returns a 0-dim tensor."""
        if negatives is not None or not self.gather or distributed.world_size() == 1:
            return info_nce(query, key, self.temperature, negatives=negatives,
                            symmetric=self.symmetric)
        key_all = distributed.gather_with_grad(key)
        query_all = distributed.gather_with_grad(query) if self.symmetric else None
        return info_nce(query, key, self.temperature, symmetric=self.symmetric,
                        key_all=key_all, query_all=query_all, rank=distributed.rank())

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, symmetric={self.symmetric}"


@OBJECTIVES.register("nt_xent")
class NTXentLoss(nn.Module):
    """NT-Xent (SimCLR, Chen et al. 2020, eq. 1); both views gathered from every process with
    ``gather=True`` (a no-op on one device)."""

    def __init__(self, temperature: float = 0.5, gather: bool = True) -> None:
        super().__init__()
        _check_temperature(temperature)
        self.temperature, self.gather = temperature, gather

    def forward(self, z_a: Tensor, z_b: Tensor) -> Tensor:
        """Shape: z_a, z_b: N x D. Returns a 0-dim tensor."""
        if not self.gather or distributed.world_size() == 1:
            return nt_xent(z_a, z_b, self.temperature)
        return nt_xent(z_a, z_b, self.temperature, z_a_all=distributed.gather_with_grad(z_a),
                       z_b_all=distributed.gather_with_grad(z_b), rank=distributed.rank())

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


@OBJECTIVES.register("byol")
class BYOLLoss(nn.Module):
    """BYOL's normalized MSE, ``2 - 2 cos(p, z)`` (Grill et al. 2020, eq. 2); detaches ``z``."""

    def forward(self, p: Tensor, z: Tensor) -> Tensor:
        """Shape: p, z: N x D. Returns a 0-dim tensor."""
        return byol_loss(p, z.detach())
