"""InfoGraph: its step against a transcription of the reference ``InfoGraph.forward`` (values
and gradients), its FF head, the raw (unaugmented) views, training, defaults and bad input."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from test_graph_encoders import IN_DIM, random_graph
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.nn import global_add_pool

from anyssl.modalities.graph.encoders import GCN, GIN
from anyssl.modalities.graph.infograph import FF, InfoGraph, RawViews
from anyssl.registry import METHODS


def graph_batch(n_graphs: int = 6, seed: int = 0) -> tuple[Batch, Tensor]:
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(3, 9, (n_graphs,), generator=g).tolist()
    return Batch.from_data_list([random_graph(n, g) for n in sizes]), torch.zeros(n_graphs).long()


# --- references, written out from the paper's code ----------------------------------------------
class RefFF(nn.Module):
    """InfoGraph ``unsupervised/model.py::FF``."""

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Linear(input_dim, input_dim), nn.ReLU(),
                                   nn.Linear(input_dim, input_dim), nn.ReLU(),
                                   nn.Linear(input_dim, input_dim), nn.ReLU())
        self.linear_shortcut = nn.Linear(input_dim, input_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x) + self.linear_shortcut(x)


def ref_local_global_loss(l_enc: Tensor, g_enc: Tensor, batch: Tensor) -> Tensor:
    """``unsupervised/losses.py::local_global_loss_``, ``measure="JSD"`` (masks on the CPU)."""
    log_2 = math.log(2.0)
    num_graphs, num_nodes = g_enc.shape[0], l_enc.shape[0]
    pos_mask = torch.zeros((num_nodes, num_graphs))
    neg_mask = torch.ones((num_nodes, num_graphs))
    for nodeidx, graphidx in enumerate(batch):
        pos_mask[nodeidx][graphidx] = 1.0
        neg_mask[nodeidx][graphidx] = 0.0
    res = torch.mm(l_enc, g_enc.t())
    e_pos = (log_2 - F.softplus(-(res * pos_mask))).sum() / num_nodes
    q = res * neg_mask
    e_neg = (F.softplus(-q) + q - log_2).sum() / (num_nodes * (num_graphs - 1))
    return e_neg - e_pos


def ref_infograph_forward(encoder: GIN, local_d: nn.Module, global_d: nn.Module,
                          data: Batch) -> Tensor:
    """``unsupervised/main.py::InfoGraph.forward`` (prior off) with ``gin.py::Encoder.forward``:
    ``y`` = concatenated per-layer sum pools, ``M`` = concatenated per-layer node outputs."""
    xs = encoder.layers(data)  # the convs + ReLU + BatchNorm of gin.py
    y = torch.cat([global_add_pool(x, data.batch) for x in xs], 1)
    m = torch.cat(xs, 1)
    return ref_local_global_loss(local_d(m), global_d(y), data.batch)


def test_ff_head_is_the_reference_ff() -> None:
    torch.manual_seed(0)
    head, ref = FF(12), RefFF(12)
    ref.load_state_dict(head.state_dict())  # same parameter names as the code
    x = torch.randn(5, 12)
    torch.testing.assert_close(head(x), ref(x))
    assert all(not m.bias.detach().any() for m in head.modules() if isinstance(m, nn.Linear))


def test_infograph_step_matches_reference_values_and_gradients() -> None:
    torch.manual_seed(0)
    method = InfoGraph(GIN(IN_DIM, hidden_dim=8, num_layers=3)).double()  # float64: gradients
    ref = copy.deepcopy(method)  # of ~50 agree to 1e-7 relative, not float32's 1e-5
    data, labels = graph_batch()
    data.x = data.x.double()
    loss, logs = method.training_step((data, labels))
    want = ref_infograph_forward(ref.encoder, ref.local_head, ref.global_head, data)
    torch.testing.assert_close(loss, want)
    assert not logs["loss"].requires_grad and torch.equal(logs["loss"], loss.detach())
    loss.backward()
    want.backward()
    for (name, p), q in zip(method.named_parameters(), ref.parameters(), strict=True):
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        torch.testing.assert_close(p.grad, q.grad, msg=name)
    # the sum readout is gin's graph embedding, the one evaluation uses
    method.eval()
    index = data.batch
    torch.testing.assert_close(global_add_pool(method.encoder.nodes(data), index),
                               method.encoder(data))


def test_infograph_uses_raw_views_and_defaults() -> None:
    assert METHODS.get("infograph", "graph") is InfoGraph
    d: dict[str, Any] = getattr(InfoGraph, "train_defaults")  # noqa: B009 (registered: Callable)
    assert d["optimizer"] == "adam" and d["lr"] == 1e-3 and d["weight_decay"] == 0
    assert d["batch_size"] == 128 and d["lr_scaling"] == "none"
    method = InfoGraph(GIN(IN_DIM, hidden_dim=4))
    assert isinstance(method.views, RawViews) and method.views.n_views == 1
    data, _ = graph_batch(3)
    assert method.views(data)[0] is data  # the batch itself, no augmentation
    doc = (InfoGraph.__doc__ or "").splitlines()[0]
    assert "InfoGraph" in doc and "mutual information" in doc


def test_infograph_loss_decreases_with_adam() -> None:
    torch.manual_seed(0)
    method = InfoGraph(GIN(IN_DIM, hidden_dim=8))
    opt = torch.optim.Adam(method.parameters(), lr=1e-3)
    batch = graph_batch(8)
    losses = []
    for _ in range(20):
        loss, _ = method.training_step(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] - 0.1, losses


def test_infograph_runs_on_gcn_with_mean_readout() -> None:
    torch.manual_seed(0)
    method = InfoGraph(GCN(IN_DIM, out_dim=8), readout="mean")
    loss, _ = method.training_step(graph_batch(4))
    loss.backward()
    assert torch.isfinite(loss) and method.encoder.convs[0].lin.weight.grad is not None


def test_infograph_rejects_bad_setups() -> None:
    with pytest.raises(ValueError, match=r"graph-level method but the data is node-level.*dgi"):
        InfoGraph(GIN(IN_DIM, level="node"))
    with pytest.raises(ValueError, match="readout 'max'; choose one of: sum, mean"):
        InfoGraph(GIN(IN_DIM), readout="max")

    class NoNodes(nn.Module):
        out_dim = 4

    with pytest.raises(ValueError, match="per-node embeddings"):
        InfoGraph(NoNodes())
    method = InfoGraph(GIN(IN_DIM, hidden_dim=4))
    with pytest.raises(ValueError, match="at least 2 graphs"):
        method.training_step(graph_batch(1))


@pytest.mark.parametrize("method", ["infograph", "dgi"])
def test_unaugmented_methods_get_raw_views_and_refuse_augmentations(method: str) -> None:
    """The graph recipe gives infograph and dgi the raw graph; --aug, per-view --views and
    views built elsewhere are refused rather than silently ignored."""
    from anyssl.build import build_views
    from anyssl.modality import get_modality

    mod = get_modality("graph")
    data = mod.dataset(mod.default_data(method), "train")
    assert isinstance(build_views(mod, method, data), RawViews)
    with pytest.raises(ValueError, match=f"{method}: trains on the unaugmented graphs"):
        build_views(mod, method, data, aug="edge_drop(ratio=0.2)")
    with pytest.raises(ValueError, match=f"{method}: trains on the unaugmented graphs"):
        build_views(mod, method, data, views="edge_drop(ratio=0.2); edge_drop(ratio=0.2)")
    encoder = (GIN(IN_DIM, hidden_dim=16, num_layers=2) if method == "infograph"
               else GCN(IN_DIM, out_dim=16, level="node"))
    pair = build_views(mod, "graphcl", mod.dataset(None, "train"))
    with pytest.raises(ValueError, match="takes no views"):
        METHODS.get(method, "graph")(encoder, pair)
