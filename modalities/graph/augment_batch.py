"""Shared pieces of the batched graph augmentations (``augment.py``, ``augment_subgraph.py``):
argument checks, per-graph counts and random ranks, and rebuilding a PyG ``Batch`` after nodes
or edges were removed or added, without touching the input batch.

A rebuilt batch is a shallow copy (``copy.copy``, PyG's copy-before-mutate) whose node- and
edge-level tensors are replaced: per-node attributes (``x``, node-level ``y``, ``node_mask``,
...) follow the kept nodes, per-edge ones (``edge_attr``) their edges, and ``batch``, ``ptr``
and the slice tables of ``Batch.from_data_list`` are recomputed so ``to_data_list()`` still
returns the augmented graphs.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Batch, HeteroData
from torch_geometric.utils import degree

__all__ = ["as_batch", "attr_levels", "check_mask", "check_ratio", "float_x", "graph_sizes",
           "random_rank", "ratio_count", "with_edges", "with_nodes", "with_x"]


# ---- argument checks ------------------------------------------------------------------------
def check_ratio(value: Any, name: str) -> float:
    """``value`` as a float in [0, 1], else a one-line ``ValueError``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def as_batch(x: Any, name: str) -> Batch:
    """``x`` if it is a homogeneous PyG ``Batch`` with ``edge_index``, ``batch`` and ``ptr``."""
    if not isinstance(x, Batch) or isinstance(x, HeteroData):
        raise ValueError(f"{name} needs a torch_geometric Batch of homogeneous graphs "
                         f"(Batch.from_data_list), got {type(x).__name__}")
    if x.edge_index is None or x.batch is None or x.ptr is None:
        raise ValueError(f"{name} needs a Batch with edge_index, batch and ptr "
                         "(build it with Batch.from_data_list)")
    return x


def check_mask(mask: Any, batch: Batch, name: str) -> Tensor | None:
    """``mask`` (``num_graphs`` bool) on the batch's device; None stays None (every graph)."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.shape != (
            batch.num_graphs,):
        got = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
        raise ValueError(f"{name}.apply_masked needs a bool mask of shape "
                         f"({batch.num_graphs},) (one per graph), got {got}")
    return mask.to(batch.batch.device)


# ---- per-graph counting and ranking ---------------------------------------------------------
def graph_sizes(batch: Batch) -> Tensor:
    """Nodes per graph. Shape: ``G`` long."""
    ptr: Tensor = batch.ptr
    return ptr[1:] - ptr[:-1]


def ratio_count(ratio: float, sizes: Tensor) -> Tensor:
    """``floor(ratio * sizes)`` elementwise, in float64 like Python's ``int(ratio * n)``."""
    return torch.floor(ratio * sizes.double()).long()


def random_rank(group: Tensor, num_groups: int, generator: torch.Generator | None) -> Tensor:
    """Each item's position (0 .. size - 1) in a uniformly random order of its group.

    Items are sorted by ``group * M + randperm(M)`` (unique keys): grouped, and in uniformly
    random order within each group, so ``rank < k[group]`` picks ``k`` items of each group
    uniformly without replacement.

    Shape:
        group: ``M`` long in [0, num_groups); returns ``M`` long.
    """
    m = group.numel()
    key = group * m + torch.randperm(m, generator=generator, device=group.device)  # M
    order = torch.sort(key).indices  # M: grouped, random within each group
    counts = degree(group, num_groups, dtype=torch.long)  # num_groups
    starts = counts.cumsum(0) - counts
    sorted_group = group.index_select(0, order)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(m, device=group.device) - starts.index_select(0, sorted_group)
    return rank


# ---- rebuilding a Batch ---------------------------------------------------------------------
_STRUCTURE = frozenset({"edge_index", "batch", "ptr", "num_nodes"})


def attr_levels(batch: Batch) -> tuple[list[str], list[str]]:
    """The batch's node-level and edge-level tensor attributes (``edge_index``, ``batch``,
    ``ptr`` excluded).

    Read from the slice table of ``Batch.from_data_list``: an attribute sliced like ``x`` is
    per node, one sliced like ``edge_index`` per edge. Ties (as many nodes as edges in every
    graph, or one edge per graph) go to "edge" only for names containing ``edge``, as PyG does.
    Attributes missing from the table fall back to PyG's ``is_node_attr`` / ``is_edge_attr``.
    """
    table: dict[str, Any] = getattr(batch, "_slice_dict", None) or {}
    if "edge_index" not in table:
        table = {}  # not built by Batch.from_data_list: PyG's own guesses for every key
    empty = torch.empty(0)
    node_ref = (table["x"] if "x" in table else batch.ptr.cpu()) if table else empty
    edge_ref = table["edge_index"] if table else empty
    graph_ref = torch.arange(batch.num_graphs + 1)
    nodes: list[str] = []
    edges: list[str] = []
    keys = batch.keys()  # a method: iterating a Data yields (key, value) pairs
    for key in keys:
        value = batch[key]
        if key in _STRUCTURE or not isinstance(value, Tensor):
            continue
        s = table.get(key)
        if not isinstance(s, Tensor) or s.dim() != 1:
            nodes += [key] if batch.is_node_attr(key) else []
            edges += [key] if batch.is_edge_attr(key) else []
            continue
        is_node, is_edge = torch.equal(s, node_ref), torch.equal(s, edge_ref)
        if is_edge and ("edge" in key or not (is_node or torch.equal(s, graph_ref))):
            edges.append(key)
        elif is_node:
            nodes.append(key)
    return nodes, edges


