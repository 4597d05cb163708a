"""TS2Vec's losses (Yue et al. 2022, sec. 3.3, eqs. 1-2, Algorithm 1) as pure functions:
``grouped_nt_xent`` (NT-Xent with a dot product and temperature 1, batched over groups and
masked; one process uses a fused forward/backward that needs two matrix products instead of
three), the instance-wise and temporal contrasts built on it, ``hierarchical_contrastive_loss``
and ``gather_series_features`` (every rank's overlap features, for several processes).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from anyssl import distributed
from anyssl.objectives import matmul_fp32

__all__ = ["gather_series_features", "grouped_nt_xent", "hierarchical_contrastive_loss",
           "instance_contrastive_loss", "temporal_contrastive_loss"]


def _anchors(valid: Tensor) -> Tensor:
    """``G x 2M`` bool: the anchors of ``grouped_nt_xent``, every valid item of both views in
    a group with at least 2 valid items (an anchor needs a negative). Shape: valid G x M."""
    return torch.cat([valid, valid], dim=1) & (valid.sum(1, keepdim=True) >= 2)


def grouped_nt_xent(a: Tensor, b: Tensor, valid: Tensor,
                    own: slice | None = None) -> tuple[Tensor, Tensor]:
    """NT-Xent within each group, with dot-product similarity and temperature 1 (TS2Vec).

    In group ``g`` every valid item of ``a`` and ``b`` is an anchor; its positive is the same
    item of the other view; its negatives are every other valid item of both views. Invalid
    items are neither anchors nor negatives. Returns the summed losses of the anchors among the
    items ``own`` (default: all; a rank's own series) and the number of anchors among *all*
    items (groups with fewer than 2 valid items contribute nothing). Without ``own`` (one
    process, and every temporal contrast) this runs ``_FusedNTXent``; with it, autograd.

    Shape: a, b G x M x D; valid G x M bool -> (0-dim sum, 0-dim count).
    """
    g, m = a.shape[:2]
    z = torch.cat([a, b], dim=1).float()  # G x 2M x D
    ok = torch.cat([valid, valid], dim=1)  # G x 2M
    anchor = _anchors(valid)  # G x 2M
    count = anchor.sum()
    if own is None:  # every item's anchor loss: the fused kernel (same sums, 2 matmuls not 3)
        dense = bool(valid.all())  # no column to mask (the reference's case)
        loss = _FusedNTXent.apply(z, None if dense else ok, anchor)
        return loss, count.to(loss.dtype)
    items = torch.arange(m, device=a.device)[own]  # own items
    idx = torch.cat([items, items + m])  # K: the anchor rows of z
    logits = matmul_fp32(z[:, idx], z.transpose(1, 2))  # G x K x 2M
    is_self = torch.zeros(idx.shape[0], 2 * m, dtype=torch.bool, device=a.device)  # K x 2M
    is_self[torch.arange(idx.shape[0], device=a.device), idx] = True
    logits = logits.masked_fill(is_self | ~ok.unsqueeze(1), float("-inf"))
    pos = torch.cat([torch.arange(m, 2 * m), torch.arange(m)]).to(a.device)[idx]  # K
    mine = anchor[:, idx]  # G x K
    if not bool(mine.any()):
        zero = a.sum() * 0.0  # keeps the graph (and the device) for backward
        return zero, count.to(zero.dtype)
    logp = logits[mine].log_softmax(dim=-1)  # A x 2M
    loss = -logp.gather(1, pos.expand(g, -1)[mine].unsqueeze(1)).sum()
    return loss, count.to(loss.dtype)


#: Similarities per chunk of groups in ``_FusedNTXent`` (16 MB of float32): large buffers are
#: fresh ``mmap`` pages each step (page faults cost as much as the exp); chunks this size are
#: reused heap memory and stay in cache across the passes over them.
CHUNK_SIMILARITIES = 1 << 22


def _exp_similarities(z: Tensor, ok: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """``exp(s - max)`` of one chunk's similarities over each anchor's candidates (every valid
    item but itself), their row sums and log-sum-exps.

    Shape: z g x 2M x D, ok g x 2M or None -> g x 2M x 2M, g x 2M, g x 2M.
    """
    sim = matmul_fp32(z, z.transpose(1, 2))  # g x 2M x 2M
    sim.diagonal(dim1=1, dim2=2).fill_(float("-inf"))  # not its own negative
    if ok is not None:
        sim.masked_fill_(~ok.unsqueeze(1), float("-inf"))  # invalid items: no candidates
    top = sim.amax(dim=-1, keepdim=True)  # g x 2M x 1
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))  # empty rows
    exp = sim.sub_(top).exp_()  # in place
    total = exp.sum(dim=-1)  # g x 2M
    return exp, total, top.squeeze(-1) + total.log()


class _FusedNTXent(torch.autograd.Function):
    """``grouped_nt_xent`` with ``own=None``, forward and backward written out (Yue et al.
    2022, eqs. 1-2; TS2Vec ``models/losses.py`` L27-L35, L42-L49): the same log-softmax over
    every candidate but the item itself, without the reference's ``tril``/``triu`` copies or
    autograd's, over chunks of ``CHUNK_SIMILARITIES``. The similarity is symmetric, so the
    backward is one matmul, ``(P + P^T) z``, instead of autograd's two; the positives' term is
    ``2 z_pos`` on each anchor (the positive of the positive is the anchor).

    Shape: z G x 2M x D (float), ok G x 2M bool or None (all valid), anchor G x 2M -> 0-dim.
    """

    @staticmethod
    def forward(ctx: Any, z: Tensor, ok: Tensor | None, anchor: Tensor) -> Tensor:
        m = z.shape[1] // 2
        step = max(1, CHUNK_SIMILARITIES // (2 * m) ** 2)  # groups per chunk
        chunks = [_exp_similarities(z[i:i + step], None if ok is None else ok[i:i + step])
                  for i in range(0, z.shape[0], step)]
        total = torch.cat([c[1] for c in chunks])  # G x 2M
        lse = torch.cat([c[2] for c in chunks])  # G x 2M
        pos = (z[:, :m] * z[:, m:]).sum(-1).repeat(1, 2)  # G x 2M: item . its positive
        ctx.step = step
        ctx.save_for_backward(z, total, anchor, *[c[0] for c in chunks])
        return torch.where(anchor, lse - pos, torch.zeros_like(lse)).sum()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        z, total, anchor, *exps = ctx.saved_tensors
        m, step = z.shape[1] // 2, ctx.step
        scale = torch.where(anchor, grad / total, torch.zeros_like(total))  # G x 2M
        dz = torch.empty_like(z)
        for i, exp in zip(range(0, z.shape[0], step), exps, strict=True):
            p = exp.mul_(scale[i:i + step].unsqueeze(-1))  # d loss / d sim, softmax part
            dz[i:i + step] = matmul_fp32(p + p.transpose(1, 2), z[i:i + step])  # both uses
        swapped = torch.cat([z[:, m:], z[:, :m]], dim=1)  # G x 2M x D: each item's positive
        return dz.sub_((2 * grad) * anchor.unsqueeze(-1) * swapped), None, None


def instance_contrastive_loss(z1: Tensor, z2: Tensor, valid: Tensor,
                              rows: slice | None = None) -> tuple[Tensor, Tensor]:
    """Instance-wise contrast (eq. 2): at each time step, the same series in the other view is
    the positive, the other series of the batch (both views) the negatives. ``rows``: sum the
    anchors of these series only (a rank's own); the count is every anchor's.

    Shape: z1, z2 N x T x D, valid N x T -> (sum, count) over anchors.
    """
    return grouped_nt_xent(z1.transpose(0, 1), z2.transpose(0, 1), valid.transpose(0, 1), rows)


def temporal_contrastive_loss(z1: Tensor, z2: Tensor, valid: Tensor,
                              rows: slice | None = None) -> tuple[Tensor, Tensor]:
    """Temporal contrast (eq. 1): within a series, the same time step in the other view is the
    positive, the other time steps (both views) the negatives. ``rows``: sum the anchors of
    these series only; the count is every series' anchors.

    Shape: z1, z2 N x T x D, valid N x T -> (sum, count) over anchors.
    """
    if rows is None:
        return grouped_nt_xent(z1, z2, valid)
    total, _ = grouped_nt_xent(z1[rows], z2[rows], valid[rows])
    return total, _anchors(valid).sum().to(total.dtype)


def _pool_pairs(z: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Max-pool time by 2 (kernel 2, stride 2, an odd last step dropped) over valid steps only.

    Shape: z N x T x D, valid N x T -> N x T//2 x D, N x T//2.
    """
    t = z.shape[1] // 2 * 2
    neg = torch.finfo(z.dtype).min
    zz = z[:, :t].masked_fill(~valid[:, :t].unsqueeze(-1), neg)
    zz = zz.reshape(z.shape[0], t // 2, 2, z.shape[2]).amax(dim=2)
    vv = valid[:, :t].reshape(z.shape[0], t // 2, 2).any(dim=2)
    return zz.masked_fill(~vv.unsqueeze(-1), 0.0), vv


def hierarchical_contrastive_loss(
    z1: Tensor, z2: Tensor, valid: Tensor | None = None, *, alpha: float = 0.5,
    temporal_unit: int = 0, rows: slice | None = None,
) -> Tensor:
    """TS2Vec's loss (Algorithm 1): ``alpha`` x instance + ``(1 - alpha)`` x temporal contrast
    at every scale of max-pooling by 2 along time, averaged over the scales. Temporal contrast
    starts at scale ``temporal_unit``; the last (single-step) scale is instance-only.

    With every step valid this equals the reference code's loss; masked steps are left out of
    both anchors and negatives.

    ``rows`` (several processes; ``z1``, ``z2``, ``valid`` then hold every rank's series): this
    rank's share, the anchor losses of its series ``rows`` over the whole batch's anchor count,
    times ``N / len(rows)``, so that the mean of the shares over ranks is the loss.

    Shape: z1, z2 N x T x D (aligned time steps), valid N x T bool (default: all) -> 0-dim.
    """
    if z1.shape != z2.shape or z1.dim() != 3:
        raise ValueError(f"z1 and z2 must both be N x T x D; got {tuple(z1.shape)}, "
                         f"{tuple(z2.shape)}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if valid is None:
        valid = torch.ones(z1.shape[:2], dtype=torch.bool, device=z1.device)
    share = None if rows is None else z1.shape[0] / len(range(z1.shape[0])[rows])
    total, depth = z1.new_zeros((), dtype=torch.float32), 0
    while z1.shape[1] > 1:
        if alpha > 0:
            total = total + alpha * _mean(*instance_contrastive_loss(z1, z2, valid, rows), share)
        if depth >= temporal_unit and alpha < 1:
            temporal = temporal_contrastive_loss(z1, z2, valid, rows)
            total = total + (1 - alpha) * _mean(*temporal, share)
        depth += 1
        (z1, pooled_valid), (z2, _) = _pool_pairs(z1, valid), _pool_pairs(z2, valid)
        valid = pooled_valid
    if alpha > 0:  # the single-step scale: instance contrast only
        total = total + alpha * _mean(*instance_contrastive_loss(z1, z2, valid, rows), share)
    return total / (depth + 1)


def _mean(total: Tensor, count: Tensor, share: float | None = None) -> Tensor:
    mean = total / count.clamp(min=1.0)
    return mean if share is None else mean * share


def gather_series_features(z1: Tensor, z2: Tensor, valid: Tensor
                           ) -> tuple[Tensor, Tensor, Tensor, slice]:
    """Every rank's overlap features, for ``hierarchical_contrastive_loss(..., rows=rows)``.

    The time axis is padded with invalid steps to the longest rank's first (each rank draws
    its own crops), then ``z1``, ``z2`` are gathered with gradient and ``valid`` without.
    Every rank must hold the same number of series. Identity on one process.

    Shape: z1, z2 N x T x D, valid N x T -> (NW) x T' x D twice, (NW) x T', and this rank's
    rows ``rank*N:(rank+1)*N``.
    """
    n, t = z1.shape[:2]
    if distributed.world_size() == 1:
        return z1, z2, valid, slice(0, n)
    longest = torch.tensor([t], device=z1.device)
    dist.all_reduce(longest, op=dist.ReduceOp.MAX)
    pad = int(longest.item()) - t
    if pad:
        z1, z2 = F.pad(z1, (0, 0, 0, pad)), F.pad(z2, (0, 0, 0, pad))  # N x T' x D
        valid = F.pad(valid, (0, pad), value=False)  # N x T'
    valid_all = distributed.gather_no_grad(valid.to(torch.uint8)).bool()  # NW x T'
    z1_all, z2_all = distributed.gather_with_grad(z1), distributed.gather_with_grad(z2)
    r = distributed.rank()
    return z1_all, z2_all, valid_all, slice(r * n, (r + 1) * n)
