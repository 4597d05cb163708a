"""GraphDataset / NodeDataset / collate / graph checks: the data contract and every bad input."""

from __future__ import annotations

import logging

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.transforms import OneHotDegree
from torch_geometric.utils import to_undirected

from anyssl.modalities.graph.data import (
    GraphDataset,
    NodeDataset,
    collate,
    graph_dataset,
    random_node_split,
)
from anyssl.modalities.graph.data_checks import GraphDataError, check_graphs, degree_features


def ring(n: int, label: int | None = 0, feats: int | None = 2, seed: int = 0) -> Data:
    """An undirected cycle of ``n`` nodes (both directions stored)."""
    src = torch.arange(n)
    ei = to_undirected(torch.stack([src, (src + 1) % n]), num_nodes=n) if n > 1 else \
        torch.zeros(2, 0, dtype=torch.long)
    g = torch.Generator().manual_seed(seed)
    x = None if feats is None else torch.randn(n, feats, generator=g)
    y = None if label is None else torch.tensor([label])
    return Data(x=x, edge_index=ei, y=y, num_nodes=n)


def toy_graphs(n: int = 40, feats: int | None = 2) -> list[Data]:
    return [ring(3 + i % 5, label=i % 2, feats=feats, seed=i) for i in range(n)]


# ---- collate --------------------------------------------------------------------------------
def test_collate_graph_level_batches_graphs_and_int_labels() -> None:
    ds = GraphDataset(toy_graphs(), "train")
    items = [ds[i] for i in range(4)]
    batch, labels = collate(items)
    assert isinstance(batch, Batch) and batch.num_graphs == 4
    assert batch.x.shape == (sum(d.num_nodes for d, _ in items), 2)
    assert labels.dtype == torch.long and labels.tolist() == [lab for _, lab in items]
    assert batch.batch.bincount().tolist() == [d.num_nodes for d, _ in items]
    assert batch.y.tolist() == labels.tolist()


def test_collate_node_level_labels_are_masked_node_labels() -> None:
    data = ring(30, label=None)
    data.y = torch.arange(30) % 3
    ds = NodeDataset(data, "test", split_mode="random", split_seed=1)
    batch, labels = collate([ds[0]])
    assert batch.num_graphs == 1 and batch.x.shape == (30, 2)
    assert batch.node_mask.dtype == torch.bool and batch.node_mask.shape == (30,)
    assert torch.equal(labels, data.y[batch.node_mask])
    assert torch.equal(batch.node_mask, ds.masks["test"])


def test_collate_empty_raises() -> None:
    with pytest.raises(ValueError, match="no items"):
        collate([])


# ---- GraphDataset ---------------------------------------------------------------------------
def test_graph_dataset_attributes_and_split() -> None:
    graphs = toy_graphs(60)
    train = GraphDataset.from_pyg(graphs, "train", split_seed=3)
    test = GraphDataset.from_pyg(graphs, "test", split_seed=3)
    assert set(train.indices).isdisjoint(test.indices)
    assert sorted(train.indices + test.indices) == list(range(60))
    assert [t for t in test.targets].count(0) == 3 and test.targets.count(1) == 3  # 10% per class
    assert train.encoder_kwargs == {"in_dim": 2, "level": "graph"}
    assert train.num_classes == 2 and train.classes == ["0", "1"]
    assert train.level == "graph" and train.suggested_encoder == "gin"
    assert train.suggested_epochs == 20
    assert train.eval_protocols == ("svm", "linear", "knn")
    assert train.eval_options == {"svm": {"folds": 10, "kernel": "rbf"}}
    for k, i in enumerate(train.indices):  # item = the original graph's content
        data, label = train[k]
        assert torch.equal(data.x, graphs[i].x) and label == int(graphs[i].y)
    assert train[0][0] is train[0][0]  # cached, returned as is
    other = GraphDataset(graphs, "test", split_seed=4)
    assert other.indices != test.indices  # split_seed changes the split


