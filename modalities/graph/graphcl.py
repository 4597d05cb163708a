"""GraphCL (You et al. 2020, "Graph Contrastive Learning with Augmentations"): two augmented
views of each graph, a graph encoder, a two-layer projection head and the reference code's
NT-Xent variant (``graphcl_loss``).

With several processes the projections of both views are gathered with gradient, so each rank
scores its own anchors against the other view's graphs of *every* rank; averaged by DDP, the
gradients equal those of one process holding the whole (rank-ordered) batch.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anyssl import distributed
from anyssl.methods._common import check_views, encoder_dim
from anyssl.modalities.graph.encoders import require_level
from anyssl.objectives import _check_all, matmul_fp32
from anyssl.registry import METHODS
from anyssl.types import Batch, ViewSource

__all__ = ["GraphCL", "graphcl_loss"]


def _one_direction(z1: Tensor, z2_all: Tensor, temperature: float, rank: int) -> Tensor:
    """Anchors ``z1`` (this rank's rows) against every row of ``z2_all``; anchor ``i``'s
    positive is column ``rank*N + i``, left out of the denominator."""
    n = z1.shape[0]
    logits = matmul_fp32(F.normalize(z1.float(), dim=1),
                         F.normalize(z2_all.float(), dim=1).T)  # N x NW, fp32 under autocast
    logits = logits / temperature
    rows = torch.arange(n, device=z1.device)  # N
    cols = rows + rank * n  # N: each anchor's positive
    pos = logits[rows, cols]  # N
    is_pos = torch.zeros_like(logits, dtype=torch.bool)  # N x NW
    is_pos[rows, cols] = True
    neg = torch.logsumexp(logits.masked_fill(is_pos, float("-inf")), dim=1)  # N
    return (neg - pos).mean()


def graphcl_loss(z1: Tensor, z2: Tensor, temperature: float = 0.2, *,
                 symmetric: bool = False, z1_all: Tensor | None = None,
                 z2_all: Tensor | None = None, rank: int = 0) -> Tensor:
    """GraphCL's loss, ``loss_cal`` of its ``unsupervised_TU/gsimclr.py``.

    With ``s_ij = cos(z1_i, z2_j) / temperature``, the loss of anchor ``i`` is
    ``-log(exp(s_ii) / sum_{j != i} exp(s_ij))``: the positive is the same graph in the other
    view and the negatives are the *other view's* other graphs only (no same-view negatives,
    and the positive is left out of the denominator), averaged over the ``N`` anchors of
    ``z1``. ``symmetric=True`` averages this with the ``z2 -> z1`` direction (not the paper
    code). Computed as a log-sum-exp, so it equals the reference without its overflow.

    Several processes: ``z2_all`` (and ``z1_all`` when symmetric) hold every rank's rows,
    rank ``r``'s at ``r*N:(r+1)*N``; the anchors stay the local ``N`` rows and the candidates
    are all ``N * world_size`` graphs of the other view. The mean over ranks of this local loss
    is the loss of the whole batch.

    Shape: z1, z2 N x D; z1_all, z2_all (N * world_size) x D (N * world_size >= 2) -> 0-dim.
    """
    if z1.dim() != 2 or z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must both be N x D; got {tuple(z1.shape)}, "
                         f"{tuple(z2.shape)}")
    if symmetric and (z1_all is None) != (z2_all is None):
        raise ValueError("symmetric graphcl_loss across ranks needs both z1_all and z2_all")
    z2_all = z2 if z2_all is None else z2_all
    if z1.shape[0] == 0 or z2_all.shape[0] < 2:
        raise ValueError(f"graphcl_loss needs at least 2 graphs per batch (the negatives are "
                         f"the other graphs), got {z2_all.shape[0]}; raise the batch size")
    _check_all(z2, z2_all, rank, "z2_all")
    if z1_all is None:
        z1_all = z1
    else:
        _check_all(z1, z1_all, rank, "z1_all")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    loss = _one_direction(z1, z2_all, temperature, rank)
    if symmetric:
        loss = (loss + _one_direction(z2, z1_all, temperature, rank)) / 2
    return loss


@METHODS.register("graphcl", scope="graph")
class GraphCL(nn.Module):
    """GraphCL: NT-Xent between two augmented views of each graph (graph level).

    ``graphcl_loss`` between the projections of the two views.

    The views come from ``views`` (two pipelines). The default recipe follows the paper: two
    augmentations drawn from node dropping, edge perturbation, attribute masking and subgraphs;
    ``--views recipe:graphcl-tu`` is its unsupervised TU code, the original graph (view 1, the
    anchors of ``loss_cal(x, x_aug)``) against one augmentation. The encoder must be
    graph-level (``gin`` is GraphCL's).

    Args:
        encoder: maps a graph ``Batch`` to ``num_graphs x encoder.out_dim``.
        views: makes exactly 2 views of a batch.
        temperature: 0.2 (``T`` in ``loss_cal``).
        symmetric: also contrast view 2 against view 1 (False: the paper code, one direction).
        gather: with several processes, gather both views' projections from every rank (with
            gradient) so the negatives are the whole global batch (a no-op on one process).

    Its projection head is the code's ``proj_head``: Linear(D, D), ReLU, Linear(D, D), Xavier-
    uniform weights and zero biases (``init_emb``).
    """

    train_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adamw",  # Adam in the code; weight decay 0 makes AdamW the same
        "lr": 0.01,  # the code's, at its batch of 128
        "lr_scaling": "none",  # Adam at a fixed lr (the reference code scales none)
        "weight_decay": 0.0,
        "momentum": 0.9,  # Adam's beta1
        "schedule": "constant",
        "warmup_epochs": 0.0,
        "batch_size": 128,  # the code's batch size
    }

    def __init__(self, encoder: nn.Module, views: ViewSource, *, temperature: float = 0.2,
                 symmetric: bool = False, gather: bool = True) -> None:
        super().__init__()
        check_views(views, "GraphCL", exactly=2)
        require_level(encoder, "graph", "graphcl",
                    "use grace, or simclr/byol on the node-level encoder")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.encoder, self.views = encoder, views
        self.temperature, self.symmetric, self.gather = temperature, symmetric, gather
        dim = encoder_dim(encoder)
        self.projector = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True),
                                       nn.Linear(dim, dim))
        for m in self.projector:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def project(self, x: Any) -> Tensor:
        """Projection of one view. Shape: a batch of G graphs -> G x D."""
        return self.projector(self.encoder(x))

    def training_step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        inputs, _ = batch
        v1, v2 = self.views(inputs)
        z1, z2 = self.project(v1), self.project(v2)  # G x D each
        if not self.gather or distributed.world_size() == 1:
            loss = graphcl_loss(z1, z2, self.temperature, symmetric=self.symmetric)
        else:  # every rank's graphs as candidates, this rank's as anchors
            z1_all = distributed.gather_with_grad(z1) if self.symmetric else None
            z2_all = distributed.gather_with_grad(z2)
            loss = graphcl_loss(z1, z2, self.temperature, symmetric=self.symmetric,
                                z1_all=z1_all, z2_all=z2_all, rank=distributed.rank())
        return loss, {"loss": loss.detach()}

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Same as ``training_step``, so a ``DistributedDataParallel`` wrapper can call it."""
        return self.training_step(batch)

    def on_step_end(self, step: int, max_steps: int) -> None:
        """Nothing to update after the optimizer step."""
