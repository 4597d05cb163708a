"""GRACE (Zhu et al. 2020, "Deep Graph Contrastive Representation Learning"): node-level
contrast between two augmented views of one graph, with intra- and inter-view negatives
(``grace_loss``, the paper's eq. 1-2).

Several processes: refused. GRACE trains on one graph, whose nodes are both the samples and
each other's negatives; a data-parallel run would hand every rank the same graph (a sampler
pads the one-item data set), and gathering the nodes of the ranks' copies would make a node's
copies negatives of each other. No one-process batch gives the same loss, so ``training_step``
raises with a clear message when ``torch.distributed`` runs more than one process.

Past memory: on a sampled subgraph (``sampling.SampledNodes``, ``-d sampler=neighbor``) the
loss is taken over the item's seed nodes only (``sampling.seed_rows``), their negatives the other
seeds of both views; the sampled neighbours are context for message passing. ``chunk_size``
bounds the loss's memory to ``chunk_size x N``.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from anyssl import distributed
from anyssl.methods._common import check_views, encoder_dim
from anyssl.modalities.graph.encoders import require_level
from anyssl.modalities.graph.sampling import seed_rows
from anyssl.objectives import matmul_fp32
from anyssl.registry import METHODS
from anyssl.types import Batch, ViewSource

__all__ = ["GRACE", "grace_loss", "grace_semi_loss"]


def _rows_loss(u: Tensor, v: Tensor, start: int, stop: int, tau: float) -> Tensor:
    """``semi_loss`` of the anchors ``u[start:stop]`` (rows of unit vectors) against all of
    ``u`` (intra-view) and ``v`` (inter-view). Shape: u, v N x D -> (stop - start)."""
    rows = torch.arange(start, stop, device=u.device)  # B
    k = torch.arange(stop - start, device=u.device)  # B
    between = matmul_fp32(u[start:stop], v.T) / tau  # B x N: the other view, positive rows[k]
    refl = matmul_fp32(u[start:stop], u.T) / tau  # B x N: the same view, the anchor left out
    refl = refl.index_put((k, rows), refl.new_tensor(float("-inf")))
    logits = torch.cat([between, refl], dim=1)  # B x 2N
    return torch.logsumexp(logits, dim=1) - between[k, rows]


def grace_semi_loss(h1: Tensor, h2: Tensor, tau: float, chunk_size: int | None = None) -> Tensor:
    """GRACE's ``semi_loss``: for node ``i`` with ``s = cos / tau``,
    ``-log(exp(s(u_i, v_i)) / (sum_j exp(s(u_i, v_j)) + sum_{j != i} exp(s(u_i, u_j))))``
    (``u = h1``, ``v = h2``), as a log-sum-exp (same value, no overflow).

    ``chunk_size`` computes the anchors in chunks of that many rows, each under activation
    checkpointing, so memory is ``chunk_size x N`` instead of ``N x N`` (the code's
    ``batched_semi_loss``, whose chunks still keep every ``B x N`` block for backward).

    Shape: h1, h2 N x D -> N per-node losses.
    """
    u, v = F.normalize(h1.float(), dim=1), F.normalize(h2.float(), dim=1)  # N x D unit rows
    n = u.shape[0]
    if chunk_size is None or chunk_size >= n:
        return _rows_loss(u, v, 0, n, tau)
    parts = [cast(Tensor, checkpoint(_rows_loss, u, v, i, min(i + chunk_size, n), tau,
                                     use_reentrant=False))
             for i in range(0, n, chunk_size)]
    return torch.cat(parts)  # N


def grace_loss(h1: Tensor, h2: Tensor, tau: float = 0.4, chunk_size: int | None = None) -> Tensor:
    """GRACE's objective (eq. 2 of the paper, ``Model.loss`` of the code): the mean over nodes
    of ``(semi_loss(h1, h2) + semi_loss(h2, h1)) / 2``; every node of one view is an anchor,
    its positive the same node in the other view, its negatives every other node of both views.

    Shape: h1, h2 N x D (projections of the two views, N >= 2) -> 0-dim.
    """
    if h1.dim() != 2 or h1.shape != h2.shape:
        raise ValueError(f"h1 and h2 must both be N x D (the same nodes in two views); got "
                         f"{tuple(h1.shape)}, {tuple(h2.shape)}")
    if h1.shape[0] < 2:
        raise ValueError(f"grace_loss needs at least 2 nodes, got {h1.shape[0]}")
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size}")
    l1 = grace_semi_loss(h1, h2, tau, chunk_size)  # N
    l2 = grace_semi_loss(h2, h1, tau, chunk_size)  # N
    return ((l1 + l2) / 2).mean()


@METHODS.register("grace", scope="graph")
class GRACE(nn.Module):
    """GRACE: node-level contrast of two augmented views of one graph.

    One process only (see the module docstring). Each step encodes every node of both views
    (``encoder.nodes``; pre-training uses the whole graph, whatever its ``node_mask``),
    projects them and applies ``grace_loss``: to every node of a whole graph, to the seed nodes
    of a sampled subgraph (``seed_mask``, see ``sampling``). The encoder must be node-level
    (``gcn`` is GRACE's). The views must keep every node, so node ``i`` of one view is node
    ``i`` of the other (GRACE's edge dropping and feature masking do).

    Args:
        encoder: has ``nodes(batch) -> num_nodes x encoder.out_dim``.
        views: makes exactly 2 views of a batch.
        proj_dim: hidden width of the projection head ``fc2(elu(fc1(z)))``: 128 on Cora.
        tau: temperature, 0.4 (Cora; 0.9 CiteSeer, 0.7 PubMed in GRACE's config).
        chunk_size: compute the loss this many anchors at a time (None: all at once), for
            graphs too large for an ``N x N`` similarity matrix.
    """

    train_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adam",  # train.py L93-94: Adam, weight decay as L2 on every parameter
        "lr": 5e-4,  # Cora's config, one graph per step
        "lr_scaling": "none",  # Adam at a fixed lr (the reference code scales none)
        "weight_decay": 1e-5,  # Cora config
        "momentum": 0.9,  # Adam's beta1
        "schedule": "constant",
        "warmup_epochs": 0.0,
        "batch_size": 1,  # the one graph of a node-level data set
    }

    def __init__(self, encoder: nn.Module, views: ViewSource, *, proj_dim: int = 128,
                 tau: float = 0.4, chunk_size: int | None = None) -> None:
        super().__init__()
        check_views(views, "GRACE", exactly=2)
        require_level(encoder, "node", "grace",
                      "graph-level data needs a graph-level method: use graphcl")
        if not callable(getattr(encoder, "nodes", None)):
            raise ValueError(f"GRACE needs an encoder with per-node embeddings (nodes()); "
                             f"{type(encoder).__name__} has none: use gcn or gin")
        if tau <= 0 or proj_dim < 1:
            raise ValueError(f"GRACE needs tau > 0 and proj_dim >= 1, got {tau}, {proj_dim}")
        self.encoder, self.views = encoder, views
        self.tau, self.chunk_size = tau, chunk_size
        dim = encoder_dim(encoder)
        self.projector = nn.Sequential(nn.Linear(dim, proj_dim), nn.ELU(),
                                       nn.Linear(proj_dim, dim))  # fc1, ELU, fc2

    def project(self, x: Any, rows: Tensor | None = None) -> Tensor:
        """Projection of every node of one view (of the ``rows`` only, a bool mask, when given).
        Shape: a batch of V nodes -> V x D (rows: its True count x D)."""
        h = cast(Any, self.encoder).nodes(x)  # V x D
        if rows is not None and h.shape[0] != rows.shape[0]:
            raise ValueError(f"GRACE's two views must keep every node; a view has {h.shape[0]} "
                             f"of {rows.shape[0]} nodes (use edge dropping / feature masking)")
        return self.projector(h if rows is None else h[rows])

    def training_step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        if distributed.world_size() > 1:
            raise ValueError(f"grace is node-level contrast within one graph and has no "
                             f"multi-process form ({distributed.world_size()} processes: every "
                             f"rank would hold the same graph); train it on one process "
                             f"(--devices 1, no torchrun)")
        inputs, _ = batch
        v1, v2 = self.views(inputs)
        rows = seed_rows(inputs)  # None: a whole graph; the views keep every node in place
        h1, h2 = self.project(v1, rows), self.project(v2, rows)  # V x D (seeds x D) each
        if h1.shape != h2.shape:
            raise ValueError(f"GRACE's two views must keep every node; got {h1.shape[0]} and "
                             f"{h2.shape[0]} nodes (use edge dropping / feature masking)")
        loss = grace_loss(h1, h2, self.tau, self.chunk_size)
        return loss, {"loss": loss.detach()}

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Same as ``training_step``, so a ``DistributedDataParallel`` wrapper can call it."""
        return self.training_step(batch)

    def on_step_end(self, step: int, max_steps: int) -> None:
        """Nothing to update after the optimizer step."""