def _take(value: Tensor, dim: int, index: Tensor, added: bool) -> Tensor:
    """``value`` indexed by ``index`` along ``dim``; when ``added``, ``-1`` entries give zeros."""
    if not added:
        return value.index_select(dim, index)
    out = value.index_select(dim, index.clamp_min(0))
    shape = [1] * out.dim()
    shape[dim] = -1
    return out.masked_fill((index < 0).view(shape), 0)


def _set_edges(out: Batch, batch: Batch, edge_keys: list[str], edge_index: Tensor,
               old_ids: Tensor, added: bool) -> Tensor:
    """Put ``edge_index`` in ``out`` with the edge attributes of the edges it came from
    (``old_ids``: ``E'`` long; when ``added``, ``-1`` marks a new edge: zero attributes).
    Returns the per-graph edge ptr."""
    for key in edge_keys:
        value = batch[key]
        out[key] = _take(value, batch.__cat_dim__(key, value), old_ids, added)
    out.edge_index = edge_index
    graph_of_edge = out.batch[edge_index[0]]  # E'
    counts = degree(graph_of_edge, batch.num_graphs, dtype=torch.long)
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def _refresh_slices(out: Batch, batch: Batch, node_keys: list[str], edge_keys: list[str],
                    node_ptr: Tensor | None, edge_ptr: Tensor) -> None:
    """New slice/increment tables for ``out`` (the input's are left alone)."""
    slices = getattr(batch, "_slice_dict", None)
    if slices is None:
        return
    slices, incs = dict(slices), dict(getattr(batch, "_inc_dict", None) or {})
    if node_ptr is not None:
        node_cpu = node_ptr.cpu()
        for key in node_keys:
            if key in slices:
                slices[key] = node_cpu
        if "edge_index" in incs:
            incs["edge_index"] = node_cpu[:-1]
        if "num_nodes" in batch._store:  # graphs collated with an explicit num_nodes
            sizes = (node_cpu[1:] - node_cpu[:-1]).tolist()
            out._store._num_nodes = sizes
            out.num_nodes = sum(sizes)
    edge_cpu = edge_ptr.cpu()
    for key in [*edge_keys, "edge_index"]:
        if key in slices:
            slices[key] = edge_cpu
    out._slice_dict, out._inc_dict = slices, incs


def with_nodes(batch: Batch, keep: Tensor) -> Batch:
    """A new batch of the nodes where ``keep`` holds and the edges between them.

    Node attributes are row-selected, ``edge_index`` relabelled (as PyG's ``subgraph``), edge
    attributes follow their edges, ``batch``/``ptr`` and the slice tables are rebuilt.
    Shape: keep: ``N`` bool.
    """
    node_keys, edge_keys = attr_levels(batch)
    keys = batch.keys()
    for key in keys:
        if key != "edge_index" and ("index" in key or key == "face") and key not in _STRUCTURE:
            raise ValueError(f"cannot drop nodes of a batch with node-index attribute {key!r} "
                             "(only edge_index is relabelled); remove it first")
    idx = keep.nonzero().view(-1)  # N' kept node ids, in order
    src, dst = batch.edge_index
    edge_ids = (keep[src] & keep[dst]).nonzero().view(-1)  # E' edges between kept nodes
    new_id = keep.cumsum(0) - 1  # N: old node id -> new one (PyG's subgraph relabelling)
    edge_index = new_id[batch.edge_index.index_select(1, edge_ids)]  # 2 x E'
    out = copy.copy(batch)
    for key in node_keys:
        value = batch[key]
        out[key] = value.index_select(batch.__cat_dim__(key, value), idx)
    out.batch = batch.batch.index_select(0, idx)
    counts = degree(out.batch, batch.num_graphs, dtype=torch.long)
    out.ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    edge_ptr = _set_edges(out, batch, edge_keys, edge_index, edge_ids, False)
    _refresh_slices(out, batch, node_keys, edge_keys, out.ptr, edge_ptr)
    return out


def with_edges(batch: Batch, edge_index: Tensor, old_ids: Tensor, added: bool = False) -> Batch:
    """A new batch with the same nodes and ``edge_index`` (grouped by graph) as its edges.

    ``old_ids`` (``E'`` long) names the input edge each new one copies its attributes from;
    with ``added``, ``-1`` marks an added edge (attributes zero).
    """
    node_keys, edge_keys = attr_levels(batch)
    out = copy.copy(batch)
    edge_ptr = _set_edges(out, batch, edge_keys, edge_index, old_ids, added)
    _refresh_slices(out, batch, node_keys, edge_keys, None, edge_ptr)
    return out


def with_x(batch: Batch, x: Tensor) -> Batch:
    """A new batch equal to ``batch`` but with node features ``x`` (same shape)."""
    out = copy.copy(batch)
    out.x = x
    return out


def float_x(batch: Batch, name: str) -> Tensor:
    """The batch's node features if they are a float tensor, else a one-line ``ValueError``."""
    x = batch.x
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise ValueError(f"{name} needs float node features batch.x (N x F); "
                         f"got {None if x is None else x.dtype}")
    return x
