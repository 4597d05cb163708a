"""Barlow Twins (Zbontar et al. 2021, "Barlow Twins: Self-Supervised Learning via Redundancy
Reduction"): the cross-correlation of the two views' embeddings is pushed to the identity."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from anyssl.methods._common import check_views, encoder_dim
from anyssl.objectives_redundancy import BarlowTwinsLoss, expander
from anyssl.registry import METHODS
from anyssl.types import Batch, ViewSource

__all__ = ["BarlowTwins"]

#: Projector width per encoder width: 8192 for ResNet-50's 2048 (sec. 4; main.py l. 41, 195).
WIDTH_FACTOR = 4


@METHODS.register("barlowtwins")
class BarlowTwins(nn.Module):
    """Barlow Twins: the views' cross-correlation matrix is driven to the identity.

    ``z_i = projector(encoder(x_i))``, ``c = bn(z_1).T @ bn(z_2) / N`` and
    ``loss = sum_i (1 - c_ii)^2 + lambd * sum_{i != j} c_ij^2`` (eqs. 1-2). With more than 2
    views, the mean of that over every pair of views.

    Several processes: ``BarlowTwinsLoss`` gathers both views' embeddings with gradient, so
    the normalization and ``c`` are the global batch's, the same matrix as the reference's
    SyncBatchNorm + ``all_reduce(c)`` (main.py l. 212-216), and DDP's averaged gradients
    equal one process's with the whole batch (the reference's non-differentiable all-reduce
    instead gives 1/world_size of that gradient).

    Args:
        encoder, views: the backbone (with ``out_dim``) and the view generator.
        hidden_dim, out_dim: projector widths; ``None`` (the default) is 4 x the encoder's
            width: 8192-8192-8192 for ResNet-50 (sec. 4 "Implementation details"; main.py
            l. 41, ``--projector 8192-8192-8192``), which small encoders cannot afford.
        num_layers: projector depth, 3: Linear-BN-ReLU twice, then a Linear without bias
            (main.py l. 195-202).
        lambd: weight of the off-diagonal terms: 0.0051 in the reference code (main.py l. 39,
            ``--lambd 0.0051``), "5e-3" in the paper (sec. 4); the code's value is used.
    """

    train_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "lars",  # LARS, biases and BN excluded (sec. 4; main.py l. 99-101)
        "lr": 0.2,  # weights' base lr x B/256 (sec. 4; main.py l. 33, 158, 167)
        "bias_lr": 0.0048,  # biases' and BN parameters' base lr (main.py l. 35, 168)
        "lr_scaling": "linear",  # lr x B/256 (main.py l. 158: base_lr = batch_size / 256)
        "weight_decay": 1.5e-6,  # sec. 4 (main.py l. 37 has 1e-6)
        "momentum": 0.9,  # LARS momentum (main.py l. 225)
        "schedule": "cosine",  # cosine decay to 1/1000 of the lr (sec. 4; main.py l. 155-166)
        "warmup_epochs": 10,  # 10 warm-up epochs (sec. 4; main.py l. 157), batch 2048
        "final_lr_ratio": 0.001,  # end_lr = base_lr * 0.001 (main.py l. 165-166), both groups
    }

    def __init__(
        self,
        encoder: nn.Module,
        views: ViewSource,
        *,
        hidden_dim: int | None = None,
        out_dim: int | None = None,
        num_layers: int = 3,
        lambd: float = 0.0051,
    ) -> None:
        super().__init__()
        check_views(views, "BarlowTwins")
        self.encoder, self.views = encoder, views
        in_dim = encoder_dim(encoder)
        width = WIDTH_FACTOR * in_dim
        # Linear-BN-ReLU x (num_layers - 1), then a Linear without bias (main.py l. 195-202)
        self.projector = expander(in_dim, hidden_dim or width, out_dim or width, num_layers)
        self.loss = BarlowTwinsLoss(lambd)

    def training_step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        inputs, _ = batch
        z = [self.projector(self.encoder(v)) for v in self.views(inputs)]  # V x (N x out)
        pairs = list(itertools.combinations(range(len(z)), 2))
        loss = torch.stack([self.loss(z[i], z[j]) for i, j in pairs]).mean()
        return loss, {"loss": loss.detach()}

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Same as ``training_step``, so a ``DistributedDataParallel`` wrapper can call it."""
        return self.training_step(batch)

    def on_step_end(self, step: int, max_steps: int) -> None:
        """Nothing to update after the optimizer step."""