def test_graph_dataset_unlabeled_and_regression_targets(caplog: pytest.LogCaptureFixture) -> None:
    unl = GraphDataset([ring(4, label=None) for _ in range(20)])
    assert unl.num_classes is None and set(unl.targets) == {-1} and unl.classes is None
    graphs = toy_graphs(20)
    for g in graphs:
        g.y = torch.tensor([0.37])
    with caplog.at_level(logging.WARNING):
        reg = GraphDataset(graphs)
    assert reg.num_classes is None and "regression" in caplog.text


def test_graph_dataset_from_pyg_in_memory_dataset() -> None:
    from torch_geometric.data import InMemoryDataset

    class Toy(InMemoryDataset):
        def __init__(self) -> None:
            super().__init__(None)
            self.data, self.slices = self.collate(toy_graphs(30))

    train, test = GraphDataset(Toy(), "train"), GraphDataset(Toy(), "test")
    assert len(train) + len(test) == 30 and train.encoder_kwargs["in_dim"] == 2
    assert sorted(train.indices + test.indices) == list(range(30))


def test_graph_dataset_function_dispatches_on_type() -> None:
    assert isinstance(graph_dataset(toy_graphs()), GraphDataset)
    node = ring(20)
    node.y = torch.arange(20) % 2
    assert isinstance(graph_dataset(node), NodeDataset)
    with pytest.raises(ValueError, match="expected a Data"):
        graph_dataset(42)


# ---- validation -----------------------------------------------------------------------------
def test_one_node_and_edgeless_graphs_are_allowed() -> None:
    graphs = [*toy_graphs(18), ring(1, label=0), Data(x=torch.ones(3, 2), y=torch.tensor([1]))]
    xs, eis = check_graphs(graphs)
    assert xs[18].shape == (1, 2) and eis[18].shape == (2, 0)
    assert xs[19].shape == (3, 2) and eis[19].shape == (2, 0) and eis[19].dtype == torch.long


def test_self_loops_removed_and_duplicates_merged(caplog: pytest.LogCaptureFixture) -> None:
    g = Data(x=torch.ones(3, 1), edge_index=torch.tensor([[0, 0, 1, 1, 2, 1], [0, 1, 0, 0, 2, 2]]))
    clean = ring(3, feats=1)
    with caplog.at_level(logging.INFO):
        _, eis = check_graphs([clean, g])
    assert sorted(map(tuple, eis[1].t().tolist())) == [(0, 1), (1, 0), (1, 2)]
    assert torch.equal(eis[0], clean.edge_index)  # untouched graph keeps its edges
    assert "self-loops in 1 graph" in caplog.text and "duplicate edges in 1 graph" in caplog.text


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_features_name_the_graph(bad: float) -> None:
    graphs = toy_graphs(10)
    graphs[7].x[1, 0] = bad
    with pytest.raises(GraphDataError, match=r"^graph 7 has NaN or inf"):
        GraphDataset(graphs)


def test_mismatched_feature_widths_raise() -> None:
    graphs = toy_graphs(10)
    graphs[4].x = torch.ones(graphs[4].num_nodes, 5)
    with pytest.raises(GraphDataError, match="graph 4 has 5 node features but graph 0 has 2"):
        GraphDataset(graphs)
    graphs[4].x = None
    with pytest.raises(GraphDataError, match="graph 4 has no node features"):
        GraphDataset(graphs)


def test_bad_graph_inputs_raise_one_line_errors() -> None:
    cases = {
        "no graphs": [],
        "graph 2 has no nodes": [ring(3), ring(3), Data(x=torch.zeros(0, 2))],
        "graph 1: edge_index refers to node 5": [ring(3), Data(x=torch.ones(3, 2),
                                                 edge_index=torch.tensor([[0], [5]]))],
        "graph 1: edge_index must be a 2 x E": [ring(3), Data(x=torch.ones(3, 2),
                                                edge_index=torch.tensor([[0.0, 1.0]]))],
        "graph 0: x must be num_nodes x F": [Data(x=torch.ones(3, 2, 2))],
    }
    for msg, graphs in cases.items():
        with pytest.raises(GraphDataError, match=msg) as err:
            check_graphs(graphs)
        assert "\n" not in str(err.value)
    with pytest.raises(GraphDataError, match="graph 1: y has 2 values"):
        GraphDataset([ring(3), Data(x=torch.ones(2, 2), y=torch.tensor([0, 1]))])
    with pytest.raises(GraphDataError, match="too few"):
        GraphDataset(toy_graphs(4))
    with pytest.raises(ValueError, match="unknown features"):
        check_graphs(toy_graphs(4), features="pagerank")


