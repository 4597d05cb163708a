"""SimSiam (Chen & He 2021, "Exploring Simple Siamese Representation Learning"): one network,
a predictor, and a stop-gradient on the other branch. No negatives, no momentum encoder."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from anyssl.heads import MLPHead
from anyssl.methods._common import check_views, encoder_dim
from anyssl.objectives_redundancy import NegativeCosineLoss
from anyssl.registry import METHODS
from anyssl.types import Batch, ViewSource

__all__ = ["SimSiam"]


@METHODS.register("simsiam")
class SimSiam(nn.Module):
    """SimSiam: a predictor and a stop-gradient, symmetric negative cosine; no negatives.

    ``z_i = projector(encoder(x_i))``, ``p_i = predictor(z_i)``, and
    ``loss = D(p_1, stopgrad(z_2)) / 2 + D(p_2, stopgrad(z_1)) / 2`` with ``D = -cos``
    (eqs. 1-4). With more than 2 views, the mean of that over every pair of views.

    Several processes: nothing spans the batch; each rank's loss is the mean over its samples
    and DDP's averaged gradients are the whole batch's (BatchNorm statistics are per process
    unless the encoder uses SyncBatchNorm, as the reference does for ResNet-50).

    Args:
        encoder, views: the backbone (with ``out_dim``) and the view generator.
        hidden_dim: projector hidden width; ``None`` (the default) is the encoder's width, as in
            the reference (``builder.py`` l. 27-32: ``prev_dim`` = 2048 for ResNet-50).
        out_dim: projection size, 2048 (sec. 4, ``--dim 2048``).
        pred_hidden_dim: predictor bottleneck, 512 (sec. 4.4, ``--pred-dim 512``).
        proj_layers: projector depth, 3 on ImageNet (sec. 4, ``builder.py`` l. 28-35), every
            layer followed by BatchNorm, the last one non-affine; 2 on CIFAR (App. D).
        fix_pred_lr: the predictor keeps the base lr, not decayed (sec. 4.2 "Predictor",
            Table 1; the reference README's ``--fix-pred-lr`` in every command).
    """

    train_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "sgd",  # SGD (sec. 4, "Optimizer"; main_simsiam.py l. 199)
        "lr": 0.05,  # base lr 0.05 (sec. 4; main_simsiam.py l. 56, --lr 0.05)
        "lr_scaling": "linear",  # lr x B/256 (sec. 4; main_simsiam.py l. 157)
        "weight_decay": 1e-4,  # sec. 4; main_simsiam.py l. 60, --wd 1e-4
        "momentum": 0.9,  # SGD momentum (sec. 4; main_simsiam.py l. 58)
        "schedule": "cosine",  # cosine decay (sec. 4; adjust_learning_rate, l. 359-366)
        "warmup_epochs": 0,  # no warm-up (sec. 4: batch 512 needs none)
    }
    #: Defaults per data scale: ``train`` overrides ``train_defaults``, ``args`` the constructor.
    scale_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "small": {
            "source": "SimSiam App. D (CIFAR-10): lr 0.03 x B/256, wd 5e-4, 2-layer projector",
            "train": {"lr": 0.03, "weight_decay": 5e-4},
            "args": {"proj_layers": 2},
        },
        "large": {"source": "SimSiam sec. 4 (ImageNet), facebookresearch/simsiam",
                  "train": {}, "args": {}},
    }

    def __init__(
        self,
        encoder: nn.Module,
        views: ViewSource,
        *,
        hidden_dim: int | None = None,
        out_dim: int = 2048,
        pred_hidden_dim: int = 512,
        proj_layers: int = 3,
        fix_pred_lr: bool = True,
    ) -> None:
        super().__init__()
        check_views(views, "SimSiam")
        self.encoder, self.views, self.fix_pred_lr = encoder, views, fix_pred_lr
        in_dim = encoder_dim(encoder)
        self.projector = MLPHead(in_dim, hidden_dim or in_dim, out_dim, proj_layers, last_bn=True)
        self.predictor = MLPHead(out_dim, pred_hidden_dim, out_dim)  # builder.py l. 39-42
        self.loss = NegativeCosineLoss()  # detaches its target: the stop-gradient

    def optimizer_overrides(self) -> dict[str, dict[str, Any]]:
        """The predictor keeps the base lr with ``fix_pred_lr`` (``main_simsiam.py`` l. 193-196,
        363-364)."""
        return {"predictor.": {"fixed_lr": True}} if self.fix_pred_lr else {}

    def training_step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        inputs, _ = batch
        z = [self.projector(self.encoder(v)) for v in self.views(inputs)]  # V x (N x out)
        p = [self.predictor(zi) for zi in z]  # V x (N x out)
        pairs = list(itertools.combinations(range(len(z)), 2))
        # main_simsiam.py l. 295: -(cos(p1, z2) + cos(p2, z1)) / 2
        loss = torch.stack([0.5 * (self.loss(p[i], z[j]) + self.loss(p[j], z[i]))
                            for i, j in pairs]).mean()
        # collapse monitor (sec. 4.1, Fig. 2): std of the l2-normalized output, ~1/sqrt(d) if not
        z_std = nn.functional.normalize(z[0].detach().float(), dim=1).std(dim=0).mean()
        return loss, {"loss": loss.detach(), "z_std": z_std}

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Same as ``training_step``, so a ``DistributedDataParallel`` wrapper can call it."""
        return self.training_step(batch)

    def on_step_end(self, step: int, max_steps: int) -> None:
        """Nothing to update after the optimizer step."""
