"""Graph encoders: GIN (GraphCL/InfoGraph) and GCN (GRACE) against hand-written references,
pooling, permutation invariance, node masks and bad input."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from anyssl.modalities.graph.encoders import GCN, GIN, masked_nodes
from anyssl.registry import ENCODERS

IN_DIM = 5


def random_graph(n: int, g: torch.Generator, p: float = 0.4, mask: bool = False) -> Data:
    """An undirected random graph (both edge directions stored) with ``n`` nodes."""
    a = torch.triu(torch.rand(n, n, generator=g) < p, diagonal=1)
    data = Data(x=torch.randn(n, IN_DIM, generator=g), edge_index=(a | a.T).nonzero().T)
    if mask:
        data.node_mask = torch.rand(n, generator=g) < 0.5
    return data


def random_batch(sizes: tuple[int, ...] = (4, 7, 3, 6), seed: int = 0,
                 mask: bool = False) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch.from_data_list([random_graph(n, g, mask=mask) for n in sizes])


def randomize_bn(enc: nn.Module, seed: int = 1) -> None:
    """Non-trivial BatchNorm statistics and affine parameters, so eval mode tests them."""
    g = torch.Generator().manual_seed(seed)
    for m in enc.modules():
        if isinstance(m, nn.BatchNorm1d):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))


# --- references, written out from the papers' code ----------------------------------------------
def ref_gin_graph(enc: GIN, data: Data) -> Tensor:
    """GraphCL's ``Encoder.forward`` on one graph (eval-mode BN): per layer
    ``bn(relu(mlp((1 + eps) h + sum of neighbours)))``, sum-pooled, layers concatenated."""
    h, (src, dst) = data.x, data.edge_index
    pooled = []
    for conv, bn in zip(enc.convs, enc.norms, strict=True):
        agg = torch.zeros_like(h).index_add_(0, dst, h[src])
        h = torch.relu(conv.nn((1 + conv.eps) * h + agg))
        h = (h - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
        pooled.append(h.sum(0))
    return torch.cat(pooled)


def ref_gcn_nodes(enc: GCN, data: Data) -> Tensor:
    """GRACE's ``Encoder.forward``: ``act(A_hat h W + b)`` per layer, with
    ``A_hat = D^-1/2 (A + I) D^-1/2`` (Kipf & Welling 2017)."""
    n = data.num_nodes
    a = torch.eye(n)
    a[data.edge_index[1], data.edge_index[0]] = 1.0
    d = a.sum(1).rsqrt()
    a_hat = d[:, None] * a * d[None, :]
    h = data.x
    for conv in enc.convs:
        h = torch.relu(a_hat @ (h @ conv.lin.weight.T) + conv.bias)
    return h


# --- GIN -------------------------------------------------------------------------------------
def test_gin_defaults_and_shapes() -> None:
    assert ENCODERS.get("gin", "graph") is GIN
    enc = GIN(IN_DIM)
    assert enc.out_dim == 96 and enc.level == "graph" and len(enc.convs) == 3
    assert [type(m) for m in enc.convs[0].nn] == [nn.Linear, nn.ReLU, nn.Linear]
    assert all(float(lin.bias.detach().abs().sum()) == 0 for lin in enc.modules()
               if isinstance(lin, nn.Linear))  # GraphCL's init_emb: zero biases
    batch = random_batch()
    assert enc(batch).shape == (4, 96)
    assert enc.nodes(batch).shape == (batch.num_nodes, 96)
    small = GIN(IN_DIM, hidden_dim=8, num_layers=2)
    assert small.out_dim == 16 and small(batch).shape == (4, 16)


def test_gin_readout_matches_reference_per_graph() -> None:
    torch.manual_seed(0)
    enc = GIN(IN_DIM, hidden_dim=8).eval()
    randomize_bn(enc)
    batch = random_batch()
    with torch.no_grad():
        got = enc(batch)
        want = torch.stack([ref_gin_graph(enc, d) for d in batch.to_data_list()])
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_gin_graph_embedding_is_permutation_invariant() -> None:
    torch.manual_seed(0)
    enc = GIN(IN_DIM, hidden_dim=8).eval()
    randomize_bn(enc)
    datas = random_batch().to_data_list()
    g = torch.Generator().manual_seed(3)
    permuted, perms = [], []
    for d in datas:
        perm = torch.randperm(d.num_nodes, generator=g)  # new node k is old node perm[k]
        inv = torch.empty_like(perm)
        inv[perm] = torch.arange(d.num_nodes)
        permuted.append(Data(x=d.x[perm], edge_index=inv[d.edge_index]))
        perms.append(perm)
    with torch.no_grad():
        a, b = Batch.from_data_list(datas), Batch.from_data_list(permuted)
        torch.testing.assert_close(enc(a), enc(b), rtol=1e-4, atol=1e-4)
        offsets = b.ptr[:-1]
        node_perm = torch.cat([p + o for p, o in zip(perms, offsets, strict=True)])
        torch.testing.assert_close(enc.nodes(a)[node_perm], enc.nodes(b), rtol=1e-4, atol=1e-4)


def test_gin_node_level_returns_the_masked_nodes() -> None:
    enc = GIN(IN_DIM, level="node", hidden_dim=8).eval()
    batch = random_batch(mask=True)
    with torch.no_grad():
        torch.testing.assert_close(enc(batch), enc.nodes(batch)[batch.node_mask])
    assert enc(batch).shape == (int(batch.node_mask.sum()), 24)


def test_gin_trains_with_finite_gradients() -> None:
    enc = GIN(IN_DIM, hidden_dim=8)
    enc(random_batch()).square().mean().backward()
    grads = [p.grad for p in enc.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)


# --- GCN -------------------------------------------------------------------------------------
def test_gcn_defaults_and_reference() -> None:
    assert ENCODERS.get("gcn", "graph") is GCN
    enc = GCN(IN_DIM, level="node")
    assert enc.out_dim == 128 and isinstance(enc.activation, nn.ReLU)
    assert [c.out_channels for c in enc.convs] == [256, 128]
    torch.manual_seed(0)
    enc = GCN(IN_DIM, level="node", out_dim=6, num_layers=3)
    assert [c.out_channels for c in enc.convs] == [12, 12, 6]
    for c in enc.convs:  # PyG starts the bias at 0; make it count
        nn.init.normal_(c.bias)
    data = random_batch((9,)).to_data_list()[0]
    with torch.no_grad():
        torch.testing.assert_close(enc.nodes(data), ref_gcn_nodes(enc, data),
                                   rtol=1e-4, atol=1e-5)


def test_gcn_node_mask_selects_rows() -> None:
    enc = GCN(IN_DIM, level="node", out_dim=4)
    batch = random_batch(mask=True)
    with torch.no_grad():
        h = enc.nodes(batch)
        torch.testing.assert_close(enc(batch), h[batch.node_mask])
        no_mask = batch.clone()  # same graphs, no node_mask: every node
        del no_mask.node_mask
        torch.testing.assert_close(enc(no_mask), h)
    batch.node_mask = batch.node_mask.long()
    with pytest.raises(ValueError, match="node_mask must be a bool"):
        enc(batch)


def test_gcn_graph_level_is_the_mean_per_graph() -> None:
    enc = GCN(IN_DIM, out_dim=4)
    batch = random_batch()
    with torch.no_grad():
        want = torch.stack([enc.nodes(d).mean(0) for d in batch.to_data_list()])
        torch.testing.assert_close(enc(batch), want, rtol=1e-5, atol=1e-6)
        single = batch.to_data_list()[1]  # a lone Data is one graph
        torch.testing.assert_close(enc(single), want[1:2], rtol=1e-5, atol=1e-6)


def test_gcn_activation_choice() -> None:
    enc = GCN(IN_DIM, out_dim=4, activation="prelu")
    assert sum(isinstance(m, nn.PReLU) for m in enc.modules()) == 1  # shared, as in GRACE
    assert isinstance(GCN(IN_DIM, activation=nn.Tanh()).activation, nn.Tanh)
    with pytest.raises(ValueError, match=r"unknown activation 'gelu'.*relu"):
        GCN(IN_DIM, activation="gelu")


# --- bad input -----------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [GIN, GCN])
def test_bad_input_raises(cls: type[nn.Module]) -> None:
    with pytest.raises(ValueError, match="unknown level 'edge'"):
        cls(IN_DIM, level="edge")
    with pytest.raises(ValueError, match="positive"):
        cls(0)
    enc = cls(IN_DIM + 1)
    with pytest.raises(ValueError, match=rf"in_dim={IN_DIM + 1}.*in_dim={IN_DIM}"):
        enc(random_batch())
    with pytest.raises(ValueError, match="Batch or Data"):
        enc(torch.randn(3, IN_DIM + 1))
    batch = random_batch()
    batch.x = torch.ones(batch.num_nodes, IN_DIM + 1, dtype=torch.long)
    with pytest.raises(ValueError, match="float node features"):
        enc(batch)


def test_masked_nodes_without_mask_is_identity() -> None:
    h = torch.randn(5, 3)
    assert masked_nodes(Data(x=h), h) is h