# ---- feature fallback -----------------------------------------------------------------------
def test_degree_fallback_matches_pyg_one_hot_degree(caplog: pytest.LogCaptureFixture) -> None:
    star = Data(edge_index=to_undirected(torch.tensor([[0, 0, 0], [1, 2, 3]])), num_nodes=4)
    path3 = Data(edge_index=to_undirected(torch.tensor([[0, 1], [1, 2]])), num_nodes=3)
    with caplog.at_level(logging.INFO):
        xs, _ = check_graphs([star, path3])
    assert "one-hot degree, 4 columns" in caplog.text
    ref = OneHotDegree(3)  # the max degree in the data
    assert torch.equal(xs[0], ref(star.clone()).x) and torch.equal(xs[1], ref(path3.clone()).x)
    capped, _ = check_graphs([star, path3], max_degree=2)  # degree 3 shares the last column
    assert capped[0].shape == (4, 3) and capped[0][0].tolist() == [0, 0, 1]
    assert torch.equal(capped[1], xs[1][:, :3])


def test_constant_fallback_when_degrees_are_uninformative() -> None:
    xs, _ = check_graphs([ring(5, feats=None), ring(4, feats=None)])  # every degree is 2
    assert all(torch.equal(x, torch.ones(x.shape[0], 1)) for x in xs)
    xs, _ = check_graphs([Data(num_nodes=3), Data(num_nodes=1)])  # no edges at all
    assert [x.shape for x in xs] == [(3, 1), (1, 1)]
    forced, _ = check_graphs([ring(5, feats=None)], features="degree")
    assert forced[0].shape == (5, 3) and bool((forced[0][:, 2] == 1).all())
    const, _ = check_graphs(toy_graphs(3), features="constant")  # replaces the given x
    assert all(x.shape[1] == 1 for x in const)


def test_degree_features_function_caps_and_describes() -> None:
    ei = torch.tensor([[0, 0, 0, 0, 1], [1, 2, 3, 4, 0]])
    x, how = degree_features(ei, 5, max_degree=None)
    assert x.shape == (5, 5) and x.argmax(1).tolist() == [4, 1, 0, 0, 0] and "capped at 4" in how
    x, _ = degree_features(ei, 5, max_degree=2)
    assert x.argmax(1).tolist() == [2, 1, 0, 0, 0]


def test_graph_dataset_without_x_gets_degree_features() -> None:
    ds = GraphDataset(toy_graphs(20, feats=None) + [Data(edge_index=to_undirected(
        torch.tensor([[0, 0, 0], [1, 2, 3]])), num_nodes=4, y=torch.tensor([1]))] * 2)
    assert ds.encoder_kwargs["in_dim"] == 4  # degrees 0..3 one-hot
    assert all(d.x.sum(1).eq(1).all() for d, _ in ds)


# ---- NodeDataset ----------------------------------------------------------------------------
def node_graph(n: int = 100, masks: bool = True) -> Data:
    data = ring(n, label=None, feats=4)
    data.y = torch.arange(n) % 4
    if masks:
        idx = torch.arange(n)
        data.train_mask, data.val_mask, data.test_mask = idx < 20, (idx >= 20) & (idx < 40), \
            idx >= 60
    return data


def test_node_dataset_public_split_and_attributes() -> None:
    data = node_graph()
    train, test = NodeDataset(data, "train"), NodeDataset(data, "test")
    assert len(train) == 1 and len(test) == 1
    g, label = train[0]
    assert torch.equal(g.node_mask, data.train_mask) and torch.equal(label, data.y[:20])
    assert torch.equal(test[0][0].node_mask, data.test_mask) and test[0][1].shape == (40,)
    assert g.x is test[0][0].x or torch.equal(g.x, test[0][0].x)
    assert train.encoder_kwargs == {"in_dim": 4, "level": "node"}
    assert train.num_classes == 4 and train.level == "node" and train.suggested_encoder == "gcn"
    assert train.eval_protocols == ("linear", "knn") and train.eval_options == {}
    assert train.suggested_epochs == 200
    with pytest.raises(IndexError):
        train[1]


