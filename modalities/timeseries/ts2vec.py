"""TS2Vec (Yue et al. 2022, "TS2Vec: Towards Universal Representation of Time Series"):
hierarchical contrast of per-time-step features of two overlapping crops.

The math is in pure functions: ``grouped_nt_xent`` (NT-Xent, the core's ``nt_xent`` with a dot
product and temperature 1, batched over groups and masked), the instance-wise and temporal
contrasts built on it (sec. 3.3, eqs. 1-2) and ``hierarchical_contrastive_loss`` (Algorithm 1).
The method composes them with the overlapping crops (``crops.OverlapCrops``), any time-series
encoder with a ``timesteps`` call, and a weight average of the encoder (the core's
``MomentumTarget`` with the ``average`` schedule; TS2Vec evaluates an SWA copy of its network).

Several processes: the instance-wise contrast takes the other series of the batch as negatives,
so the overlap features of every rank are gathered with gradient; each rank sums the anchor
losses of its own series (instance-wise and temporal) and divides by the anchor count of the
whole batch, times the world size. Averaged over ranks (as DDP averages gradients) this is the
loss, and the gradient, of one process holding every rank's series. Ranks whose crops drew
different overlap lengths are padded with invalid steps to the longest one first.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from anyssl import distributed
from anyssl.methods._common import check_views
from anyssl.modalities.timeseries.crops import AlignedView
from anyssl.modalities.timeseries.series import check_series, valid_steps
from anyssl.momentum import MomentumTarget
from anyssl.objectives import matmul_fp32
from anyssl.registry import METHODS
from anyssl.types import Batch, ViewSource

__all__ = ["TS2Vec", "gather_series_features", "grouped_nt_xent",
           "hierarchical_contrastive_loss", "instance_contrastive_loss",
           "temporal_contrastive_loss"]


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
    items (groups with fewer than 2 valid items contribute nothing).

    Shape: a, b G x M x D; valid G x M bool -> (0-dim sum, 0-dim count).
    """
    g, m = a.shape[:2]
    z = torch.cat([a, b], dim=1).float()  # G x 2M x D
    ok = torch.cat([valid, valid], dim=1)  # G x 2M
    anchor = _anchors(valid)  # G x 2M
    count = anchor.sum()
    items = torch.arange(m, device=a.device)[own if own is not None else slice(None)]  # own items
    idx = torch.cat([items, items + m])  # K: the anchor rows of z
    logits = matmul_fp32(z if own is None else z[:, idx], z.transpose(1, 2))  # G x K x 2M
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


@METHODS.register("ts2vec", scope="timeseries")
class TS2Vec(nn.Module):
    """TS2Vec: hierarchical contrast of two overlapping crops' per-time-step features.

    Args:
        encoder: a time-series encoder with ``timesteps(x, time_mask) -> N x T x D`` and
            ``out_dim`` (``dilated_conv`` is TS2Vec's own).
        views: ``OverlapCrops`` (the ``ts2vec`` recipe), or any two-view source of full,
            time-aligned series (every step then overlaps).
        alpha: weight of the instance-wise term (0.5, sec. 3.3).
        temporal_unit: first scale with temporal contrast (0, the paper's default).
        average: evaluate a uniform average of the encoder's weights over all steps (TS2Vec's
            ``torch.optim.swa_utils.AveragedModel``); False evaluates the last weights.
    """

    train_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adamw",  # torch.optim.AdamW with its default weight decay 0.01
        "lr": 1e-3,  # the paper's (sec. 4.1) and the reference code's, at its batch of 8
        "lr_scaling": "none",  # AdamW at a fixed lr (the reference code scales none)
        "weight_decay": 0.01,
        "schedule": "constant",
        "warmup_epochs": 0.0,
        "batch_size": 8,  # the paper's batch size
    }

    def __init__(self, encoder: nn.Module, views: ViewSource, *, alpha: float = 0.5,
                 temporal_unit: int = 0, average: bool = True) -> None:
        super().__init__()
        check_views(views, "TS2Vec", exactly=2)
        if not callable(getattr(encoder, "timesteps", None)):
            raise ValueError(f"TS2Vec needs an encoder with per-step features (timesteps()); "
                             f"{type(encoder).__name__} has none: use dilated_conv, resnet1d "
                             "or transformer")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.encoder, self.views = encoder, views
        self.alpha, self.temporal_unit = alpha, temporal_unit
        self.averaged = MomentumTarget(encoder, schedule="average") if average else None

    @property
    def eval_encoder(self) -> nn.Module:
        """The encoder that evaluation and embedding use (the weight average by default)."""
        return self.averaged.module if self.averaged is not None else self.encoder

    def _features(self, view: Any) -> tuple[Tensor, Tensor]:
        """Overlap features ``N x L x D`` and their validity ``N x L`` of one view."""
        if isinstance(view, AlignedView):
            x, start, length, mask = view.x, view.start, view.length, view.time_mask
        else:
            x = check_series(view, "TS2Vec's views")
            start, length, mask = 0, x.shape[-1], None
        h = cast(Any, self.encoder).timesteps(x, mask)  # N x T x D
        keep = slice(start, start + length)
        return h[:, keep], valid_steps(x)[:, keep]

    def training_step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        inputs, _ = batch
        v1, v2 = self.views(inputs)
        (z1, ok1), (z2, ok2) = self._features(v1), self._features(v2)
        if z1.shape != z2.shape:
            raise ValueError(f"TS2Vec's two views must align: got {tuple(z1.shape)} and "
                             f"{tuple(z2.shape)} (use the ts2vec recipe or length-keeping augs)")
        valid, rows = ok1 & ok2, None
        if distributed.world_size() > 1:  # every rank's series, this rank's share of the loss
            z1, z2, valid, rows = gather_series_features(z1, z2, valid)
        loss = hierarchical_contrastive_loss(z1, z2, valid, alpha=self.alpha,
                                             temporal_unit=self.temporal_unit, rows=rows)
        return loss, {"loss": loss.detach()}

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Same as ``training_step``, so a ``DistributedDataParallel`` wrapper can call it."""
        return self.training_step(batch)

    def on_step_end(self, step: int, max_steps: int) -> None:
        """Fold the new weights into the average."""
        if self.averaged is not None:
            self.averaged.update(step, max_steps)
