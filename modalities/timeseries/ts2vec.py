"""TS2Vec (Yue et al. 2022, "TS2Vec: Towards Universal Representation of Time Series"):
hierarchical contrast of per-time-step features of two overlapping crops.

The math is in pure functions (``ts2vec_loss``): ``grouped_nt_xent`` (NT-Xent, the core's
``nt_xent`` with a dot product and temperature 1, batched over groups and masked), the
instance-wise and temporal contrasts built on it (sec. 3.3, eqs. 1-2) and
``hierarchical_contrastive_loss`` (Algorithm 1).
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

from torch import Tensor, nn

from anyssl import distributed
from anyssl.methods._common import check_views
from anyssl.modalities.timeseries.crops import AlignedView
from anyssl.modalities.timeseries.series import check_series, valid_steps
from anyssl.modalities.timeseries.ts2vec_loss import (
    gather_series_features,
    grouped_nt_xent,
    hierarchical_contrastive_loss,
    instance_contrastive_loss,
    temporal_contrastive_loss,
)
from anyssl.momentum import MomentumTarget
from anyssl.registry import METHODS
from anyssl.types import Batch, ViewSource

__all__ = ["TS2Vec", "gather_series_features", "grouped_nt_xent",
           "hierarchical_contrastive_loss", "instance_contrastive_loss",
           "temporal_contrastive_loss"]


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
