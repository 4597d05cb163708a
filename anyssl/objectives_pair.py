"""CLIP's symmetric contrastive loss (Radford et al. 2021, "Learning Transferable Visual Models
From Natural Language Supervision", fig. 3), in open_clip's form (``open_clip/loss.py``,
``ClipLoss``): a pure function that takes the gathered features and the rank as arguments, then a
thin module that gathers them.

Under autocast the features are upcast to float32 before the similarity matmul, which runs with
autocast off, so logits and softmax are float32 too (as in ``anyssl.objectives``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anyssl import distributed
from anyssl.objectives import _check_all, _check_pair, _similarities
from anyssl.registry import OBJECTIVES

__all__ = ["ClipLoss", "clip_loss"]


def _check_scale(logit_scale: Tensor | float) -> None:
    if isinstance(logit_scale, Tensor):
        if logit_scale.numel() != 1:
            raise ValueError(
                f"logit_scale must be a scalar, got a tensor of shape {tuple(logit_scale.shape)}"
            )
    elif not logit_scale > 0:
        raise ValueError(f"logit_scale (1 / temperature) must be > 0, got {logit_scale}")


def clip_loss(
    a: Tensor,
    b: Tensor,
    logit_scale: Tensor | float,
    *,
    a_all: Tensor | None = None,
    b_all: Tensor | None = None,
    rank: int = 0,
    local_loss: bool = False,
) -> Tensor:
    """Symmetric cross-entropy over the paired similarities (CLIP, fig. 3; open_clip ClipLoss).

    ``a`` and ``b`` are L2-normalized features of the two sides (image, text), row ``i`` of each
    a pair; ``logit_scale`` is already exponentiated (1 / temperature). One device:
    ``logits = scale * a @ b.T`` and the loss is the mean of the cross-entropies of ``logits``
    (a -> b) and ``logits.T`` (b -> a) with targets ``0..N-1``.

    With the features of every rank (``a_all``, ``b_all``; rank ``r``'s rows at ``r*N``):
    ``local_loss=False`` scores the whole global batch on every rank (``(NW) x (NW)`` logits,
    targets ``0..NW-1``); ``local_loss=True`` scores only the local rows against every rank's
    other side (``N x NW`` logits, targets ``r*N + i``), whose mean over ranks is the global
    loss at a W-th of the cost.

    Shape:
        a, b: N x D. a_all, b_all: (N * world_size) x D. logit_scale: scalar.
        Returns a 0-dim float32 tensor (float64 for float64 inputs).
    """
    _check_pair(a, b, "a and b")
    _check_scale(logit_scale)
    if (a_all is None) != (b_all is None):
        raise ValueError("pass both a_all and b_all (the gathered features) or neither")
    n = a.shape[0]
    if a_all is None or b_all is None:
        logits_a = logit_scale * _similarities(a, b)  # N x N
        logits_b = logits_a.T  # N x N
        labels = torch.arange(n, device=a.device)  # N
    else:
        _check_all(a, a_all, rank, "a_all")
        _check_pair(a_all, b_all, "a_all and b_all")
        if local_loss:
            logits_a = logit_scale * _similarities(a, b_all)  # N x NW
            logits_b = logit_scale * _similarities(b, a_all)  # N x NW
            labels = torch.arange(n, device=a.device) + rank * n  # N
        else:
            logits_a = logit_scale * _similarities(a_all, b_all)  # NW x NW
            logits_b = logits_a.T  # NW x NW
            labels = torch.arange(a_all.shape[0], device=a.device)  # NW
    return (F.cross_entropy(logits_a, labels) + F.cross_entropy(logits_b, labels)) / 2


@OBJECTIVES.register("clip")
class ClipLoss(nn.Module):
    """CLIP's loss (Radford et al. 2021) as open_clip's ``ClipLoss``: with more than one process
    and ``gather=True`` both sides are gathered with gradient (``gather_with_grad``) and the
    loss is the global-batch one (``local_loss=False``) or the local rows' (``local_loss=True``);
    on one device the in-batch loss. The learnable ``logit_scale`` belongs to the method.

    Both give the one-process gradient under DDP's averaging: with ``local_loss=False`` every
    rank computes the same global loss, the gather's backward sums the W identical gradients of
    each slice and DDP divides by W; with ``local_loss=True`` the mean over ranks of the local
    losses is the global loss. ``logit_scale`` gets the global loss's gradient either way.
    """

    def __init__(self, local_loss: bool = False, gather: bool = True) -> None:
        super().__init__()
        self.local_loss, self.gather = local_loss, gather

    def forward(self, a: Tensor, b: Tensor, logit_scale: Tensor | float) -> Tensor:
        """Shape: a, b: N x D (L2-normalized); logit_scale: scalar. Returns a 0-dim tensor."""
        if not self.gather or distributed.world_size() == 1:
            return clip_loss(a, b, logit_scale)
        return clip_loss(a, b, logit_scale, a_all=distributed.gather_with_grad(a),
                         b_all=distributed.gather_with_grad(b), rank=distributed.rank(),
                         local_loss=self.local_loss)

    def extra_repr(self) -> str:
        return f"local_loss={self.local_loss}, gather={self.gather}"
