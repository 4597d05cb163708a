"""GraphCL's subgraph augmentation, batched: a connected random node set grown from a random
seed of each graph, all graphs at once.

You et al. 2020 ("Graph Contrastive Learning with Augmentations", sec. 3.2) describe it as a
random-walk subgraph; their code (``unsupervised_TU/aug.py``, ``subgraph``) starts from a random
node, repeatedly adds a node drawn uniformly from the unvisited neighbours of the nodes taken so
far, and keeps the induced subgraph. A loop of one node per step would need ``k`` rounds for
``k`` nodes (540 on Cora). Instead each node gets an Exp(1) delay ``w_v`` and the nodes are
taken in order of ``t_v = w_v + min(t_u : u -> v)`` (``t_seed = 0``): a node joins the frontier
when its first neighbour is taken and is taken ``w_v`` later; the delays being memoryless, the
next node taken is always uniform over the current frontier, so the first ``k`` nodes by ``t``
are distributed exactly as GraphCL's ``k``-node subgraph. ``t`` is a node-weighted shortest
path, found by Bellman-Ford relaxation over ``edge_index`` (tensor ops only, no
``torch_cluster``); the first ``k`` nodes lie on paths of at most ``k - 1`` hops, so
``min(k - 1, until nothing changes)`` relaxations suffice.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Batch

from anyssl.modalities.graph.augment_batch import (
    as_batch,
    check_mask,
    check_ratio,
    graph_sizes,
    ratio_count,
    with_nodes,
)
from anyssl.registry import AUGMENTATIONS

__all__ = ["Subgraph", "subgraph", "subgraph_nodes", "take_times"]


def take_times(batch: Batch, seeds: Tensor, rounds: int,
               generator: torch.Generator | None) -> Tensor:
    """The time each node is taken when graphs grow from ``seeds`` (``inf``: never reached).

    ``t_seed = 0`` and ``t_v = w_v + min over in-neighbours u of t_u`` with ``w_v ~ Exp(1)``;
    at most ``rounds`` relaxations (stops early when nothing changes), so the values are exact
    for every node within ``rounds`` hops of its seed along its fastest path.

    Shape: seeds: ``G`` long (``N`` = graph without nodes); returns ``N`` float64.
    """
    n = batch.batch.numel()
    device = batch.batch.device
    delay = torch.empty(n, device=device, dtype=torch.float64).exponential_(generator=generator)
    t = torch.full((n + 1,), float("inf"), device=device, dtype=torch.float64)
    t[seeds] = 0.0
    t = t[:n]
    src, dst = batch.edge_index
    for _ in range(rounds):
        first = torch.full_like(t, float("inf")).scatter_reduce(0, dst, t[src], "amin")  # N
        new = torch.minimum(t, first + delay)
        if not bool((new < t).any()):
            break
        t = new
    return t


def subgraph_nodes(batch: Batch, ratio: float, active: Tensor | None,
                   generator: torch.Generator | None) -> Tensor:
    """The nodes of a connected random subgraph of each active graph (all nodes elsewhere).

    ``max(1, floor(ratio * n_g))`` nodes of each graph taken in GraphCL's order from a uniform
    seed node (see the module docstring); a graph whose seed's component is smaller keeps that
    component (GraphCL's loop stops there too). Neighbours follow ``edge_index`` from source to
    target, as in GraphCL's code.

    Shape: returns ``N`` bool (the kept nodes).
    """
    g, nodes = batch.num_graphs, batch.batch
    n = nodes.numel()
    sizes = graph_sizes(batch)  # G
    target = ratio_count(ratio, sizes).clamp_min(1)  # G
    u = torch.rand(g, generator=generator, device=nodes.device, dtype=torch.float64)
    seeds = batch.ptr[:-1] + torch.minimum((u * sizes).long(), (sizes - 1).clamp_min(0))
    seeds = torch.where(sizes > 0, seeds, n)  # G, n = graph without nodes
    rounds = int(target.max()) - 1 if g else 0
    t = take_times(batch, seeds, rounds, generator)  # N
    order = torch.sort(t, stable=True).indices  # N, fastest first
    order = order[torch.sort(nodes[order], stable=True).indices]  # by graph, then time
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n, device=nodes.device) - batch.ptr[nodes[order]]
    keep = (rank < target[nodes]) & torch.isfinite(t)
    return keep if active is None else keep | ~active[nodes]


def subgraph(batch: Batch, ratio: float, active: Tensor | None,
             generator: torch.Generator | None) -> Batch:
    """The induced subgraph of ``subgraph_nodes`` for every active graph."""
    return with_nodes(batch, subgraph_nodes(batch, ratio, active, generator))


@AUGMENTATIONS.register("subgraph", scope="graph")
class Subgraph:
    """Keep a connected random subgraph of ``max(1, floor(ratio * n))`` nodes of each graph.

    GraphCL's subgraph augmentation (You et al. 2020, sec. 3.2): grown from a random node by
    adding random neighbours of the nodes taken so far, then the induced edges. Ratio 0.2 = the
    share of nodes KEPT, as their ``unsupervised_TU`` code (``int(node_num * 0.2)``; their loop
    keeps one node more, we keep exactly the ratio). A graph whose seed lies in a smaller
    component keeps that whole component. Shape: Batch -> Batch with fewer nodes.
    """

    def __init__(self, ratio: float = 0.2) -> None:
        self.ratio = check_ratio(ratio, "subgraph ratio")

    def __call__(self, batch: Any, generator: torch.Generator | None = None) -> Batch:
        return self.apply_masked(batch, None, generator)

    def apply_masked(self, batch: Any, mask: Tensor | None,
                     generator: torch.Generator | None) -> Batch:
        b = as_batch(batch, "subgraph")
        return subgraph(b, self.ratio, check_mask(mask, b, "subgraph"), generator)

    def __repr__(self) -> str:
        return f"subgraph(ratio={self.ratio!r})"
