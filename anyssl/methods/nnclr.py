"""NNCLR (Dwibedi et al. 2021, "With a Little Help from My Friends: Nearest-Neighbor Contrastive
Learning of Visual Representations"): the positive of a sample is the nearest neighbour of its
projection in a support set of past projections, contrasted with the other view's prediction.
No official code; compared with lightly (``NNMemoryBankModule``, ``NNCLRProjectionHead``,
``NNCLRPredictionHead``) and solo-learn (``solo/methods/nnclr.py``, ``solo/losses/nnclr.py``)."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anyssl import distributed
from anyssl.heads import MLPHead
from anyssl.memory import SupportSet
from anyssl.methods._common import check_views, encoder_dim
from anyssl.objectives import info_nce
from anyssl.registry import METHODS
from anyssl.types import Batch, ViewSource

__all__ = ["NNCLR"]


@METHODS.register("nnclr")
class NNCLR(nn.Module):
    """NNCLR: a projection's nearest neighbour in a support set of past ones is its positive

    ``z_i = projector(encoder(x_i))``, ``p_i = predictor(z_i)``, ``nn_i = NN(z_i, Q)`` (no
    gradient) and ``loss = (ctr(nn_1, p_2) + ctr(nn_2, p_1)) / 2`` with
    ``ctr(a, p) = CE(a @ p_all.T / T, rank*N + i)`` on L2-normalized vectors (eq. 2, symmetrized
    as solo-learn's ``nnclr_loss_func``). After the loss the first view's projections of every
    rank enter the support set ``Q`` (sec. 3.2; solo-learn ``dequeue_and_enqueue(z1)``). With
    more than 2 views, the mean over every pair of views.

    The support set is searched only where it has been written (``SupportSet``): on the first
    step the neighbour of a projection is itself, and the loss is SimCLR's with a predictor.

    Several processes: the predictions are gathered with gradient (solo-learn gathers ``p``)
    and the support set receives every rank's projections, in rank order, so it is the same on
    every rank; each rank's loss is the mean over its anchors, so DDP's averaged gradient is
    the whole batch's.

    Args:
        encoder, views: the backbone (with ``out_dim``) and the view generator.
        hidden_dim: projector hidden width, 2048 (sec. 4.1: projector [2048, 2048, d]).
        out_dim: embedding size d, 256 (sec. 4.1).
        pred_hidden_dim: predictor hidden width, 4096 (sec. 4.1: predictor [4096, d]).
        queue_size: support set size, 98,304 (sec. 4.1; solo-learn and lightly default 65,536).
        temperature: 0.1 (sec. 4.1; solo-learn's configs use 0.2).
    """

    train_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "lars",  # LARS (sec. 4.1)
        "lr": 0.3,  # base lr 0.3 x B/256 at batch 4096 (sec. 4.1)
        "lr_scaling": "linear",  # sec. 4.1, as SimCLR and BYOL
        "weight_decay": 1e-6,  # sec. 4.1
        "momentum": 0.9,  # LARS momentum (SimCLR/BYOL's, solo-learn)
        "schedule": "cosine",  # cosine decay (sec. 4.1)
        "warmup_epochs": 10,  # 10 warm-up epochs (sec. 4.1)
    }

    def __init__(
        self,
        encoder: nn.Module,
        views: ViewSource,
        *,
        hidden_dim: int = 2048,
        out_dim: int = 256,
        pred_hidden_dim: int = 4096,
        queue_size: int = 98304,
        temperature: float = 0.1,
    ) -> None:
        super().__init__()
        check_views(views, "NNCLR")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.encoder, self.views, self.temperature = encoder, views, temperature
        # BatchNorm after all 3 layers (sec. 4.1); the last one with a scale and no shift here
        # (lightly and solo-learn: an affine BatchNorm1d)
        self.projector = MLPHead(encoder_dim(encoder), hidden_dim, out_dim, 3, last_bn_scale=True)
        self.predictor = MLPHead(out_dim, pred_hidden_dim, out_dim)  # Linear-BN-ReLU-Linear
        self.support = SupportSet(queue_size, out_dim)

    def contrast(self, nn_z: Tensor, p: Tensor) -> Tensor:
        """Eq. 2: each neighbour against every rank's predictions of the other view.
        Shape: nn_z, p: N x out_dim. Returns a 0-dim tensor."""
        if distributed.world_size() == 1:
            return info_nce(nn_z, p, self.temperature)  # logits N x N
        p_all = distributed.gather_with_grad(p)  # (N*W) x out_dim
        return info_nce(nn_z, p, self.temperature, key_all=p_all, rank=distributed.rank())

    def training_step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        inputs, _ = batch
        z = [self.projector(self.encoder(v)) for v in self.views(inputs)]  # V x (N x out)
        p = [self.predictor(z_i) for z_i in z]  # V x (N x out)
        nn_z = [self.support.nearest(z_i) for z_i in z]  # V x (N x out), no grad
        pairs = list(itertools.combinations(range(len(z)), 2))
        loss = torch.stack([0.5 * (self.contrast(nn_z[i], p[j]) + self.contrast(nn_z[j], p[i]))
                            for i, j in pairs]).mean()
        similarity = F.cosine_similarity(nn_z[0].float(), z[0].detach().float(), dim=1).mean()
        self.support.enqueue(distributed.gather_no_grad(z[0]))  # (N*W) x out, normalized there
        return loss, {"loss": loss.detach(), "nn_similarity": similarity}

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Same as ``training_step``, so a ``DistributedDataParallel`` wrapper can call it."""
        return self.training_step(batch)

    def on_step_end(self, step: int, max_steps: int) -> None:
        """Nothing to update after the optimizer step (the support set is filled in the step)."""
