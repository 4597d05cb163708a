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
        hidden_dim: projector hidden width; ``None`` (the default) is the encoder's width, as in
            the paper (2048 for ResNet-50, sec. 2.1 and B.1) and the reference code
            (``projection_head``: ``mid_dim = hiddens.shape[-1]``).
        out_dim: projection size, 128 (sec. B.1).
        temperature: 0.5, the CIFAR-10 setting of the reference README; ``scale_defaults``
            gives 0.1 for large images (the README's ImageNet command, Table 5).
        last_bn: BatchNorm after the projector's last layer, with a scale and no shift, as the
            reference code has (BatchNorm on every layer of the head); False drops it (the
            Linear-BN-ReLU-Linear head of lightly and solo-learn).

    Defaults per data scale (``scale_defaults``; a modality says which scale its data is, e.g.
    images below 64 px are "small"): the class defaults are google-research/simclr's README
    command for CIFAR-10 (LARS, lr 1.0 x B/256, weight decay 1e-4, temperature 0.5, 10 warm-up
    epochs); "large" is its ImageNet command (lr 0.075 x sqrt(B), weight decay 1e-4,
    temperature 0.1), whose square-root scaling App. B.1 recommends for small batches.
    """

    train_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "lars",  # LARS for every batch size (sec. 2.2, B.1)
        "lr": 1.0,  # README, CIFAR-10: --learning_rate=1.0 (at --train_batch_size=512)
        "lr_scaling": "linear",  # run.py's default learning_rate_scaling: lr x B/256
        "weight_decay": 1e-4,  # README, CIFAR-10: --weight_decay=1e-4
        "momentum": 0.9,  # LARS momentum (sec. B.1, the official code)
        "schedule": "cosine",  # cosine decay without restarts (sec. B.1)
        "warmup_epochs": 10,  # run.py's default warmup_epochs (sec. B.1)
    }
    #: Defaults per data scale: ``train`` overrides ``train_defaults``, ``args`` the constructor.
    scale_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "small": {"source": "google-research/simclr README, CIFAR-10 command",
                  "train": {}, "args": {}},
        "large": {
            "source": "google-research/simclr README, ImageNet command; App. B.1",
            "train": {
                "lr": 0.075,  # README, ImageNet: --learning_rate=0.075
                "lr_scaling": "sqrt",  # --learning_rate_scaling=sqrt: 0.075 x sqrt(B)
                "weight_decay": 1e-4,  # README, ImageNet: --weight_decay=1e-4 (v1 paper: 1e-6)
            },
            "args": {"temperature": 0.1},  # README, ImageNet: --temperature=0.1
        },
    }

    def __init__(
        self,
        encoder: nn.Module,
        views: ViewSource,
        *,
        hidden_dim: int | None = None,
        out_dim: int = 128,
        temperature: float = 0.5,
        last_bn: bool = True,
    ) -> None:
        super().__init__()
        check_views(views, "SimCLR")
        self.encoder, self.views = encoder, views
        in_dim = encoder_dim(encoder)
        self.projector = MLPHead(in_dim, hidden_dim or in_dim, out_dim, last_bn_scale=last_bn)
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
