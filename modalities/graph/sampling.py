"""Node-level learning past memory: mini-batches of sampled subgraphs instead of the whole graph.

A node-level data set is one graph; GRACE and DGI encode all of it every step, and GRACE's loss
compares every node with every other (``N x N``). ``SampledNodes`` turns the graph into
``ceil(S / batch_nodes)`` items for ``S`` seed nodes: item ``i`` holds the ``i``-th part of a
seeded random partition of the seeds (every seed once per epoch) plus neighbours sampled hop by
hop, ``fanout[l]`` per node at hop ``l`` (GraphSAGE's sampler, Hamilton et al. 2017, sec. 3.1 and
App. A; PyG's ``NeighborLoader``), and the subgraph those nodes induce (``NeighborLoader``'s
``subgraph_type="induced"``). Seeds come first, sorted, and carry ``seed_mask``; the other nodes
follow in the order they were reached, each hop sorted; edges keep the graph's order. So an item
whose seeds cover the graph *is* the graph, node for node and edge for edge.

Why our own sampler: PyG's ``NeighborLoader`` and ``ClusterData`` / ``ClusterLoader`` need
``pyg-lib`` or ``torch-sparse`` (compiled extensions; ``ImportError`` without them in
torch_geometric 2.8, and METIS clustering has no pure-Python fallback). This one is plain torch
on a CSR of the incoming edges: memory and time follow the sampled subgraph (plus one ``N``-long
index), never ``N x N`` and never the whole edge list per item.

A method reads the seeds with ``seed_rows(batch)`` and takes its per-node loss on them only; the
other nodes are context for message passing. Evaluation embeds the split's nodes as seeds
(``node_mask``), one item at a time (``anyssl.eval.embed(..., batch_size=1)``), so nothing
needs the whole graph at once.

``-d`` options (``sampling_args``): ``sampler=auto|full|neighbor`` (auto: the whole graph up to
``AUTO_NODES`` nodes, sampled above, with a note), ``batch_nodes=1024``, ``fanout=10,10``
(``-1``: every neighbour).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torch_geometric.data import Data

from anyssl.train.data import mix_seed

__all__ = ["AUTO_NODES", "CSR", "SAMPLERS", "SampledNodes", "induced_edges", "parse_fanout",
           "sample_nodes", "sampled_dataset", "sampling_args", "seed_rows", "to_csr"]

SAMPLERS = ("auto", "full", "neighbor")
#: ``sampler=auto`` trains on the whole graph up to this many nodes (PubMed's 19,717 and every
#: Planetoid / TU graph stay whole, as their papers train), on sampled subgraphs above.
AUTO_NODES = 50_000
#: Seeds per item: GRACE's loss on 1,024 seeds is a 1,024 x 2,048 similarity per view.
BATCH_NODES = 1024
#: Neighbours per node at each hop, one per GCN layer (GRACE's 2 layers); GraphSAGE samples
#: 25, 10 (sec. 4.1), PyG's NeighborLoader examples 10 or 30 per hop: 10, 10 bounds a subgraph
#: at 1 + 10 + 100 nodes per seed.
FANOUT = (10, 10)
_KEPT = ("masks", "num_classes", "classes", "num_features", "encoder_kwargs", "suggested_epochs",
         "eval_options", "suggested_encoder", "eval_protocols", "notes")
_NEIGHBORS = 4  # mix_seed stream of the neighbour draws (anyssl.train.data uses 0..3)


class CSR(NamedTuple):
    """Incoming edges grouped by target: ``col[ptr[v]:ptr[v+1]]`` are the sources of the edges
    into ``v`` and ``eid`` their positions in ``edge_index``. Shape: ptr N+1, col E, eid E."""

    ptr: Tensor
    col: Tensor
    eid: Tensor


def to_csr(edge_index: Tensor, num_nodes: int) -> CSR:
    """The ``CSR`` of ``edge_index`` (``2 x E``, source row 0, target row 1, PyG's flow)."""
    target = edge_index[1]
    eid = torch.sort(target, stable=True).indices  # E: edges by target, graph order within
    counts = torch.bincount(target, minlength=num_nodes)  # N
    ptr = torch.zeros(num_nodes + 1, dtype=torch.long)
    ptr[1:] = torch.cumsum(counts, 0)
    return CSR(ptr, edge_index[0, eid], eid)


def _edges_of(csr: CSR, nodes: Tensor) -> tuple[Tensor, Tensor]:
    """Positions in ``csr.col`` of every incoming edge of ``nodes``, and each one's node index
    into ``nodes``. Shape: nodes K -> two tensors of sum(in-degree)."""
    start, deg = csr.ptr[nodes], csr.ptr[nodes + 1] - csr.ptr[nodes]  # K, K
    owner = torch.repeat_interleave(torch.arange(len(nodes)), deg)  # sum(deg)
    first = torch.cumsum(deg, 0) - deg  # K: where each node's run starts
    return start[owner] + torch.arange(len(owner)) - first[owner], owner


def _pick(owner: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """Up to ``k`` entries per owner, uniformly without replacement (all when ``k < 0``):
    random keys, sorted within each owner's run, the first ``k`` kept. Shape: M -> bool M."""
    if k < 0 or len(owner) == 0:
        return torch.ones(len(owner), dtype=torch.bool)
    keys = owner.double() + torch.rand(len(owner), generator=generator, dtype=torch.double)
    order = torch.argsort(keys)  # M: owner runs, shuffled within
    runs = torch.bincount(owner)
    first = torch.repeat_interleave(torch.cumsum(runs, 0) - runs, runs)  # M (owners are sorted)
    keep = torch.zeros(len(owner), dtype=torch.bool)
    keep[order[(torch.arange(len(owner)) - first) < k]] = True
    return keep


def sample_nodes(csr: CSR, seeds: Tensor, fanout: Sequence[int],
                 generator: torch.Generator) -> Tensor:
    """The seeds, then at hop ``l`` up to ``fanout[l]`` sources of the edges into each node
    reached at hop ``l - 1`` (all when ``-1``), new nodes only, each hop sorted.
    Shape: seeds S (distinct) -> nodes S + sampled, seeds first."""
    seen = torch.zeros(len(csr.ptr) - 1, dtype=torch.bool)  # N
    seen[seeds] = True
    parts, frontier = [seeds], seeds
    for k in fanout:
        pos, owner = _edges_of(csr, frontier)
        reached = torch.unique(csr.col[pos[_pick(owner, k, generator)]])  # sorted
        frontier = reached[~seen[reached]]
        seen[frontier] = True
        parts.append(frontier)
    return torch.cat(parts)


def induced_edges(csr: CSR, nodes: Tensor) -> tuple[Tensor, Tensor]:
    """Every edge between ``nodes``, in the graph's edge order, relabelled to positions in
    ``nodes``, and the edges' positions in the graph. Shape: nodes K -> 2 x E', E'."""
    local = torch.full((len(csr.ptr) - 1,), -1, dtype=torch.long)  # N: position in nodes
    local[nodes] = torch.arange(len(nodes))
    pos, owner = _edges_of(csr, nodes)
    src = local[csr.col[pos]]
    keep = src >= 0
    eid, order = torch.sort(csr.eid[pos[keep]])  # E': graph order
    return torch.stack([src[keep][order], owner[keep][order]]), eid


def parse_fanout(spec: Any) -> tuple[int, ...]:
    """``"10,10"``, ``10`` or ``[10, 10]`` -> ``(10, 10)``; each entry ``>= 1`` or ``-1`` (all)."""
    items = spec.split(",") if isinstance(spec, str) else (
        [spec] if isinstance(spec, int) else list(spec))
    try:
        out = tuple(int(v) for v in items)
    except (TypeError, ValueError):
        out = ()
    if not out or any(v == 0 or v < -1 for v in out):
        raise ValueError(f"fanout is one count per hop, each >= 1 or -1 (every neighbour), "
                         f"e.g. -d fanout=10,10; got {spec!r}")
    return out


def seed_rows(batch: Any) -> Tensor | None:
    """The rows a node-level method takes its loss on: ``batch.seed_mask`` of a sampled item
    (bool, one per node), or None for a whole graph (every row). Shape: -> V bool or None."""
    mask = getattr(batch, "seed_mask", None)
    if mask is None:
        return None
    if mask.dtype != torch.bool or tuple(mask.shape) != (int(batch.num_nodes),):
        raise ValueError(f"seed_mask must be a bool tensor with one entry per node "
                         f"({batch.num_nodes}), got {mask.dtype} {tuple(mask.shape)}")
    return mask


class SampledNodes(Dataset[tuple[Data, Tensor]]):
    """A node-level data set as mini-batches of sampled subgraphs (see the module docstring).

    ``dataset``: a ``NodeDataset`` (its graph ``data``, ``node_mask`` marking the split's nodes,
    and its attributes: classes, ``encoder_kwargs``, ``masks`` ...). ``seeds``: bool mask of the
    seed nodes (default every node: pre-training uses the whole graph; evaluation passes the
    split's nodes). Each item is ``(subgraph, labels)``: the subgraph's ``node_mask`` marks the
    seeds inside the split and ``labels`` are their labels, so ``embed`` over every item gives
    each split node once. The partition is drawn from ``(seed, epoch)`` (``set_epoch``; epoch 0
    until it is called; ``shuffle=False``: seeds in order) and item ``i``'s neighbours from
    ``(seed, epoch, i)``: a run is the same for a seed, whatever the order items are read in.
    """

    #: items are already batches of ``batch_nodes`` seeds: evaluation embeds one at a time
    #: (``anyssl.eval.embed`` caps its batch size with this)
    eval_batch_size = 1

    level = "node"
    notes: list[str]

    def __init__(self, dataset: Any, *, batch_nodes: int = BATCH_NODES,
                 fanout: Any = FANOUT, seed: int = 0, seeds: Tensor | None = None,
                 shuffle: bool = True) -> None:
        if isinstance(batch_nodes, bool) or not isinstance(batch_nodes, int) or batch_nodes < 1:
            raise ValueError(f"batch_nodes must be a positive int, got {batch_nodes!r}")
        data: Data = dataset.data
        n = int(data.num_nodes)
        seeds = torch.ones(n, dtype=torch.bool) if seeds is None else seeds
        if seeds.dtype != torch.bool or tuple(seeds.shape) != (n,) or not bool(seeds.any()):
            raise ValueError(f"seeds must be a non-empty bool mask of {n} nodes, got "
                             f"{seeds.dtype} {tuple(seeds.shape)}")
        for key in _KEPT:  # what the trainer, build and evaluation read of a data set
            if hasattr(dataset, key):
                setattr(self, key, getattr(dataset, key))
        self.data, self.graph = data, to_csr(data.edge_index, n)
        self.seed_ids = seeds.nonzero().view(-1)  # S
        self.batch_nodes, self.fanout = batch_nodes, parse_fanout(fanout)
        self.seed, self.shuffle, self.epoch = seed, shuffle, 0
        self.notes = list(getattr(dataset, "notes", None) or [])
        self._parts = self._partition(0)

    def _partition(self, epoch: int) -> list[Tensor]:
        ids = self.seed_ids
        if self.shuffle:
            g = torch.Generator().manual_seed(mix_seed(self.seed, epoch, _NEIGHBORS))
            ids = ids[torch.randperm(len(ids), generator=g)]
        return [p.sort().values for p in ids.split(self.batch_nodes)]

    def set_epoch(self, epoch: int) -> None:
        """Draw epoch ``epoch``'s partition of the seeds and its neighbours."""
        if epoch != self.epoch:
            self.epoch, self._parts = epoch, self._partition(epoch)

    def __len__(self) -> int:
        return math.ceil(len(self.seed_ids) / self.batch_nodes)

    def subgraph(self, index: int) -> Data:
        """Item ``index``'s subgraph: ``x``, ``edge_index``, ``y``, ``node_mask``, ``seed_mask``
        and ``n_id`` (each node's id in the graph, as ``NeighborLoader``'s)."""
        seeds = self._parts[index]
        g = torch.Generator().manual_seed(
            mix_seed(self.seed, self.epoch * len(self) + index, _NEIGHBORS))
        nodes = sample_nodes(self.graph, seeds, self.fanout, g)  # K, seeds first
        edge_index, _ = induced_edges(self.graph, nodes)
        is_seed = torch.arange(len(nodes)) < len(seeds)  # K
        d = self.data
        return Data(x=d.x[nodes], edge_index=edge_index, y=d.y[nodes], n_id=nodes,
                    node_mask=is_seed & d.node_mask[nodes], seed_mask=is_seed)

    def __getitem__(self, index: int) -> tuple[Data, Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"item {index} of {len(self)} sampled subgraphs")
        sub = self.subgraph(index % len(self))
        return sub, sub.y[sub.node_mask]


def sampling_args(sampler: str = "auto", batch_nodes: int = BATCH_NODES,
                  fanout: Any = FANOUT) -> tuple[str, int, tuple[int, ...]]:
    """The ``-d`` options checked: ``(sampler, batch_nodes, fanout)``."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of: {', '.join(SAMPLERS)}")
    if isinstance(batch_nodes, bool) or not isinstance(batch_nodes, int) or batch_nodes < 1:
        raise ValueError(f"batch_nodes must be a positive int, got {batch_nodes!r}")
    return sampler, batch_nodes, parse_fanout(fanout)


def sampled_dataset(dataset: Any, split: str, *, sampler: str = "auto",
                    batch_nodes: int = BATCH_NODES, fanout: Any = FANOUT,
                    seed: int = 0) -> Any:
    """``dataset`` (a ``NodeDataset``) as it is, or as ``SampledNodes`` when ``sampler`` is
    ``neighbor`` or ``auto`` on a graph above ``AUTO_NODES`` nodes (with a note). The train
    split seeds every node (pre-training sees the whole graph), shuffled; the test split seeds
    its own nodes, in order."""
    sampler, batch_nodes, fanout = sampling_args(sampler, batch_nodes, fanout)
    n = int(dataset.data.num_nodes)
    if sampler == "full" or (sampler == "auto" and n <= AUTO_NODES):
        return dataset
    train = split == "train"
    out = SampledNodes(dataset, batch_nodes=batch_nodes, fanout=fanout, seed=seed,
                       seeds=None if train else dataset.data.node_mask, shuffle=train)
    why = f"{n:,} nodes > {AUTO_NODES:,}" if sampler == "auto" else "sampler=neighbor"
    out.notes.append(f"graph: {why}: sampled subgraphs of {batch_nodes} seed nodes, fanout "
                     f"{','.join(map(str, fanout))} ({len(out)} per epoch); -d sampler=full "
                     "for the whole graph")
    return out
