"""TS2Vec (Yue et al. 2022, "TS2Vec: Towards Universal Representation of Time Series"):
hierarchical contrast of per-time-step features of two overlapping crops.

The math is in pure functions: ``grouped_nt_xent`` (NT-Xent, the core's ``nt_xent`` with a dot
product and temperature 1, batched over groups and masked), the instance-wise and temporal
contrasts built on it (sec. 3.3, eqs. 1-2) and ``hierarchical_contrastive_loss`` (Algorithm 1).
The method composes them with the overlapping crops (``crops.OverlapCrops``), any time-series
encoder with a ``timesteps`` call, and a weight average of the encoder (the core's
``MomentumTarget`` with the ``average`` schedule; TS2Vec evaluates an SWA copy of its network).
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch
from torch import Tensor, nn

from anyssl.methods._common import check_views
from anyssl.modalities.timeseries.crops import AlignedView
from anyssl.modalities.timeseries.series import check_series, valid_steps
from anyssl.momentum import MomentumTarget
from anyssl.registry import METHODS
from anyssl.types import Batch, ViewSource

__all__ = ["TS2Vec", "grouped_nt_xent", "hierarchical_contrastive_loss",
           "instance_contrastive_loss", "temporal_contrastive_loss"]


def grouped_nt_xent(a: Tensor, b: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """NT-Xent within each group, with dot-product similarity and temperature 1 (TS2Vec).

    In group ``g`` every valid item of ``a`` and ``b`` is an anchor; its positive is the same
    item of the other view; its negatives are every other valid item of both views. Invalid
    items are neither anchors nor negatives. Returns the summed anchor losses and the number of
    anchors (groups with fewer than 2 valid items contribute nothing).

    Shape: a, b G x M x D; valid G x M bool -> (0-dim sum, 0-dim count).
    """
    g, m = a.shape[:2]
    z = torch.cat([a, b], dim=1).float()  # G x 2M x D
    ok = torch.cat([valid, valid], dim=1)  # G x 2M
    logits = z @ z.transpose(1, 2)  # G x 2M x 2M
    eye = torch.eye(2 * m, dtype=torch.bool, device=a.device)
    logits = logits.masked_fill(eye | ~ok.unsqueeze(1), float("-inf"))
    pos = torch.cat([torch.arange(m, 2 * m), torch.arange(m)]).to(a.device)  # 2M
    anchor = ok & (valid.sum(1, keepdim=True) >= 2)  # G x 2M: needs a negative
    if not bool(anchor.any()):
        zero = a.sum() * 0.0  # keeps the graph (and the device) for backward
        return zero, zero.detach()
    logp = logits[anchor].log_softmax(dim=-1)  # K x 2M
    loss = -logp.gather(1, pos.expand(g, -1)[anchor].unsqueeze(1)).sum()
    return loss, anchor.sum().to(loss.dtype)


def instance_contrastive_loss(z1: Tensor, z2: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Instance-wise contrast (eq. 2): at each time step, the same series in the other view is
    the positive, the other series of the batch (both views) the negatives.

    Shape: z1, z2 N x T x D, valid N x T -> (sum, count) over anchors.
    """
    return grouped_nt_xent(z1.transpose(0, 1), z2.transpose(0, 1), valid.transpose(0, 1))


def temporal_contrastive_loss(z1: Tensor, z2: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Temporal contrast (eq. 1): within a series, the same time step in the other view is the
    positive, the other time steps (both views) the negatives.

    Shape: z1, z2 N x T x D, valid N x T -> (sum, count) over anchors.
    """
    return grouped_nt_xent(z1, z2, valid)


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
    temporal_unit: int = 0,
) -> Tensor:
    """TS2Vec's loss (Algorithm 1): ``alpha`` x instance + ``(1 - alpha)`` x temporal contrast
    at every scale of max-pooling by 2 along time, averaged over the scales. Temporal contrast
    starts at scale ``temporal_unit``; the last (single-step) scale is instance-only.

    With every step valid this equals the reference code's loss; masked steps are left out of
    both anchors and negatives.

    Shape: z1, z2 N x T x D (aligned time steps), valid N x T bool (default: all) -> 0-dim.
    """
    if z1.shape != z2.shape or z1.dim() != 3:
        raise ValueError(f"z1 and z2 must both be N x T x D; got {tuple(z1.shape)}, "
                         f"{tuple(z2.shape)}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if valid is None:
        valid = torch.ones(z1.shape[:2], dtype=torch.bool, device=z1.device)
    total, depth = z1.new_zeros((), dtype=torch.float32), 0
    while z1.shape[1] > 1:
        if alpha > 0:
            total = total + alpha * _mean(*instance_contrastive_loss(z1, z2, valid))
        if depth >= temporal_unit and alpha < 1:
            total = total + (1 - alpha) * _mean(*temporal_contrastive_loss(z1, z2, valid))
        depth += 1
        (z1, pooled_valid), (z2, _) = _pool_pairs(z1, valid), _pool_pairs(z2, valid)
        valid = pooled_valid
    if alpha > 0:  # the single-step scale: instance contrast only
        total = total + alpha * _mean(*instance_contrastive_loss(z1, z2, valid))
    return total / (depth + 1)


def _mean(total: Tensor, count: Tensor) -> Tensor:
    return total / count.clamp(min=1.0)


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
        "lr": 0.032,  # the paper's 1e-3 at its batch of 8 (lr scales as batch / 256)
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
        loss = hierarchical_contrastive_loss(z1, z2, ok1 & ok2, alpha=self.alpha,
                                             temporal_unit=self.temporal_unit)
        return loss, {"loss": loss.detach()}

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Same as ``training_step``, so a ``DistributedDataParallel`` wrapper can call it."""
        return self.training_step(batch)

    def on_step_end(self, step: int, max_steps: int) -> None:
        """Fold the new weights into the average."""
        if self.averaged is not None:
            self.averaged.update(step, max_steps)
