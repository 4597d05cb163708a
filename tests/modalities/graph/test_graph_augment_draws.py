"""Batched graph augmentations, what each one draws: exact per-graph counts (GraphCL's
``int(ratio * n)``), the fills of ``attr_mask``, GRACE's per-column and per-edge coins (parity
with the same generator stream), ``subgraph``'s connectivity, size and law against an exact
enumeration of GraphCL's loop, and uniform choices."""

from __future__ import annotations

import pytest
import torch
from test_graph_augment import SIZES, _batch, _gen
from torch_geometric.data import Batch, Data

import anyssl.modalities.graph.augment as graph_aug
from anyssl.modalities.graph.augment_subgraph import subgraph_nodes


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.34, 0.5, 1.0])
def test_node_drop_counts(ratio: float) -> None:
    inp = _batch(0)
    out = graph_aug.NodeDrop(ratio)(inp, _gen(0))
    expect = [n - min(int(ratio * n), n - 1) for n in SIZES]
    assert (out.ptr[1:] - out.ptr[:-1]).tolist() == expect


@pytest.mark.parametrize("add", [True, False])
def test_edge_perturb_counts(add: bool) -> None:
    inp = _batch(3)
    ratio = 0.3
    out = graph_aug.EdgePerturb(ratio, add=add)(inp, _gen(0))
    e_in = torch.bincount(inp.batch[inp.edge_index[0]], minlength=inp.num_graphs)
    e_out = torch.bincount(out.batch[out.edge_index[0]], minlength=inp.num_graphs)
    dropped = torch.tensor([int(ratio * e) for e in e_in.tolist()])
    kept = out.edge_attr[:, 0] > 0
    e_kept = torch.bincount(out.batch[out.edge_index[0, kept]], minlength=inp.num_graphs)
    assert torch.equal(e_kept, e_in - dropped)
    assert torch.equal(e_out, e_in if add else e_in - dropped)
    assert int((~kept).sum()) == (int(dropped.sum()) if add else 0)


@pytest.mark.parametrize("ratio", [0.1, 0.5])
def test_attr_mask_counts_and_fills(ratio: float) -> None:
    inp = _batch(0)
    for fill in ("zero", "mean", "noise"):
        out = graph_aug.AttrMask(ratio, fill=fill)(inp, _gen(0))
        changed = (out.x != inp.x).any(dim=1)
        per_graph = torch.bincount(inp.batch[changed], minlength=inp.num_graphs)
        assert per_graph.tolist() == [int(ratio * n) for n in SIZES], fill
        if fill == "zero":
            assert bool((out.x[changed] == 0).all())
        if fill == "mean":
            means = torch.stack([d.x.mean(0) for d in inp.to_data_list()])
            assert torch.allclose(out.x[changed], means[inp.batch[changed]])


def test_attr_mask_noise_is_graphcl_gaussian() -> None:
    inp = Batch.from_data_list([Data(x=torch.zeros(10, 50), edge_index=torch.empty(2, 0).long())
                                for _ in range(100)])
    out = graph_aug.AttrMask(0.5)(inp, _gen(0))
    masked = out.x[(out.x != 0).any(dim=1)]
    assert masked.shape == (500, 50)
    assert abs(masked.mean().item() - 0.5) < 0.01 and abs(masked.std().item() - 0.5) < 0.01


def test_feature_mask_zeros_shared_columns_per_graph() -> None:
    inp = _batch(0)
    f = inp.x.shape[1]
    ratio = 0.5
    out = graph_aug.FeatureMask(ratio)(inp, _gen(4))
    # GRACE's drop_feature with each graph's own column draw (same generator stream)
    drop = torch.rand(inp.num_graphs, f, generator=_gen(4)) < ratio
    assert torch.equal(out.x, inp.x.masked_fill(drop[inp.batch], 0))
    zero_cols = [tuple((d.x == 0).all(0).tolist()) for d in out.to_data_list()]
    assert len(set(zero_cols)) > 1  # graphs draw different columns
    many = Batch.from_data_list([Data(x=torch.ones(2, 8), edge_index=torch.empty(2, 0).long())
                                 for _ in range(500)])
    share = (graph_aug.FeatureMask(0.3)(many, _gen(0)).x == 0).float().mean().item()
    assert abs(share - 0.3) < 0.03


