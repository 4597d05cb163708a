"""Deep Graph Infomax (Velickovic et al. 2019, "Deep Graph Infomax", sec. 3.3-3.4): a bilinear
discriminator tells each node's embedding, paired with a summary of its graph, from the
embedding of the same node in a corrupted graph (``anyssl.objectives_mi.dgi_bce``, eq. 1).

Reference code: ``PetarV-/DGI``, ``models/dgi.py`` (encoder, readout, discriminator),
``layers/readout.py`` (mean), ``layers/discriminator.py`` (``nn.Bilinear``), ``execute.py``
(row-shuffled features as the corruption, ``BCEWithLogitsLoss``, Adam). PyG's
``DeepGraphInfomax`` holds the same parts; its loss is the sum of the two halves' means
without the bilinear bias, so this file keeps the reference's form.

Several processes: refused, as ``grace`` (see its module docstring): the method trains on one
graph, which every rank would hold.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar, cast

import torch
from torch import Tensor, nn
from torch_geometric.nn import global_mean_pool

from anyssl import distributed
from anyssl.methods._common import encoder_dim
from anyssl.modalities.graph.encoders import graph_index, require_level
from anyssl.modalities.graph.infograph import unaugmented
from anyssl.modalities.graph.sampling import seed_rows
from anyssl.objectives_mi import dgi_bce
from anyssl.registry import METHODS
from anyssl.types import Batch, ViewSource

__all__ = ["DGI", "shuffle_features"]


def shuffle_features(batch: Any, generator: torch.Generator | None = None) -> Any:
    """DGI's corruption (sec. 3.4, ``execute.py``: ``features[:, idx, :]``): the same edges with
    the node feature rows permuted. Returns a shallow copy; ``batch`` is left unchanged.

    Shape: ``x`` V x F -> V x F (rows permuted over the whole batch).
    """
    x = batch.x
    perm = torch.randperm(x.shape[0], generator=generator, device=x.device)  # V
    out = copy.copy(batch)
    out.x = x[perm]
    return out


@METHODS.register("dgi", scope="graph")
class DGI(nn.Module):
    """DGI: node-level mutual information between nodes and their graph's summary.

    Each step encodes every node of the graph and of its corruption (``shuffle_features``;
    pre-training uses the whole graph, whatever its ``node_mask``), summarises each graph as
    ``sigmoid(mean of its nodes)``, scores both node sets against the summary with a bilinear
    discriminator and applies ``dgi_bce``. On a sampled subgraph (``sampling.SampledNodes``)
    the summary and the loss take its seed nodes only (``seed_rows``); the shuffle and the
    message passing use every node of the item. No augmentation: ``self.views`` is ``RawViews``,
    whose seeded generator draws the shuffle. A batch of several graphs gives each graph its
    own summary (the shuffle runs over the batch).

    Paper setting (transductive, Cora): a 1-layer GCN of 512 units with PReLU, i.e.
    ``-e num_layers=1 -e out_dim=512 -e activation=prelu`` on ``gcn``; any node-level encoder
    with ``nodes()`` works. The reference stops when the training loss has not improved for 20
    epochs and keeps the best-loss weights; anyssl trains the run's fixed epochs (the data set's
    ``suggested_epochs``, or ``--epochs``) and keeps the last weights.

    Args:
        encoder: node-level, ``nodes(batch) -> num_nodes x encoder.out_dim``.
        views: ``RawViews`` (the default and the graph recipe's): DGI trains on the raw graph;
            augmented views are refused.
    """

    train_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adam",  # execute.py:45, optim.Adam(..., lr=lr, weight_decay=l2_coef)
        "lr": 1e-3,  # execute.py:15
        "lr_scaling": "none",  # one graph per step, fixed lr in the reference
        "weight_decay": 0.0,  # execute.py:16, l2_coef = 0.0
        "momentum": 0.9,  # Adam's beta1
        "schedule": "constant",  # no scheduler in execute.py
        "warmup_epochs": 0.0,
        "batch_size": 1,  # execute.py:12; the one graph of a node-level data set
    }
    #: the encoder of the paper's transductive runs, per encoder name (``anyssl.build``
    #: applies it under the user's ``-e``): one GCN layer of 512 with PReLU (execute.py:17
    #: hid_units 512, models/dgi.py GCN(n_in, n_h, 'prelu'))
    encoder_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "gcn": {"num_layers": 1, "out_dim": 512, "activation": "prelu"},
    }

    def __init__(self, encoder: nn.Module, views: ViewSource | None = None) -> None:
        super().__init__()
        require_level(encoder, "node", "dgi",
                      "graph-level data needs a graph-level method: use infograph or graphcl")
        if not callable(getattr(encoder, "nodes", None)):
            raise ValueError(f"DGI needs an encoder with per-node embeddings (nodes()); "
                             f"{type(encoder).__name__} has none: use gcn or gin")
        self.encoder, self.views = encoder, unaugmented(views, "dgi")
        dim = encoder_dim(encoder)
        self.discriminator = nn.Bilinear(dim, dim, 1)  # layers/discriminator.py: f_k
        nn.init.xavier_uniform_(self.discriminator.weight)
        nn.init.zeros_(self.discriminator.bias)

    def _score(self, h: Tensor, summary: Tensor) -> Tensor:
        """The bilinear discriminator ``h_i^T W s_i + b`` of ``nn.Bilinear`` (its parameters),
        as one matrix product: ``nn.Bilinear``'s backward materializes V x D x D and takes
        seconds per step on Cora's 512-wide layer. Shape: h, summary V x D -> V."""
        w, b = self.discriminator.weight[0], self.discriminator.bias  # D x D, 1
        return ((h @ w) * summary).sum(dim=1) + b

    def training_step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        if distributed.world_size() > 1:
            raise ValueError(f"dgi is node-level mutual information within one graph and has "
                             f"no multi-process form ({distributed.world_size()} processes: "
                             f"every rank would hold the same graph); train it on one process "
                             f"(--devices 1, no torchrun)")
        inputs, _ = batch
        if not isinstance(getattr(inputs, "x", None), Tensor):
            raise ValueError(f"dgi expects a torch_geometric Batch or Data with node features x, "
                             f"got {type(inputs).__name__}")
        corrupted = shuffle_features(inputs, self.views.generator_for(inputs.x.device))
        encode = cast(Any, self.encoder).nodes
        h_pos, h_neg = encode(inputs), encode(corrupted)  # V x D each: h_1, h_2
        index, n = graph_index(inputs)  # V: each node's graph
        rows = seed_rows(inputs)  # None: a whole graph; a sampled subgraph: its seeds
        if rows is not None:
            h_pos, h_neg, index = h_pos[rows], h_neg[rows], index[rows]  # S x D, S x D, S
        summary = torch.sigmoid(global_mean_pool(h_pos, index, size=n))[index]  # V x D: c
        pos = self._score(h_pos, summary)  # V: sc_1
        neg = self._score(h_neg, summary)  # V: sc_2
        loss = dgi_bce(pos, neg)
        return loss, {"loss": loss.detach()}

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Same as ``training_step``, so a ``DistributedDataParallel`` wrapper can call it."""
        return self.training_step(batch)

    def on_step_end(self, step: int, max_steps: int) -> None:
        """Nothing to update after the optimizer step."""
