"""Batched graph augmentations: the batch contract (structure, attributes follow their nodes and
edges, input untouched, seeds, masked application, specs, view generator) on random batches of
random graphs (single nodes and edgeless graphs included), and bad input. What each one draws
is tested in ``test_graph_augment_draws.py``."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch_geometric.data import Batch, Data

import anyssl.modalities.graph.augment as graph_aug
from anyssl.registry import AUGMENTATIONS
from anyssl.views import OneOf, RandomApply, SpecError, ViewGenerator, parse_spec

NAMES = ["node_drop", "edge_perturb", "attr_mask", "subgraph", "feature_mask", "edge_drop"]
SPECS = [*NAMES, "node_drop(ratio=1.0)", "edge_perturb(ratio=0.5,add=false)",
         "attr_mask(ratio=0.5,fill=mean)", "subgraph(ratio=0.5)", "feature_mask(ratio=1.0)",
         "edge_drop(ratio=0.6)", "node_drop(ratio=0.3) | subgraph(ratio=0.2)",
         "edge_perturb(ratio=0.3,p=0.5), attr_mask(fill=zero,p=0.5)"]
NODE_CHANGING = ("node_drop", "subgraph")
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SIZES = (1, 1, 2, 3, 5, 8, 13, 18, 25, 30, 4, 7)


def _gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _graphs(seed: int = 0, sizes: tuple[int, ...] = SIZES, connected: bool = False,
            edgeless: tuple[int, ...] = (2, 10)) -> list[Data]:
    """Undirected random graphs. Node ``i`` of the batch has ``y = i`` (its id) and ``x[:, 0] =
    i``; edge ``j`` has ``edge_attr[:, 0] = j + 1``; each graph has a graph-level ``g``."""
    rng = _gen(seed)
    graphs, node0, edge0 = [], 0, 0
    for k, n in enumerate(sizes):
        pairs = torch.randint(0, n, (2, 2 * n), generator=rng)
        if connected:  # a random spanning tree plus the random pairs
            parent = (torch.rand(n - 1, generator=rng) * torch.arange(1, n)).long()
            pairs = torch.cat([torch.stack([torch.arange(1, n), parent]), pairs], dim=1)
        pairs = pairs[:, pairs[0] != pairs[1]]
        if k in edgeless and not connected:
            pairs = pairs[:, :0]
        ei = torch.cat([pairs, pairs.flip(0)], dim=1)
        e = ei.shape[1]
        ids = torch.arange(node0, node0 + n)
        graphs.append(Data(
            x=torch.cat([ids.float().unsqueeze(1), torch.randn(n, 3, generator=rng) + 3], 1),
            edge_index=ei, y=ids, node_mask=ids % 3 == 0,
            edge_attr=torch.stack([torch.arange(edge0, edge0 + e).float() + 1,
                                   torch.rand(e, generator=rng) + 1], 1),
            g=torch.tensor([[float(k), 0.5]])))
        node0, edge0 = node0 + n, edge0 + e
    return graphs


def _batch(seed: int = 0, device: str = "cpu", **kw: Any) -> Batch:
    return Batch.from_data_list(_graphs(seed, **kw)).to(device)


def _snapshot(b: Batch) -> dict[str, Any]:
    return {"store": {k: v.clone() for k, v in b.items()},
            "slices": {k: v.clone() for k, v in b._slice_dict.items()},
            "incs": {k: v.clone() for k, v in b._inc_dict.items()}}


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(
        _same(a[k], b[k]) if isinstance(a[k], dict) else torch.equal(a[k], b[k]) for k in a)


def _check_contract(out: Any, inp: Batch, spec: str) -> None:
    """Structure, attributes following their nodes/edges, and to_data_list()."""
    assert isinstance(out, Batch) and out is not inp and out.num_graphs == inp.num_graphs
    g = inp.num_graphs
    sizes = out.ptr[1:] - out.ptr[:-1]
    assert bool((sizes >= 1).all()), spec
    assert bool((out.batch[1:] >= out.batch[:-1]).all()), spec
    counts = torch.bincount(out.batch, minlength=g)
    assert torch.equal(out.ptr, torch.cat([counts.new_zeros(1), counts.cumsum(0)])), spec
    n = out.batch.numel()
    src, dst = out.edge_index
    assert out.edge_index.dtype == torch.long and out.x.shape == (n, inp.x.shape[1])
    assert bool(((out.edge_index >= 0) & (out.edge_index < n)).all()), spec
    assert torch.equal(out.batch[src], out.batch[dst]), spec  # no edge between graphs
    # nodes: y is the input position, node attributes and graph membership follow it
    assert torch.equal(inp.batch[out.y], out.batch), spec
    assert torch.equal(out.node_mask, inp.node_mask[out.y]), spec
    assert bool((out.y[1:] > out.y[:-1]).all()), spec  # kept nodes keep their order
    if "attr_mask" not in spec and "feature_mask" not in spec:
        assert torch.equal(out.x, inp.x[out.y]), spec
    # edges: kept ones keep their attributes and endpoints, added ones have zero attributes
    old = out.edge_attr[:, 0].long() - 1
    assert out.edge_attr.shape[0] == out.edge_index.shape[1]
    kept = old >= 0
    assert torch.equal(out.edge_attr[kept], inp.edge_attr[old[kept]]), spec
    assert torch.equal(out.y[out.edge_index[:, kept]], inp.edge_index[:, old[kept]]), spec
    assert bool((out.edge_attr[~kept] == 0).all()), spec
    assert torch.equal(out.g, inp.g), spec  # graph-level attribute untouched
    datas = out.to_data_list()
    assert [d.num_nodes for d in datas] == sizes.tolist()
    for d in datas:
        assert d.edge_index.numel() == 0 or int(d.edge_index.max()) < d.num_nodes


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("spec", SPECS)
def test_contract_on_random_batches(spec: str, device: str) -> None:
    aug = parse_spec(spec, scope="graph")
    for seed in range(3):
        inp = _batch(seed, device)
        before = _snapshot(inp)
        out = aug(inp, _gen(seed, device))
        _check_contract(out, inp, spec)
        assert _same(before, _snapshot(inp)), f"{spec} modified its input"
        again = aug(inp, _gen(seed, device))
        assert _same(_snapshot(out), _snapshot(again)), f"{spec} is not reproducible"
        assert out.x.device == inp.x.device


@pytest.mark.parametrize("name", NAMES)
def test_node_changing_augmentations_keep_induced_subgraphs(name: str) -> None:
    inp = _batch(1)
    out = AUGMENTATIONS.build(name, "graph", ratio=0.5)(inp, _gen(0))
    kept = torch.zeros(inp.num_nodes, dtype=torch.bool)
    kept[out.y] = True
    old = set((out.edge_attr[:, 0].long() - 1).tolist())
    if name in NODE_CHANGING:
        both = kept[inp.edge_index[0]] & kept[inp.edge_index[1]]
        assert old == set(both.nonzero().view(-1).tolist())
        assert out.num_nodes < inp.num_nodes
    else:
        assert bool(kept.all()) and out.num_nodes == inp.num_nodes


def test_different_seeds_give_different_views() -> None:
    inp = _batch(0)
    for name in NAMES:
        aug = AUGMENTATIONS.build(name, "graph", ratio=0.5)
        a, b = aug(inp, _gen(1)), aug(inp, _gen(2))
        assert not _same(_snapshot(a), _snapshot(b)), name


@pytest.mark.parametrize("name", NAMES)
def test_apply_masked_leaves_other_graphs_bit_identical(name: str) -> None:
    inp = _batch(0)
    before = _snapshot(inp)
    mask = torch.arange(inp.num_graphs) % 2 == 0
    out = AUGMENTATIONS.build(name, "graph", ratio=0.6).apply_masked(inp, mask, _gen(0))
    _check_contract(out, inp, name)
    assert _same(before, _snapshot(inp))
    changed = []
    for i, (a, b) in enumerate(zip(out.to_data_list(), inp.to_data_list(), strict=True)):
        keys = a.keys()
        same = keys == b.keys() and all(torch.equal(a[k], b[k]) for k in keys)
        assert same or mask[i], f"{name} changed unmasked graph {i}"
        changed.append(not same)
    assert any(changed), name
    none = AUGMENTATIONS.build(name, "graph", ratio=0.6).apply_masked(
        inp, torch.zeros(inp.num_graphs, dtype=torch.bool), _gen(0))
    assert _same({k: v for k, v in none.items()}, {k: v for k, v in inp.items()})


def test_specs_random_apply_and_one_of() -> None:
    one_of = parse_spec("node_drop(ratio=0.2) | subgraph(ratio=0.2)", scope="graph")
    assert isinstance(one_of, OneOf)
    apply = parse_spec("edge_perturb(ratio=0.5,p=0.5)", scope="graph")
    assert isinstance(apply, RandomApply) and apply.p == 0.5
    inp = _batch(0, sizes=(12,) * 40, connected=True)
    out = apply(inp, _gen(0))
    _check_contract(out, inp, "edge_perturb")
    same = [bool(torch.equal(a.edge_index, b.edge_index))
            for a, b in zip(out.to_data_list(), inp.to_data_list(), strict=True)]
    assert 5 < sum(same) < 35  # about half the graphs perturbed
    sizes = (one_of(inp, _gen(0)).ptr.diff()).tolist()
    assert set(sizes) == {max(1, int(0.2 * 12)), 12 - int(0.2 * 12)}  # both were drawn
    for name in NAMES:
        aug = AUGMENTATIONS.build(name, "graph")
        assert repr(parse_spec(repr(aug), scope="graph")) == repr(aug)


def test_view_generator_makes_seeded_graph_views() -> None:
    spec = ("node_drop(ratio=0.1) | edge_perturb(ratio=0.1) | attr_mask(ratio=0.1) | "
            "subgraph(ratio=0.2)")
    views = ViewGenerator(parse_spec(spec, scope="graph"), n_views=2)
    inp = _batch(0)
    views.manual_seed(3)
    a1, b1 = views(inp)
    views.manual_seed(3)
    a2, _ = views(inp)
    assert _same(_snapshot(a1), _snapshot(a2)) and not _same(_snapshot(a1), _snapshot(b1))


@pytest.mark.parametrize("bad", [-0.1, 1.5, "half", True, None])
def test_bad_ratios_raise(bad: Any) -> None:
    for name in NAMES:
        with pytest.raises(ValueError, match="ratio must be a number in"):
            AUGMENTATIONS.build(name, "graph", ratio=bad)
    with pytest.raises(SpecError, match="ratio"):
        parse_spec("node_drop(ratio=2)", scope="graph")


def test_bad_arguments_and_inputs_raise() -> None:
    with pytest.raises(ValueError, match="fill must be one of"):
        graph_aug.AttrMask(fill="gauss")
    with pytest.raises(ValueError, match="add must be true or false"):
        graph_aug.EdgePerturb(add="yes")
    inp = _batch(0)
    for name in NAMES:
        aug = AUGMENTATIONS.build(name, "graph")
        with pytest.raises(ValueError, match="needs a torch_geometric Batch"):
            aug(torch.randn(4, 3), _gen(0))
        with pytest.raises(ValueError, match="needs a torch_geometric Batch"):
            aug(inp.to_data_list()[0], _gen(0))
        with pytest.raises(ValueError, match="bool mask of shape"):
            aug.apply_masked(inp, torch.ones(3, dtype=torch.bool), _gen(0))
        with pytest.raises(ValueError, match="bool mask of shape"):
            aug.apply_masked(inp, torch.ones(inp.num_graphs), _gen(0))
    no_float = inp.clone()
    no_float.x = no_float.x.long()
    for aug in (graph_aug.AttrMask(), graph_aug.FeatureMask()):
        with pytest.raises(ValueError, match="needs float node features"):
            aug(no_float, _gen(0))


def test_attribute_levels_in_corner_cases() -> None:
    # one edge per graph: a graph-level attribute sliced like the edges stays whole
    one_edge = [Data(x=torch.randn(3, 2), edge_index=torch.tensor([[0], [1]]),
                     g=torch.tensor([float(i)]), edge_w=torch.tensor([float(i)]))
                for i in range(6)]
    b = Batch.from_data_list(one_edge)
    out = graph_aug.EdgeDrop(0.5)(b, _gen(1))
    assert torch.equal(out.g, b.g) and out.edge_w.numel() == out.num_edges < 6
    # explicit num_nodes, and a Batch not built by from_data_list (no slice table)
    counted = Batch.from_data_list([Data(x=torch.randn(n, 2), num_nodes=n,
                                         edge_index=torch.empty(2, 0).long()) for n in (4, 9)])
    out = graph_aug.NodeDrop(0.5)(counted, _gen(0))
    assert out.num_nodes == 2 + 5 and [d.num_nodes for d in out.to_data_list()] == [2, 5]
    bare = Batch(x=counted.x, edge_index=counted.edge_index, batch=counted.batch,
                 ptr=counted.ptr)
    assert graph_aug.NodeDrop(0.5)(bare, _gen(0)).ptr.tolist() == [0, 2, 7]
    # node-index attributes other than edge_index cannot be relabelled
    faces = Batch.from_data_list([Data(x=torch.randn(4, 2), edge_index=torch.empty(2, 0).long(),
                                       face=torch.tensor([[0], [1], [2]]))])
    with pytest.raises(ValueError, match="node-index attribute 'face'"):
        graph_aug.NodeDrop(0.5)(faces, _gen(0))