def test_edge_drop_is_grace_dropout_adj() -> None:
    inp = _batch(0)
    out = graph_aug.EdgeDrop(0.4)(inp, _gen(5))
    keep = torch.rand(inp.edge_index.shape[1], generator=_gen(5)) >= 0.4
    assert torch.equal(out.edge_index, inp.edge_index[:, keep])
    assert torch.equal(out.edge_attr, inp.edge_attr[keep])
    big = _batch(1, sizes=(30,) * 40)
    share = 1 - graph_aug.EdgeDrop(0.2)(big, _gen(0)).num_edges / big.num_edges
    assert abs(share - 0.2) < 0.03


def _connected(edge_index: torch.Tensor, n: int) -> bool:
    seen, todo = {0}, [0]
    adj: dict[int, set[int]] = {}
    for a, b in edge_index.t().tolist():
        adj.setdefault(a, set()).add(b)
    while todo:
        for b in adj.get(todo.pop(), ()):
            if b not in seen:
                seen.add(b)
                todo.append(b)
    return len(seen) == n


@pytest.mark.parametrize("ratio", [0.05, 0.2, 0.5, 1.0])
def test_subgraph_is_connected_with_the_right_size(ratio: float) -> None:
    for connected in (True, False):
        inp = _batch(2, connected=connected)
        out = graph_aug.Subgraph(ratio)(inp, _gen(0))
        sizes = (out.ptr[1:] - out.ptr[:-1]).tolist()
        target = [max(1, int(ratio * n)) for n in SIZES]
        if connected:
            assert sizes == target
        else:
            assert all(1 <= s <= t for s, t in zip(sizes, target, strict=True))
            assert sizes[2] == 1 and sizes[10] == 1  # edgeless graphs keep their seed
        for d in out.to_data_list():
            assert _connected(d.edge_index, d.num_nodes)


def _graphcl_subgraph_law(adj: dict[int, set[int]], k: int) -> dict[frozenset[int], float]:
    """Exact law of the node set of GraphCL's subgraph loop: a uniform seed, then k - 1 times a
    uniform pick among the untaken neighbours of the taken nodes (stopping when none is left)."""
    law: dict[frozenset[int], float] = {}

    def grow(taken: frozenset[int], prob: float) -> None:
        frontier = set().union(*(adj[v] for v in taken)) - taken
        if len(taken) == k or not frontier:
            law[taken] = law.get(taken, 0.0) + prob
            return
        for v in frontier:
            grow(taken | {v}, prob / len(frontier))

    for seed in adj:
        grow(frozenset({seed}), 1 / len(adj))
    return law


def test_subgraph_matches_graphcl_loop_law() -> None:
    # a triangle 0-1-2 with a tail 2-3-4 and a leaf 5 on 0; keep 3 of 6 nodes
    pairs = [(0, 1), (1, 2), (0, 2), (2, 3), (3, 4), (0, 5)]
    adj: dict[int, set[int]] = {v: set() for v in range(6)}
    for a, b in pairs:
        adj[a].add(b)
        adj[b].add(a)
    ei = torch.tensor(pairs).t()
    copies = 6000
    many = Batch.from_data_list([Data(x=torch.ones(6, 1), edge_index=torch.cat([ei, ei.flip(0)],
                                                                                 1))] * copies)
    kept = subgraph_nodes(many, 0.5, None, _gen(0)).view(copies, 6)
    seen: dict[frozenset[int], float] = {}
    for row in kept.tolist():
        key = frozenset(i for i, k in enumerate(row) if k)
        seen[key] = seen.get(key, 0.0) + 1 / copies
    law = _graphcl_subgraph_law(adj, 3)
    assert set(seen) <= set(law)
    for key, prob in law.items():
        assert abs(seen.get(key, 0.0) - prob) < 0.02, (sorted(key), prob, seen.get(key))
    empty = Batch.from_data_list([Data(x=torch.ones(5, 1), edge_index=ei[:, :0])] * 2000)
    seeds = subgraph_nodes(empty, 0.4, None, _gen(0)).view(2000, 5).float().mean(0)
    assert torch.allclose(seeds, torch.full((5,), 0.2), atol=0.03)  # seeds are uniform


def test_node_drop_is_uniform_per_graph() -> None:
    many = Batch.from_data_list([Data(x=torch.arange(5.0).view(5, 1),
                                      edge_index=torch.empty(2, 0).long())] * 2000)
    out = graph_aug.NodeDrop(0.4)(many, _gen(0))
    kept = torch.bincount(out.x.view(-1).long(), minlength=5).float() / 2000
    assert torch.allclose(kept, torch.full((5,), 0.6), atol=0.03)
