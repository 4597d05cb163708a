"""Batched graph augmentations: a whole PyG ``Batch`` on its device, random draws per graph.

Every augmentation takes a ``torch_geometric.data.Batch`` (``Batch.from_data_list``), draws each
random choice per graph, node or edge from ``generator`` (a ``torch.Generator`` on the batch's
device) with no Python loop over graphs, and returns a NEW ``Batch`` (the input is never
modified) in which node attributes follow their nodes, edge attributes their edges, ``batch`` /
``ptr`` / ``to_data_list()`` stay consistent, no graph loses its last node and no edge joins two
graphs. ``apply_masked(batch, mask, generator)`` changes only the graphs where ``mask``
(``num_graphs`` bool) holds and leaves the others bit-identical; ``RandomApply`` and ``OneOf``
(spec ``p=`` and ``a | b``) use it.

Sources and defaults (the registered names):

- GraphCL (You et al. 2020, "Graph Contrastive Learning with Augmentations", sec. 3.2; their
  ``unsupervised_TU/aug.py``, ratios ``int(node_num / 10)``):
  ``node_drop(ratio=0.1)``, ``edge_perturb(ratio=0.1)``, ``attr_mask(ratio=0.1)`` and
  ``subgraph(ratio=0.2)`` (in ``augment_subgraph.py``).
- GRACE (Zhu et al. 2020, "Deep Graph Contrastive Representation Learning", sec. 3.2):
  ``feature_mask(ratio=0.3)`` and ``edge_drop(ratio=0.2)``.

Counts are ``floor(ratio * n)`` per graph (as GraphCL's ``int(ratio * n)``), chosen uniformly
without replacement; GRACE's two draw a coin per feature column or per edge, as GRACE does.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Batch
from torch_geometric.utils import degree, scatter

from anyssl.modalities.graph.augment_batch import (
    as_batch,
    check_mask,
    check_ratio,
    float_x,
    graph_sizes,
    random_rank,
    ratio_count,
    with_edges,
    with_nodes,
    with_x,
)
from anyssl.modalities.graph.augment_subgraph import Subgraph, subgraph
from anyssl.registry import AUGMENTATIONS

__all__ = ["AttrMask", "EdgeDrop", "EdgePerturb", "FeatureMask", "NodeDrop", "Subgraph",
           "attr_mask", "edge_drop", "edge_perturb", "feature_mask", "node_drop", "subgraph"]

FILLS = ("noise", "zero", "mean")


# ---- the math: pure functions of (batch, parameters, active graphs, generator) --------------
def node_drop(batch: Batch, ratio: float, active: Tensor | None,
              generator: torch.Generator | None) -> Batch:
    """Remove ``min(floor(ratio * n_g), n_g - 1)`` uniformly chosen nodes of each active graph
    (``active``: ``G`` bool, None = all) and their edges."""
    sizes = graph_sizes(batch)  # G
    drop = torch.minimum(ratio_count(ratio, sizes), (sizes - 1).clamp_min(0))  # G
    if active is not None:
        drop = drop * active
    rank = random_rank(batch.batch, batch.num_graphs, generator)  # N
    return with_nodes(batch, rank >= drop[batch.batch])


def edge_perturb(batch: Batch, ratio: float, add: bool, active: Tensor | None,
                 generator: torch.Generator | None) -> Batch:
    """Remove ``k_g = floor(ratio * E_g)`` uniformly chosen edges of each active graph and, when
    ``add``, add ``k_g`` edges with both ends drawn uniformly among the graph's nodes.

    Columns of ``edge_index`` are independent (GraphCL's code): an undirected pair may lose one
    direction, added edges are directed and may repeat an edge or be self-loops. An added edge
    takes the place (column) of a removed one of its graph and gets zero edge attributes.
    """
    edge_graph = batch.batch[batch.edge_index[0]]  # E
    count = ratio_count(ratio, degree(edge_graph, batch.num_graphs, dtype=torch.long))  # G
    if active is not None:
        count = count * active
    drop = random_rank(edge_graph, batch.num_graphs, generator) < count[edge_graph]  # E
    if not add:
        kept = (~drop).nonzero().view(-1)
        return with_edges(batch, batch.edge_index.index_select(1, kept), kept)
    slots = drop.nonzero().view(-1)  # A removed columns, refilled with new edges
    slot_graph = edge_graph.index_select(0, slots)  # A
    sizes = graph_sizes(batch).index_select(0, slot_graph)  # A, nodes of the edge's graph
    u = torch.rand(2, slots.numel(), generator=generator, device=slots.device,
                   dtype=torch.float64)
    offset = torch.minimum((u * sizes.double()).long(), sizes - 1)  # 2 x A, in [0, n_g)
    added = batch.ptr.index_select(0, slot_graph) + offset  # 2 x A
    edge_index = batch.edge_index.clone().index_copy_(1, slots, added)
    old_ids = torch.arange(edge_graph.numel(), device=slots.device).index_fill_(0, slots, -1)
    return with_edges(batch, edge_index, old_ids, added=True)


def attr_mask(batch: Batch, ratio: float, fill: str, active: Tensor | None,
              generator: torch.Generator | None) -> Batch:
    """Replace the features of ``floor(ratio * n_g)`` uniformly chosen nodes of each active
    graph: ``noise`` N(0.5, 0.5^2) per entry, ``zero``, or ``mean`` (the graph's mean feature).

    Shape: x: N x F -> N x F.
    """
    x = float_x(batch, "attr_mask")
    count = ratio_count(ratio, graph_sizes(batch))  # G
    if active is not None:
        count = count * active
    chosen = random_rank(batch.batch, batch.num_graphs, generator) < count[batch.batch]  # N
    if fill == "noise":
        value = 0.5 + 0.5 * torch.randn(x.shape, generator=generator, device=x.device,
                                        dtype=x.dtype)
    elif fill == "mean":
        value = scatter(x, batch.batch, 0, dim_size=batch.num_graphs, reduce="mean")[batch.batch]
    else:
        value = torch.zeros_like(x)
    return with_x(batch, torch.where(chosen.view(-1, *[1] * (x.dim() - 1)), value, x))


def feature_mask(batch: Batch, ratio: float, active: Tensor | None,
                 generator: torch.Generator | None) -> Batch:
    """Zero each feature column with probability ``ratio``, drawn per active graph and shared
    by all its nodes (GRACE's ``drop_feature``, per graph). Shape: x: N x F -> N x F."""
    x = float_x(batch, "feature_mask")
    drop = torch.rand(batch.num_graphs, x.shape[-1], generator=generator,
                      device=x.device) < ratio  # G x F
    if active is not None:
        drop = drop & active.unsqueeze(1)
    return with_x(batch, x.masked_fill(drop[batch.batch], 0))


def edge_drop(batch: Batch, ratio: float, active: Tensor | None,
              generator: torch.Generator | None) -> Batch:
    """Drop each edge (``edge_index`` column) of the active graphs with probability ``ratio``
    (GRACE's ``dropout_adj``: directions independently)."""
    src = batch.edge_index[0]
    keep = torch.rand(src.numel(), generator=generator, device=src.device) >= ratio  # E
    if active is not None:
        keep = keep | ~active[batch.batch[src]]
    kept = keep.nonzero().view(-1)
    return with_edges(batch, batch.edge_index.index_select(1, kept), kept)


# ---- registered augmentations ---------------------------------------------------------------
@AUGMENTATIONS.register("node_drop", scope="graph")
class NodeDrop:
    """Drop ``floor(ratio * n)`` random nodes of each graph with their edges (GraphCL).

    Node dropping of You et al. 2020, sec. 3.2; ratio 0.1 as their ``unsupervised_TU`` code.
    Dropped nodes are removed (their semi-supervised code; the unsupervised one leaves them
    isolated); a graph always keeps at least one node. Shape: Batch -> Batch with fewer nodes.
    """

    def __init__(self, ratio: float = 0.1) -> None:
        self.ratio = check_ratio(ratio, "node_drop ratio")

    def __call__(self, batch: Any, generator: torch.Generator | None = None) -> Batch:
        return self.apply_masked(batch, None, generator)

    def apply_masked(self, batch: Any, mask: Tensor | None,
                     generator: torch.Generator | None) -> Batch:
        b = as_batch(batch, "node_drop")
        return node_drop(b, self.ratio, check_mask(mask, b, "node_drop"), generator)

    def __repr__(self) -> str:
        return f"node_drop(ratio={self.ratio!r})"


@AUGMENTATIONS.register("edge_perturb", scope="graph")
class EdgePerturb:
    """Drop ``floor(ratio * E)`` random edges of each graph and add as many random ones.

    Edge perturbation of You et al. 2020, sec. 3.2, as their ``semisupervised_TU`` code (their
    ``unsupervised_TU`` code only drops: ``add=false``); ratio 0.1 as ``unsupervised_TU``.
    ``edge_index`` columns are treated independently, as GraphCL does, so undirected graphs
    do not stay symmetric; added edges may be self-loops and get zero ``edge_attr``.
    """

    def __init__(self, ratio: float = 0.1, add: bool = True) -> None:
        self.ratio = check_ratio(ratio, "edge_perturb ratio")
        if not isinstance(add, bool):
            raise ValueError(f"edge_perturb add must be true or false, got {add!r}")
        self.add = add

    def __call__(self, batch: Any, generator: torch.Generator | None = None) -> Batch:
        return self.apply_masked(batch, None, generator)

    def apply_masked(self, batch: Any, mask: Tensor | None,
                     generator: torch.Generator | None) -> Batch:
        b = as_batch(batch, "edge_perturb")
        return edge_perturb(b, self.ratio, self.add, check_mask(mask, b, "edge_perturb"),
                            generator)

    def __repr__(self) -> str:
        return f"edge_perturb(ratio={self.ratio!r},add={str(self.add).lower()})"


@AUGMENTATIONS.register("attr_mask", scope="graph")
class AttrMask:
    """Replace the features of ``floor(ratio * n)`` random nodes of each graph (GraphCL).

    Attribute masking of You et al. 2020, sec. 3.2. ``fill``: ``noise`` = N(0.5, 0.5^2) per
    entry, as their ``unsupervised_TU`` code (default); ``mean`` = the graph's mean feature, as
    their ``semisupervised_TU`` code; ``zero``. Ratio 0.1 as ``unsupervised_TU``.
    Shape: x: N x F -> N x F.
    """

    def __init__(self, ratio: float = 0.1, fill: str = "noise") -> None:
        self.ratio = check_ratio(ratio, "attr_mask ratio")
        if fill not in FILLS:
            raise ValueError(f"attr_mask fill must be one of {', '.join(FILLS)}, got {fill!r}")
        self.fill = fill

    def __call__(self, batch: Any, generator: torch.Generator | None = None) -> Batch:
        return self.apply_masked(batch, None, generator)

    def apply_masked(self, batch: Any, mask: Tensor | None,
                     generator: torch.Generator | None) -> Batch:
        b = as_batch(batch, "attr_mask")
        return attr_mask(b, self.ratio, self.fill, check_mask(mask, b, "attr_mask"), generator)

    def __repr__(self) -> str:
        return f"attr_mask(ratio={self.ratio!r},fill={self.fill})"


@AUGMENTATIONS.register("feature_mask", scope="graph")
class FeatureMask:
    """Zero random feature columns, the same ones for every node of a graph (GRACE).

    Feature masking of Zhu et al. 2020, sec. 3.2 (``drop_feature``): each column is masked with
    probability ``ratio`` (0.3, their Cora value for the first view). GRACE has one graph;
    here each graph draws its own columns. Shape: x: N x F -> N x F.
    """

    def __init__(self, ratio: float = 0.3) -> None:
        self.ratio = check_ratio(ratio, "feature_mask ratio")

    def __call__(self, batch: Any, generator: torch.Generator | None = None) -> Batch:
        return self.apply_masked(batch, None, generator)

    def apply_masked(self, batch: Any, mask: Tensor | None,
                     generator: torch.Generator | None) -> Batch:
        b = as_batch(batch, "feature_mask")
        return feature_mask(b, self.ratio, check_mask(mask, b, "feature_mask"), generator)

    def __repr__(self) -> str:
        return f"feature_mask(ratio={self.ratio!r})"


@AUGMENTATIONS.register("edge_drop", scope="graph")
class EdgeDrop:
    """Drop each edge with probability ``ratio`` (GRACE).

    Edge removing of Zhu et al. 2020, sec. 3.2 (``dropout_adj``): every ``edge_index`` column
    is dropped independently, so the two directions of an undirected edge are drawn separately;
    ratio 0.2, their Cora value for the first view. Edge attributes follow the kept edges.
    """

    def __init__(self, ratio: float = 0.2) -> None:
        self.ratio = check_ratio(ratio, "edge_drop ratio")

    def __call__(self, batch: Any, generator: torch.Generator | None = None) -> Batch:
        return self.apply_masked(batch, None, generator)

    def apply_masked(self, batch: Any, mask: Tensor | None,
                     generator: torch.Generator | None) -> Batch:
        b = as_batch(batch, "edge_drop")
        return edge_drop(b, self.ratio, check_mask(mask, b, "edge_drop"), generator)

    def __repr__(self) -> str:
        return f"edge_drop(ratio={self.ratio!r})"
