"""Mutual-information estimators of the Deep InfoMax family, as pure functions, then thin modules.

- ``jsd_mi_loss``: the Jensen-Shannon MI estimator of Deep InfoMax (Hjelm et al. 2019, eq. 4;
  Nowozin et al. 2016's f-GAN bound), negated into a loss: ``E_neg[sp(s)] + E_pos[sp(-s)] -
  2 log 2`` with ``sp`` = softplus, written out in their ``cortex_DIM/functions/gan_losses.py``
  (``get_positive_expectation`` / ``get_negative_expectation``, ``measure="JSD"``).
- ``local_global_jsd``: InfoGraph's local-global objective (Sun et al. 2020, eq. 4-5,
  ``unsupervised/losses.py::local_global_loss_``): every node's local feature scored against
  every graph's global feature, its own graph the positive, the batch's other graphs negatives.
- ``dgi_bce``: Deep Graph Infomax's objective (Velickovic et al. 2019, eq. 1; ``execute.py``:
  ``nn.BCEWithLogitsLoss`` over the discriminator's logits, label 1 for the real nodes, 0 for the
  corrupted ones), the binary cross-entropy form of the same JSD bound.

Scores are logits (any real number); half-precision scores are upcast to float32 (autocast).
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from anyssl import distributed
from anyssl.objectives import _upcast, matmul_fp32

__all__ = ["LocalGlobalJSD", "dgi_bce", "jsd_mi_loss", "local_global_jsd"]

LOG_2 = math.log(2.0)


def jsd_mi_loss(pos: Tensor, neg: Tensor, pos_count: float | None = None,
                neg_count: float | None = None) -> Tensor:
    """Negative Jensen-Shannon MI estimate: ``-(E_pos[log 2 - sp(-p)] - E_neg[sp(q) - log 2])``.

    ``pos_count`` / ``neg_count`` divide the sums instead of the numbers of scores given (several
    processes pass the global counts over the world size, so the mean over ranks of the local
    losses is the loss of the whole batch). Minimising it maximises the MI lower bound.

    Shape: pos P, neg Q scores (any shape, P, Q >= 1) -> 0-dim.
    """
    if pos.numel() == 0 or neg.numel() == 0:
        raise ValueError(f"jsd_mi_loss needs at least one positive and one negative score, got "
                         f"{pos.numel()} and {neg.numel()}")
    e_pos = (LOG_2 - F.softplus(-_upcast(pos))).sum() / (pos_count or pos.numel())
    e_neg = (F.softplus(_upcast(neg)) - LOG_2).sum() / (neg_count or neg.numel())
    return e_neg - e_pos


def local_global_jsd(local: Tensor, global_: Tensor, node_graph: Tensor, *, offset: int = 0,
                     mean_nodes: float | None = None) -> Tensor:
    """InfoGraph's local-global JSD loss (``local_global_loss_``, ``measure="JSD"``).

    ``s = local @ global_.T``; node ``i``'s positive is its graph ``offset + node_graph[i]``, its
    negatives the other rows of ``global_``. The positive term is averaged over the nodes, the
    negative term over the ``N * (G - 1)`` negative pairs, as the reference divides.

    Several processes: ``global_`` holds every rank's graphs (rank ``r``'s from row ``offset =
    r * G_local``), ``local`` this rank's nodes, and ``mean_nodes`` the global node count over
    the world size: the mean over ranks of the local losses is then the whole batch's loss.

    Shape: local N x D, global_ G x D (G >= 2), node_graph N long in ``[0, G - offset)`` -> 0-dim.
    """
    if local.dim() != 2 or global_.dim() != 2 or local.shape[1] != global_.shape[1]:
        raise ValueError(f"local and global_ must be N x D and G x D with one D; got "
                         f"{tuple(local.shape)}, {tuple(global_.shape)}")
    n, g = local.shape[0], global_.shape[0]
    if g < 2:
        raise ValueError(f"local_global_jsd needs at least 2 graphs per batch (the negatives are "
                         f"the other graphs), got {g}; raise the batch size")
    if tuple(node_graph.shape) != (n,):
        raise ValueError(f"node_graph must hold one graph index per node ({n}), got shape "
                         f"{tuple(node_graph.shape)}")
    scores = matmul_fp32(local, global_.T)  # N x G
    pos_col = node_graph + offset  # N: each node's own graph
    if n and (int(pos_col.min()) < 0 or int(pos_col.max()) >= g):
        raise ValueError(f"node_graph + offset must index the {g} graphs, got values in "
                         f"[{int(pos_col.min())}, {int(pos_col.max())}]")
    is_pos = F.one_hot(pos_col, g).bool()  # N x G
    nodes = mean_nodes or n
    return jsd_mi_loss(scores[is_pos], scores[~is_pos], pos_count=nodes,
                       neg_count=nodes * (g - 1))


def dgi_bce(pos: Tensor, neg: Tensor) -> Tensor:
    """DGI's loss: ``BCEWithLogits(cat(pos, neg), cat(1, 0))``, the mean over all ``P + Q``
    logits of ``sp(-pos)`` and ``sp(neg)``.

    Shape: pos P, neg Q discriminator logits (P, Q >= 1) -> 0-dim.
    """
    if pos.numel() == 0 or neg.numel() == 0:
        raise ValueError(f"dgi_bce needs at least one real and one corrupted logit, got "
                         f"{pos.numel()} and {neg.numel()}")
    total = F.softplus(-_upcast(pos)).sum() + F.softplus(_upcast(neg)).sum()
    return total / (pos.numel() + neg.numel())


class LocalGlobalJSD(nn.Module):
    """``local_global_jsd`` over the global batch: with several processes every rank's global
    features are gathered with gradient (the negatives are the whole batch's graphs) and the
    node count is summed over ranks. Each rank must hold the same number of graphs."""

    def __init__(self, gather: bool = True) -> None:
        super().__init__()
        self.gather = gather

    def forward(self, local: Tensor, global_: Tensor, node_graph: Tensor) -> Tensor:
        world = distributed.world_size()
        if not self.gather or world == 1:
            return local_global_jsd(local, global_, node_graph)
        count = distributed.gather_no_grad(local.new_tensor([float(local.shape[0])]))  # W
        return local_global_jsd(local, distributed.gather_with_grad(global_), node_graph,
                                offset=distributed.rank() * global_.shape[0],
                                mean_nodes=float(count.sum()) / world)

    def extra_repr(self) -> str:
        return f"gather={self.gather}"
