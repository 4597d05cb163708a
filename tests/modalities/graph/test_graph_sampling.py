"""Node-level training on sampled subgraphs (``sampling``) and the SBM graph: every node is a seed
once per epoch, items are the induced subgraphs of the sampled nodes and are fixed by the seed, a
batch covering the graph is the graph (GRACE's loss equal to the full graph's), GRACE trains on
subgraphs through the trainer, and evaluation embeds each split node once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data

from anyssl.eval import embed
from anyssl.modalities.graph import sampling
from anyssl.modalities.graph.data import NodeDataset, collate
from anyssl.modalities.graph.datasets_sbm import sbm, sbm_graph
from anyssl.modalities.graph.encoders import GCN
from anyssl.modalities.graph.grace import GRACE, grace_loss
from anyssl.modalities.graph.recipes import GRACE_VIEWS
from anyssl.modalities.graph.sampling import SampledNodes, parse_fanout, sampled_dataset
from anyssl.registry import DATASETS
from anyssl.train import TrainConfig, Trainer
from anyssl.views import ViewGenerator, build_pipeline

FEATURES = 8


def node_set(n: int = 300, split: str = "train", seed: int = 0) -> NodeDataset:
    data = sbm_graph(n, num_blocks=4, avg_degree=6, features=FEATURES, noise=1.0, seed=seed)
    return NodeDataset(data, split, split_mode="random")


def grace_views() -> ViewGenerator:
    return ViewGenerator([build_pipeline(s, "graph") for s in GRACE_VIEWS])


def edge_set(data: Data, nodes: torch.Tensor | None = None) -> set[tuple[int, int]]:
    ei = data.edge_index if nodes is None else nodes[data.edge_index]
    return set(map(tuple, ei.T.tolist()))


def test_every_node_is_a_seed_once_per_epoch_and_epochs_repartition() -> None:
    ds = SampledNodes(node_set(), batch_nodes=70, fanout=(3, 2), seed=0)
    assert len(ds) == 5  # ceil(300 / 70), the last one smaller
    parts = []
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        seeds = [ds[i][0].n_id[ds[i][0].seed_mask] for i in range(len(ds))]
        assert torch.equal(torch.cat(seeds).sort().values, torch.arange(300))
        assert all(bool(s[:-1].lt(s[1:]).all()) for s in seeds)  # sorted, seeds first
        parts.append(seeds[0])
    assert not torch.equal(parts[0], parts[1])  # a new partition each epoch


def test_items_are_induced_subgraphs_within_the_fanout() -> None:
    base = node_set()
    ds = SampledNodes(base, batch_nodes=50, fanout=(2,), seed=3)
    graph, whole = base.data, edge_set(base.data)
    for i in range(len(ds)):
        sub, labels = ds[i]
        s = int(sub.seed_mask.sum())
        assert bool(sub.seed_mask[:s].all()) and sub.num_nodes <= 3 * s  # <= 2 per seed
        assert torch.equal(sub.x, graph.x[sub.n_id]) and torch.equal(sub.y, graph.y[sub.n_id])
        inside = torch.zeros(300, dtype=torch.bool)
        inside[sub.n_id] = True
        between = {e for e in whole if inside[e[0]] and inside[e[1]]}
        assert edge_set(sub, sub.n_id) == between  # every edge between the sampled nodes
        assert torch.equal(sub.node_mask, sub.seed_mask & graph.node_mask[sub.n_id])
        assert torch.equal(labels, sub.y[sub.node_mask])
    # fanout -1, one hop: the seeds and exactly their in-neighbours
    sub, _ = SampledNodes(base, batch_nodes=10, fanout="-1", seed=0)[0]
    seeds = sub.n_id[sub.seed_mask]
    into = graph.edge_index[0, torch.isin(graph.edge_index[1], seeds)]
    assert set(sub.n_id.tolist()) == set(seeds.tolist()) | set(into.tolist())


def test_items_are_fixed_by_the_seed() -> None:
    a, b = (SampledNodes(node_set(), batch_nodes=64, seed=5) for _ in range(2))
    c = SampledNodes(node_set(), batch_nodes=64, seed=6)
    for i in (2, 0, 1):  # any reading order
        assert torch.equal(a[i][0].n_id, b[i][0].n_id)
        assert torch.equal(a[i][0].edge_index, b[i][0].edge_index)
    assert any(not torch.equal(a[i][0].n_id, c[i][0].n_id) for i in range(len(a)))


def test_a_batch_covering_the_graph_is_the_graph_and_gives_graces_loss() -> None:
    base = node_set(120)
    sub, _ = SampledNodes(base, batch_nodes=500, fanout=(2, 2))[0]
    assert torch.equal(sub.n_id, torch.arange(120))
    assert torch.equal(sub.edge_index, base.data.edge_index)  # same edges, same order
    torch.manual_seed(0)
    method = GRACE(GCN(FEATURES, level="node", out_dim=16), grace_views(), proj_dim=8)
    losses, grads = [], []
    for item in (base[0], (sub, sub.y[sub.node_mask])):
        method.views.manual_seed(7)
        method.zero_grad()
        loss, _ = method.training_step(collate([item]))
        loss.backward()
        losses.append(loss.detach())
        grads.append([p.grad.clone() for p in method.parameters() if p.grad is not None])
    torch.testing.assert_close(losses[0], losses[1], rtol=0, atol=0)
    for g_full, g_sub in zip(*grads, strict=True):
        torch.testing.assert_close(g_full, g_sub)


def test_grace_loss_takes_only_the_seeds() -> None:
    torch.manual_seed(0)
    method = GRACE(GCN(FEATURES, level="node", out_dim=16), grace_views(), proj_dim=8)
    sub, labels = SampledNodes(node_set(), batch_nodes=40, fanout=(3, 3))[0]
    assert sub.num_nodes > 40
    method.views.manual_seed(1)
    loss, _ = method.training_step(collate([(sub, labels)]))
    method.views.manual_seed(1)
    v1, v2 = method.views(collate([(sub, labels)])[0])
    h1, h2 = (method.projector(method.encoder.nodes(v)[:40]) for v in (v1, v2))
    torch.testing.assert_close(loss, grace_loss(h1, h2, 0.4))


def test_grace_trains_on_sampled_subgraphs_through_the_trainer(tmp_path: Path) -> None:
    ds = SampledNodes(node_set(400), batch_nodes=100, fanout=(5, 5), seed=0)
    torch.manual_seed(0)
    method = GRACE(GCN(FEATURES, level="node", out_dim=16), grace_views(), proj_dim=16)
    cfg = TrainConfig(modality="graph", method="grace", epochs=12, batch_size=1, lr=0.01,
                      device="cpu", eval=False, log_every=1)
    Trainer(method, ds, cfg, tmp_path / "run", collate=collate).fit()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    losses = [json.loads(ln)["loss"] for ln in lines if '"loss"' in ln]
    assert len(losses) == 48 and all(torch.isfinite(torch.tensor(losses)))
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < first - 0.05, (first, last)


def test_evaluation_embeds_each_split_node_once() -> None:
    test = node_set(200, split="test")
    ds = sampled_dataset(test, "test", sampler="neighbor", batch_nodes=64, fanout="4,4")
    assert isinstance(ds, SampledNodes) and len(ds) == 3  # 160 test nodes (80%)
    assert "sampler=neighbor" in ds.notes[-1]
    enc = GCN(FEATURES, level="node", out_dim=8)
    feats, labels = embed(enc, ds, batch_size=1, collate=collate)
    mask = test.data.node_mask
    assert feats.shape == (int(mask.sum()), 8)
    assert torch.equal(torch.as_tensor(labels), test.data.y[mask])  # in node order
    full = sampled_dataset(test, "test", sampler="neighbor", batch_nodes=500, fanout="-1,-1")
    exact, _ = embed(enc, full, batch_size=1, collate=collate)
    ref, _ = embed(enc, test, batch_size=1, collate=collate)
    torch.testing.assert_close(torch.as_tensor(exact), torch.as_tensor(ref))


def test_auto_sampler_switches_above_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    base = node_set(120)
    assert sampled_dataset(base, "train") is base  # small: the whole graph
    assert sampled_dataset(base, "train", sampler="full") is base
    monkeypatch.setattr(sampling, "AUTO_NODES", 100)
    ds = sampled_dataset(base, "train", batch_nodes=50)
    assert isinstance(ds, SampledNodes) and len(ds) == 3 and "120 nodes > 100" in ds.notes[-1]
    assert ds.encoder_kwargs == base.encoder_kwargs and ds.num_classes == base.num_classes


def test_bad_sampling_options_name_the_valid_ones() -> None:
    base = node_set(50)
    with pytest.raises(ValueError, match="choose one of: auto, full, neighbor"):
        sampled_dataset(base, "train", sampler="cluster")
    for bad in ("10,0", "a", "-2", ""):
        with pytest.raises(ValueError, match="fanout is one count per hop"):
            parse_fanout(bad)
    assert parse_fanout("10, 5") == (10, 5) and parse_fanout(3) == (3,)
    with pytest.raises(ValueError, match="batch_nodes must be a positive int"):
        SampledNodes(base, batch_nodes=0)
    with pytest.raises(ValueError, match="non-empty bool mask of 50 nodes"):
        SampledNodes(base, seeds=torch.zeros(50, dtype=torch.bool))
    with pytest.raises(IndexError):
        SampledNodes(base, batch_nodes=30)[2]
    sub, _ = SampledNodes(base, batch_nodes=30)[0]
    sub.seed_mask = sub.seed_mask[:-1]
    with pytest.raises(ValueError, match="seed_mask must be a bool tensor"):
        sampling.seed_rows(sub)


def test_sbm_graph_is_seeded_and_homophilous() -> None:
    a, b = sbm_graph(2000, p_in=0.8, seed=1), sbm_graph(2000, p_in=0.8, seed=1)
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.x, b.x)
    assert a.edge_index.shape[1] == 2 * 16_000 and a.x.shape == (2000, 32)
    same = (a.y[a.edge_index[0]] == a.y[a.edge_index[1]]).float().mean()
    assert 0.78 < float(same) < 0.86  # p_in + (1 - p_in) / blocks = 0.82
    assert DATASETS.get("sbm", "graph") is sbm
    with pytest.raises(ValueError, match="sbm needs num_nodes >= 2"):
        sbm_graph(1)
