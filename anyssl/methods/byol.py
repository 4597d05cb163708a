"""BYOL (Grill et al. 2020, "Bootstrap Your Own Latent"): the online network predicts the target
network's projection of the other view; the target is an EMA of the online encoder + projector.
No negatives."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from anyssl.heads import MLPHead
from anyssl.methods._common import check_views, encoder_dim
from anyssl.momentum import MomentumTarget
from anyssl.objectives import BYOLLoss
from anyssl.registry import METHODS
from anyssl.types import Batch, ViewSource

__all__ = ["BYOL"]


@METHODS.register("byol")
class BYOL(nn.Module):
    """BYOL: the online network predicts an EMA target's projection of the other view.

    ``p_i = predictor(projector(encoder(x_i)))``, ``z_j = target(x_j)``, and
    ``loss = byol_loss(p_1, z_2) + byol_loss(p_2, z_1)`` (the symmetrized loss of sec. 3.1).
    With more than 2 views, the mean of that over every pair of views.

    The asymmetric augmentations of the paper come from the view generator's 2 pipelines.

    Several processes: no negatives, so nothing is gathered; each rank's loss is the mean over
    its samples and DDP's averaged gradients are the whole batch's. DDP keeps the online
    weights identical on every rank, so the EMA target, updated from them, stays identical too
    (BatchNorm statistics are per process unless the encoder uses SyncBatchNorm).

    Args:
        encoder, views: the backbone (with ``out_dim``) and the view generator.
        hidden_dim: projector hidden width, 4096 (sec. 3.3).
        out_dim: projection (and prediction) size, 256 (sec. 3.3).
        pred_hidden_dim: predictor hidden width, 4096 (sec. 3.3).
        momentum: base target momentum tau, 0.996, raised to 1 on a cosine (sec. 3.3).
        schedule: ``"cosine"`` (the paper) or ``"constant"``.
    """

    train_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "lars",  # LARS (sec. 3.3)
        "lr": 0.2,  # 0.2 x B/256 (sec. 3.3)
        "lr_scaling": "linear",  # sec. 3.3: LearningRate = 0.2 x BatchSize/256
        "weight_decay": 1.5e-6,  # sec. 3.3
        "momentum": 0.9,  # LARS momentum (the official code)
        "schedule": "cosine",  # cosine decay without restarts (sec. 3.3)
        "warmup_epochs": 10,  # 10 warmup epochs (sec. 3.3)
    }

    def __init__(
        self,
        encoder: nn.Module,
        views: ViewSource,
        *,
        hidden_dim: int = 4096,
        out_dim: int = 256,
        pred_hidden_dim: int = 4096,
        momentum: float = 0.996,
        schedule: str = "cosine",
    ) -> None:
        super().__init__()
        check_views(views, "BYOL")
        self.encoder, self.views = encoder, views
        self.projector = MLPHead(encoder_dim(encoder), hidden_dim, out_dim)
        self.predictor = MLPHead(out_dim, pred_hidden_dim, out_dim)
        self.target = MomentumTarget(nn.Sequential(self.encoder, self.projector), momentum,
                                     schedule)
        self.loss = BYOLLoss()

    def training_step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        inputs, _ = batch
        views = self.views(inputs)
        p = [self.predictor(self.projector(self.encoder(v))) for v in views]  # V x (N x out)
        z = [self.target(v) for v in views]  # V x (N x out), no grad
        pairs = list(itertools.combinations(range(len(views)), 2))
        loss = torch.stack([self.loss(p[i], z[j]) + self.loss(p[j], z[i]) for i, j in pairs])
        loss = loss.mean()
        return loss, {"loss": loss.detach(), "momentum": torch.tensor(self.target.momentum)}

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Same as ``training_step``, so a ``DistributedDataParallel`` wrapper can call it."""
        return self.training_step(batch)

    def on_step_end(self, step: int, max_steps: int) -> None:
        """EMA update of the target (sec. 3.1) with the scheduled momentum."""
        self.target.update(step, max_steps)