def test_node_dataset_random_split_is_grace_10_10_80() -> None:
    data = node_graph(400)
    ds = NodeDataset(data, "train", split_mode="random", split_seed=5)
    m = ds.masks
    assert [int(m[k].sum()) for k in ("train", "val", "test")] == [40, 40, 320]
    assert not bool((m["train"] & m["test"]).any() | (m["val"] & m["test"]).any()
                    | (m["train"] & m["val"]).any())
    assert bool((m["train"] | m["val"] | m["test"]).all())
    assert data.y[m["train"]].bincount().tolist() == [10, 10, 10, 10]  # stratified
    again = NodeDataset(data, "test", split_mode="random", split_seed=5).masks
    assert all(torch.equal(m[k], again[k]) for k in m)
    other = random_node_split(data.y, seed=6)
    assert not torch.equal(other["train"], m["train"])


def test_node_dataset_random_split_evaluates_with_grace_protocol_first() -> None:
    """GRACE's split asked for: its protocol (``logreg_cv``) first; the public split and the
    fallback of a graph without masks keep the linear probe and kNN."""
    assert NodeDataset(node_graph(), split_mode="random").eval_protocols == (
        "logreg_cv", "linear", "knn")
    assert NodeDataset(node_graph(), split_mode="public").eval_protocols == ("linear", "knn")
    fallback = NodeDataset(node_graph(masks=False), split_mode="public")
    assert fallback.eval_protocols == ("linear", "knn") and fallback.split_mode == "public"


def test_node_dataset_without_masks_falls_back_to_random(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        ds = NodeDataset(node_graph(masks=False), "train")
    assert "random 10/10/80" in caplog.text and int(ds.masks["train"].sum()) == 12


def test_node_dataset_bad_inputs() -> None:
    data = node_graph()
    data.test_mask = data.train_mask.clone()
    with pytest.raises(GraphDataError, match="overlap"):
        NodeDataset(data)
    data = node_graph()
    data.train_mask = torch.ones(7, dtype=torch.bool)
    with pytest.raises(GraphDataError, match="train_mask must be a bool tensor of 100"):
        NodeDataset(data)
    data = node_graph()
    data.y = torch.zeros(3, dtype=torch.long)
    with pytest.raises(GraphDataError, match="one value per node"):
        NodeDataset(data)
    with pytest.raises(ValueError, match="unknown split_mode"):
        NodeDataset(node_graph(), split_mode="full")
    with pytest.raises(ValueError, match="unknown split"):
        NodeDataset(node_graph(), split="holdout")
    data = node_graph()
    data.x[3, 1] = float("nan")
    with pytest.raises(GraphDataError, match="graph 0 has NaN"):
        NodeDataset(data)


def test_pretrain_on_all_pretrains_on_every_graph_and_evaluates_the_split() -> None:
    from anyssl.build import pretrain_set

    graphs = toy_graphs(40)
    train = GraphDataset(graphs, "train", pretrain_on="all")
    test = GraphDataset(graphs, "test", pretrain_on="all")
    assert len(train) + len(test) == 40 and len(train) < 40
    pre = pretrain_set(train)
    assert len(pre) == 40  # train and test graphs, in the input's order
    for i, g in enumerate(graphs):
        data, label = pre[i]
        assert data.num_nodes == g.num_nodes and label == int(g.y)
    assert pre.encoder_kwargs == train.encoder_kwargs
    assert pretrain_set(test) is test  # only the train split pre-trains
    default = GraphDataset(graphs, "train")
    assert pretrain_set(default) is default  # anyssl's default: the train split only


def test_pretrain_on_rejects_unknown_values() -> None:
    with pytest.raises(ValueError, match=r"pretrain_on must be 'train'.*or 'all'"):
        GraphDataset(toy_graphs(), "train", pretrain_on="test")
