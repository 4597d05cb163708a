"""GraphCL and GRACE: their losses against the reference code's math, the methods' steps, level
checks, and the core methods (SimCLR) running on the graph encoders."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from test_graph_encoders import IN_DIM, random_graph
from torch import Tensor, nn
from torch_geometric.data import Batch

from anyssl.methods.simclr import SimCLR
from anyssl.modalities.graph.encoders import GCN, GIN
from anyssl.modalities.graph.grace import GRACE, grace_loss
from anyssl.modalities.graph.graphcl import GraphCL, graphcl_loss
from anyssl.registry import METHODS
from anyssl.views import Identity, ViewGenerator


def graph_batch(n_graphs: int = 6, seed: int = 0) -> tuple[Batch, Tensor]:
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(3, 9, (n_graphs,), generator=g).tolist()
    return Batch.from_data_list([random_graph(n, g) for n in sizes]), torch.zeros(n_graphs).long()


def node_batch(n: int = 20, seed: int = 0) -> tuple[Batch, Tensor]:
    g = torch.Generator().manual_seed(seed)
    data = random_graph(n, g, p=0.2, mask=True)
    return Batch.from_data_list([data]), torch.zeros(int(data.node_mask.sum())).long()


class FeatureNoise:
    """A test view: new Batch with Gaussian noise on the node features, drawn from ``generator``."""

    def __call__(self, x: Batch, generator: torch.Generator | None = None) -> Batch:
        out = x.clone()
        out.x = x.x + 0.3 * torch.randn(x.x.shape, generator=generator, device=x.x.device)
        return out


def noisy_views() -> ViewGenerator:
    views = ViewGenerator(FeatureNoise(), n_views=2)
    views.manual_seed(0)
    return views


# --- references, written out from the papers' code ----------------------------------------------
def ref_loss_cal(x: Tensor, x_aug: Tensor, T: float = 0.2) -> Tensor:
    """GraphCL ``unsupervised_TU/gsimclr.py``, ``simclr.loss_cal``."""
    batch_size, _ = x.size()
    x_abs, x_aug_abs = x.norm(dim=1), x_aug.norm(dim=1)
    sim_matrix = torch.einsum("ik,jk->ij", x, x_aug) / torch.einsum("i,j->ij", x_abs, x_aug_abs)
    sim_matrix = torch.exp(sim_matrix / T)
    pos_sim = sim_matrix[range(batch_size), range(batch_size)]
    loss = pos_sim / (sim_matrix.sum(dim=1) - pos_sim)
    return -torch.log(loss).mean()


def ref_grace(z1: Tensor, z2: Tensor, tau: float) -> Tensor:
    """GRACE ``model.py``: ``Model.loss`` with ``semi_loss`` (``refl_sim`` / ``between_sim``)."""

    def sim(a: Tensor, b: Tensor) -> Tensor:
        return torch.mm(F.normalize(a), F.normalize(b).t())

    def semi_loss(a: Tensor, b: Tensor) -> Tensor:
        refl_sim = torch.exp(sim(a, a) / tau)
        between_sim = torch.exp(sim(a, b) / tau)
        return -torch.log(between_sim.diag()
                          / (refl_sim.sum(1) + between_sim.sum(1) - refl_sim.diag()))

    return ((semi_loss(z1, z2) + semi_loss(z2, z1)) * 0.5).mean()


# --- GraphCL ---------------------------------------------------------------------------------
def test_graphcl_loss_matches_reference() -> None:
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(16, 8, generator=g), torch.randn(16, 8, generator=g)
    torch.testing.assert_close(graphcl_loss(z1, z2), ref_loss_cal(z1, z2))
    torch.testing.assert_close(graphcl_loss(z1, z2, 0.5), ref_loss_cal(z1, z2, 0.5))
    both = (ref_loss_cal(z1, z2) + ref_loss_cal(z2, z1)) / 2
    torch.testing.assert_close(graphcl_loss(z1, z2, symmetric=True), both)
    assert not torch.allclose(graphcl_loss(z1, z2), graphcl_loss(z2, z1))  # one direction


def test_graphcl_loss_is_stable_at_low_temperature() -> None:
    g = torch.Generator().manual_seed(1)
    z1 = torch.randn(8, 4, generator=g)
    z2 = -z1 + 0.5 * torch.randn(8, 4, generator=g)  # weak positives: no cancellation in ref
    want = ref_loss_cal(z1.double(), z2.double(), 0.01)  # exp(100): fine in float64 only
    assert not torch.isfinite(ref_loss_cal(z1, z2, 0.01))
    torch.testing.assert_close(graphcl_loss(z1, z2, 0.01).double(), want, rtol=1e-4, atol=1e-4)


def test_graphcl_loss_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 2 graphs"):
        graphcl_loss(torch.randn(1, 4), torch.randn(1, 4))
    with pytest.raises(ValueError, match="N x D"):
        graphcl_loss(torch.randn(3, 4), torch.randn(4, 4))
    with pytest.raises(ValueError, match="temperature"):
        graphcl_loss(torch.randn(3, 4), torch.randn(3, 4), 0.0)


def test_graphcl_step_matches_manual_and_defaults() -> None:
    assert METHODS.get("graphcl", "graph") is GraphCL
    d: dict[str, Any] = getattr(GraphCL, "train_defaults")  # noqa: B009 (registered: Callable)
    assert d["optimizer"] == "adamw" and d["weight_decay"] == 0 and d["batch_size"] == 128
    assert d["lr"] == 0.01 and d["lr_scaling"] == "none"  # the code's Adam lr at batch 128
    torch.manual_seed(0)
    method = GraphCL(GIN(IN_DIM, hidden_dim=8), noisy_views())
    assert [type(m) for m in method.projector] == [nn.Linear, nn.ReLU, nn.Linear]
    assert method.projector[0].in_features == method.projector[2].out_features == 24
    ref = copy.deepcopy(method)
    batch = graph_batch()
    loss, logs = method.training_step(batch)
    v1, v2 = ref.views(batch[0])
    want = ref_loss_cal(ref.projector(ref.encoder(v1)), ref.projector(ref.encoder(v2)))
    torch.testing.assert_close(loss, want)
    assert not logs["loss"].requires_grad and torch.equal(logs["loss"], loss.detach())
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in method.parameters())


def test_graphcl_loss_decreases_with_adam() -> None:
    torch.manual_seed(0)
    method = GraphCL(GIN(IN_DIM, hidden_dim=8), noisy_views())
    opt = torch.optim.Adam(method.parameters(), lr=0.01)
    batch = graph_batch(12)
    losses = []
    for _ in range(15):
        method.views.manual_seed(0)  # the same views every step: a fixed objective
        loss, _ = method.training_step(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0]


def test_graphcl_rejects_node_level_data_and_wrong_views() -> None:
    with pytest.raises(ValueError, match=r"graph-level method but the data is node-level.*grace"):
        GraphCL(GIN(IN_DIM, level="node"), noisy_views())
    with pytest.raises(ValueError, match="exactly 2 views"):
        GraphCL(GIN(IN_DIM), ViewGenerator(FeatureNoise(), n_views=3))


# --- GRACE -----------------------------------------------------------------------------------
def test_grace_loss_matches_reference() -> None:
    g = torch.Generator().manual_seed(0)
    h1, h2 = torch.randn(30, 8, generator=g), torch.randn(30, 8, generator=g)
    torch.testing.assert_close(grace_loss(h1, h2, 0.4), ref_grace(h1, h2, 0.4))
    torch.testing.assert_close(grace_loss(h1, h2, 0.9), ref_grace(h1, h2, 0.9))


def test_grace_chunked_loss_equals_full_loss_and_gradients() -> None:
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(23, 6, generator=g), torch.randn(23, 6, generator=g)
    grads = []
    for chunk in (None, 5, 23, 100):
        h1, h2 = a.clone().requires_grad_(), b.clone().requires_grad_()
        loss = grace_loss(h1, h2, 0.4, chunk_size=chunk)
        loss.backward()
        torch.testing.assert_close(loss, ref_grace(a, b, 0.4))
        grads.append((h1.grad, h2.grad))
    for got in grads[1:]:
        torch.testing.assert_close(got, grads[0])


def test_grace_loss_bad_input() -> None:
    with pytest.raises(ValueError, match="same nodes in two views"):
        grace_loss(torch.randn(3, 4), torch.randn(4, 4))
    with pytest.raises(ValueError, match="at least 2 nodes"):
        grace_loss(torch.randn(1, 4), torch.randn(1, 4))
    with pytest.raises(ValueError, match="chunk_size"):
        grace_loss(torch.randn(3, 4), torch.randn(3, 4), chunk_size=0)


def test_grace_step_uses_every_node_and_matches_manual() -> None:
    assert METHODS.get("grace", "graph") is GRACE
    d: dict[str, Any] = getattr(GRACE, "train_defaults")  # noqa: B009 (registered: Callable)
    assert d["lr"] == 5e-4 and d["lr_scaling"] == "none" and d["weight_decay"] == 1e-5
    torch.manual_seed(0)
    method = GRACE(GCN(IN_DIM, level="node", out_dim=16), noisy_views(), proj_dim=8)
    fc1, act, fc2 = method.projector
    assert isinstance(act, nn.ELU) and (fc1.in_features, fc1.out_features) == (16, 8)
    assert (fc2.in_features, fc2.out_features) == (8, 16)
    ref = copy.deepcopy(method)
    batch = node_batch()
    assert not bool(batch[0].node_mask.all())  # the mask is ignored in pre-training
    loss, logs = method.training_step(batch)
    v1, v2 = ref.views(batch[0])
    h1, h2 = ref.projector(ref.encoder.nodes(v1)), ref.projector(ref.encoder.nodes(v2))
    assert h1.shape[0] == batch[0].num_nodes
    torch.testing.assert_close(loss, ref_grace(h1, h2, 0.4))
    assert torch.equal(logs["loss"], loss.detach())
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in method.parameters())


def test_grace_rejects_graph_level_data_and_dropped_nodes() -> None:
    with pytest.raises(ValueError, match=r"node-level method but the data is graph-level.*graphcl"):
        GRACE(GCN(IN_DIM, level="graph"), noisy_views())
    with pytest.raises(ValueError, match=r"nodes\(\)"):
        GRACE(nn.Linear(3, 3), noisy_views())

    class DropLastNode:
        def __call__(self, x: Batch, generator: torch.Generator | None = None) -> Batch:
            return Batch.from_data_list([x.to_data_list()[0].subgraph(torch.arange(5))])

    views = ViewGenerator([FeatureNoise(), DropLastNode()])
    method = GRACE(GCN(IN_DIM, level="node", out_dim=4), views, proj_dim=4)
    with pytest.raises(ValueError, match="keep every node"):
        method.training_step(node_batch())


# --- the core methods on graph encoders -----------------------------------------------------
def test_simclr_runs_on_gin_graph_embeddings() -> None:
    torch.manual_seed(0)
    method = SimCLR(GIN(IN_DIM, hidden_dim=8), ViewGenerator(Identity()), hidden_dim=16,
                    out_dim=8)
    loss, _ = method.training_step(graph_batch())
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in method.encoder.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)


def test_simclr_runs_on_gcn_masked_nodes() -> None:
    torch.manual_seed(0)
    method = SimCLR(GCN(IN_DIM, level="node", out_dim=8), noisy_views(), hidden_dim=16,
                    out_dim=8)
    batch = node_batch()
    z = method.project(batch[0])
    assert z.shape == (int(batch[0].node_mask.sum()), 8)
    loss, _ = method.training_step(batch)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in method.encoder.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
