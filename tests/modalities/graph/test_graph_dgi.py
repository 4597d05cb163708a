"""DGI: its step against a transcription of the reference ``DGI.forward`` + ``execute.py`` loss
(values and gradients) and against PyG's ``DeepGraphInfomax``, the corruption, the paper's
encoder, training, defaults and bad input."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from test_graph_encoders import IN_DIM, random_graph
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.nn import DeepGraphInfomax

from anyssl import distributed
from anyssl.modalities.graph.dgi import DGI, shuffle_features
from anyssl.modalities.graph.encoders import GCN, GIN
from anyssl.modalities.graph.infograph import RawViews
from anyssl.registry import METHODS


def node_batch(n: int = 20, seed: int = 0) -> tuple[Batch, Tensor]:
    g = torch.Generator().manual_seed(seed)
    data = random_graph(n, g, p=0.2, mask=True)
    return Batch.from_data_list([data]), torch.zeros(int(data.node_mask.sum())).long()


# --- references, written out from the paper's code ----------------------------------------------
def ref_dgi_loss(gcn: nn.Module, f_k: nn.Bilinear, data: Batch, idx: Tensor) -> Tensor:
    """DGI ``execute.py`` (one epoch's loss) with ``models/dgi.py::DGI.forward``,
    ``layers/readout.py::AvgReadout`` (no mask) and ``layers/discriminator.py``; features are
    ``1 x N x F`` there, rows shuffled by ``idx``; ``gcn`` maps a graph to ``N x D``."""
    shuf = data.clone()
    shuf.x = data.x[idx]  # shuf_fts = features[:, idx, :]
    h_1 = gcn(data).unsqueeze(0)  # 1 x N x D
    c = torch.sigmoid(torch.mean(h_1, 1))  # self.read(h_1, None), self.sigm
    h_2 = gcn(shuf).unsqueeze(0)
    c_x = torch.unsqueeze(c, 1).expand_as(h_1)  # Discriminator.forward
    sc_1 = torch.squeeze(f_k(h_1, c_x), 2)
    sc_2 = torch.squeeze(f_k(h_2, c_x), 2)
    logits = torch.cat((sc_1, sc_2), 1)  # 1 x 2N
    n = data.num_nodes
    lbl = torch.cat((torch.ones(1, n), torch.zeros(1, n)), 1).to(logits.dtype)
    return nn.BCEWithLogitsLoss()(logits, lbl)


def seeded_method(seed: int = 0, out_dim: int = 16) -> DGI:
    torch.manual_seed(seed)
    method = DGI(GCN(IN_DIM, level="node", out_dim=out_dim, num_layers=1, activation="prelu"))
    method.views.manual_seed(7)
    return method


def test_dgi_step_matches_reference_values_and_gradients() -> None:
    method = seeded_method().double()
    ref = copy.deepcopy(method)
    data, labels = node_batch()
    data.x = data.x.double()
    loss, logs = method.training_step((data, labels))
    idx = torch.randperm(data.num_nodes, generator=torch.Generator().manual_seed(7))
    want = ref_dgi_loss(ref.encoder.nodes, ref.discriminator, data, idx)
    torch.testing.assert_close(loss, want)
    assert not logs["loss"].requires_grad and torch.equal(logs["loss"], loss.detach())
    loss.backward()
    want.backward()
    for (name, p), q in zip(method.named_parameters(), ref.parameters(), strict=True):
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_dgi_is_pyg_deep_graph_infomax_up_to_its_scale() -> None:
    """PyG's ``DeepGraphInfomax.loss`` is the sum of the two halves' means (ours: their mean)
    and has no discriminator bias: with a zero bias, the same weight and the same corruption
    its loss is twice ours (up to its 1e-15 inside the logs)."""
    method = seeded_method(out_dim=8)
    data, labels = node_batch()
    idx = torch.randperm(data.num_nodes, generator=torch.Generator().manual_seed(7))
    pyg = DeepGraphInfomax(8, encoder=method.encoder.nodes,  # type: ignore[arg-type]
                           summary=lambda z, *a, **k: torch.sigmoid(z.mean(dim=0)),
                           corruption=lambda d: shuffle_features_with(d, idx))
    with torch.no_grad():
        pyg.weight.copy_(method.discriminator.weight[0])
    pos_z, neg_z, summary = pyg(data)
    loss, _ = method.training_step((data, labels))
    torch.testing.assert_close(pyg.loss(pos_z, neg_z, summary), 2 * loss, atol=1e-5, rtol=1e-5)


def shuffle_features_with(data: Batch, idx: Tensor) -> Batch:
    out = data.clone()
    out.x = data.x[idx]
    return out


def test_shuffle_features_permutes_rows_and_leaves_the_batch_alone() -> None:
    data, _ = node_batch(12)
    x, edges = data.x.clone(), data.edge_index.clone()
    out = shuffle_features(data, torch.Generator().manual_seed(0))
    assert torch.equal(data.x, x) and out.x is not data.x  # the input is not mutated
    assert torch.equal(out.edge_index, edges)  # the same graph
    assert not torch.equal(out.x, x)
    assert torch.equal(out.x.sort(dim=0).values, x.sort(dim=0).values)  # the same rows


def test_dgi_uses_raw_views_defaults_and_the_seeded_shuffle() -> None:
    assert METHODS.get("dgi", "graph") is DGI
    d: dict[str, Any] = getattr(DGI, "train_defaults")  # noqa: B009 (registered: Callable)
    assert d["optimizer"] == "adam" and d["lr"] == 1e-3 and d["weight_decay"] == 0
    assert d["batch_size"] == 1 and d["lr_scaling"] == "none"
    assert (DGI.__doc__ or "").splitlines()[0].startswith("DGI: node-level mutual information")
    a, b = seeded_method(), seeded_method()
    assert isinstance(a.views, RawViews) and a.views.n_views == 1
    batch = node_batch()
    torch.testing.assert_close(a.training_step(batch)[0], b.training_step(batch)[0])
    b.views.manual_seed(8)  # another step's seed: another corruption, another loss
    assert not torch.equal(a.training_step(batch)[0], b.training_step(batch)[0])


def test_dgi_loss_decreases_on_the_paper_encoder() -> None:
    """The paper's encoder (1-layer GCN, PReLU) at a small width; 150 Adam steps at DGI's lr,
    a fresh corruption each step as in ``execute.py``."""
    method = seeded_method(out_dim=32)
    opt = torch.optim.Adam(method.parameters(), lr=1e-3)
    batch = node_batch(40)
    losses = []
    for step in range(150):
        method.views.manual_seed(step)
        loss, _ = method.training_step(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10 - 0.05, losses  # 0.69 -> 0.62


def test_dgi_gives_each_graph_of_a_batch_its_own_summary() -> None:
    method = seeded_method(out_dim=8)
    g = torch.Generator().manual_seed(3)
    batch = Batch.from_data_list([random_graph(6, g), random_graph(9, g)])
    h = method.encoder.nodes(batch)
    s = torch.sigmoid(torch.stack([h[:6].mean(0), h[6:].mean(0)]))[batch.batch]  # 15 x 8
    loss, _ = method.training_step((batch, torch.zeros(2).long()))
    idx = torch.randperm(15, generator=torch.Generator().manual_seed(7))
    neg = method.encoder.nodes(shuffle_features_with(batch, idx))
    f_k = method.discriminator
    logits = torch.cat([f_k(h, s), f_k(neg, s)]).squeeze(1)
    want = nn.functional.binary_cross_entropy_with_logits(
        logits, torch.cat([torch.ones(15), torch.zeros(15)]))
    torch.testing.assert_close(loss, want)


def test_dgi_on_a_sampled_subgraph_scores_its_seeds_only() -> None:
    """A sampled item (``seed_mask``): the summary is the seeds' mean and the loss their
    logits; the other nodes only pass messages (and are shuffled into the corruption)."""
    method = seeded_method(out_dim=8)
    data, labels = node_batch(14)
    seeds = torch.arange(14) < 5
    data.seed_mask = seeds
    loss, _ = method.training_step((data, labels))
    idx = torch.randperm(14, generator=torch.Generator().manual_seed(7))
    h = method.encoder.nodes(data)[seeds]
    neg = method.encoder.nodes(shuffle_features_with(data, idx))[seeds]
    s = torch.sigmoid(h.mean(0)).expand_as(h)
    f_k = method.discriminator
    logits = torch.cat([f_k(h, s), f_k(neg, s)]).squeeze(1)
    want = nn.functional.binary_cross_entropy_with_logits(
        logits, torch.cat([torch.ones(5), torch.zeros(5)]))
    torch.testing.assert_close(loss, want)


def test_dgi_rejects_bad_setups(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"node-level method but the data is graph-level.*infogr"):
        DGI(GCN(IN_DIM, level="graph"))

    class NoNodes(nn.Module):
        out_dim = 4
        level = "node"

    with pytest.raises(ValueError, match="per-node embeddings"):
        DGI(NoNodes())
    method = DGI(GIN(IN_DIM, level="node", hidden_dim=4))  # any node-level encoder builds
    with pytest.raises(ValueError, match="Batch or Data with node features"):
        method.training_step((torch.zeros(3, IN_DIM), torch.zeros(3)))
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    with pytest.raises(ValueError, match="one process"):
        method.training_step(node_batch())


def test_dgi_builds_the_papers_encoder_under_the_users_arguments(tmp_path: Path) -> None:
    """``encoder_defaults``: dgi's gcn is one 512-wide PReLU layer unless ``-e`` says otherwise,
    and a run records the arguments so its checkpoint and baseline build the same encoder."""
    import yaml

    from anyssl.api import train
    from anyssl.build import build_parts

    parts = build_parts("graph", "dgi", need_test=False)
    assert parts.encoder_args == {"num_layers": 1, "out_dim": 512, "activation": "prelu"}
    assert parts.method.encoder.out_dim == 512
    assert any("dgi: encoder gcn with num_layers=1, out_dim=512" in n for n in parts.notes)
    mine = build_parts("graph", "dgi", encoder_args={"out_dim": 32}, need_test=False)
    assert mine.encoder_args["out_dim"] == 32 and mine.method.encoder.out_dim == 32
    assert build_parts("graph", "grace", need_test=False).encoder_args == {}
    train(modality="graph", method="dgi", max_steps=1, eval=False, out=str(tmp_path / "r"))
    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert saved["encoder_args"] == {"num_layers": 1, "out_dim": 512, "activation": "prelu"}
