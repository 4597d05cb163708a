"""SimCLR (Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
Representations"): two views of each sample, an MLP projector, and NT-Xent over the batch."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from anyssl.heads import MLPHead
from anyssl.methods._common import check_views, encoder_dim
from anyssl.objectives import NTXentLoss
from anyssl.registry import METHODS
from anyssl.types import Batch, ViewSource

__all__ = ["SimCLR"]


@METHODS.register("simclr")
class SimCLR(nn.Module):
    """SimCLR: NT-Xent between the projections of every pair of views.

    ``loss = mean over view pairs (i, j) of nt_xent(z_i, z_j)``; with the usual 2 views this is
    the paper's loss. Each view goes through the encoder separately (BatchNorm sees one view at
    a time; any modality's batch works).

    Several processes: ``NTXentLoss`` gathers both views from every rank with gradient, so the
    negatives are the whole global batch and DDP's averaged gradients equal one process's with
    that batch (BatchNorm statistics stay per process unless the encoder uses SyncBatchNorm).

    Args:
        encoder: maps a batch to N x ``encoder.out_dim`` features.
        views: makes the views of a batch (2 or more).
        hidden_dim: projector hidden width. The paper uses the encoder's width (2048 for
            ResNet-50, sec. 2.1 and B.1); the default 2048 follows solo-learn for every encoder.
            ``None`` uses ``encoder.out_dim``.
        out_dim: projection size, 128 (sec. B.1).
        temperature: 0.5, the CIFAR-10 setting (appendix B.9); the paper uses 0.1 for ImageNet
            with large batches (sec. 5.1, Table 5).
    """

    train_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "lars",  # LARS for every batch size (sec. 2.2, B.1)
        "lr": 0.3,  # 0.3 x B/256 (sec. B.1)
        "weight_decay": 1e-6,  # sec. B.1
        "momentum": 0.9,  # LARS momentum (sec. B.1, the official code)
        "schedule": "cosine",  # cosine decay without restarts (sec. B.1)
        "warmup_epochs": 10,  # linear warmup for 10 epochs (sec. B.1)
    }

    def __init__(
        self,
        encoder: nn.Module,
        views: ViewSource,
        *,
        hidden_dim: int | None = 2048,
        out_dim: int = 128,
        temperature: float = 0.5,
    ) -> None:
        super().__init__()
        check_views(views, "SimCLR")
        self.encoder, self.views = encoder, views
        in_dim = encoder_dim(encoder)
        self.projector = MLPHead(in_dim, hidden_dim or in_dim, out_dim)
        self.loss = NTXentLoss(temperature)

    def project(self, x: Any) -> Tensor:
        """Projection of one view. Shape: a batch of N -> N x out_dim."""
        return self.projector(self.encoder(x))

    def training_step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        inputs, _ = batch
        z = [self.project(v) for v in self.views(inputs)]  # V x (N x out_dim)
        pairs = list(itertools.combinations(range(len(z)), 2))
        loss = torch.stack([self.loss(z[i], z[j]) for i, j in pairs]).mean()
        return loss, {"loss": loss.detach()}

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Same as ``training_step``, so a ``DistributedDataParallel`` wrapper can call it."""
        return self.training_step(batch)

    def on_step_end(self, step: int, max_steps: int) -> None:
        """Nothing to update after the optimizer step."""
