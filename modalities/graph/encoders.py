"""Graph encoders: GraphCL's / InfoGraph's GIN (``gin``) and GRACE's GCN (``gcn``).

Every encoder is built as ``factory(in_dim=F, level="graph" | "node", **kwargs)``, fixes
``out_dim`` at construction and has two calls on a PyG ``Batch`` (or a single ``Data``):

* ``nodes(batch)``: ``num_nodes x out_dim``, every node's embedding (node-level methods use it).
* ``forward(batch)``: level ``"graph"``: ``num_graphs x out_dim``, one row per graph; level
  ``"node"``: one row per node where ``batch.node_mask`` is True (every node without a mask).
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.nn import GCNConv, GINConv, global_add_pool, global_mean_pool

from anyssl.registry import ENCODERS

__all__ = ["GCN", "GIN", "LEVELS", "check_graph_batch", "graph_index", "masked_nodes",
           "require_level"]

LEVELS = ("graph", "node")
_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "prelu": nn.PReLU, "rrelu": nn.RReLU, "elu": nn.ELU,
}


def _check_level(level: str) -> str:
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; choose one of: {', '.join(LEVELS)}")
    return level


def check_graph_batch(batch: Any, in_dim: int, name: str) -> tuple[Tensor, Tensor]:
    """The node features and edges of a PyG ``Batch``/``Data``, checked against ``in_dim``.

    Shape: -> x ``num_nodes x in_dim`` float, edge_index ``2 x E`` long.
    """
    x, edge_index = getattr(batch, "x", None), getattr(batch, "edge_index", None)
    if not isinstance(x, Tensor) or not isinstance(edge_index, Tensor):
        raise ValueError(f"{name} expects a torch_geometric Batch or Data with x and edge_index, "
                         f"got {type(batch).__name__}")
    if x.dim() != 2 or x.shape[1] != in_dim:
        raise ValueError(f"{name} was built for in_dim={in_dim} node features, got x of shape "
                         f"{tuple(x.shape)}; build it with in_dim={x.shape[-1]}")
    if not x.is_floating_point():
        raise ValueError(f"{name} needs float node features, got x of dtype {x.dtype}")
    return x, edge_index


def graph_index(batch: Any) -> tuple[Tensor, int]:
    """Each node's graph (``num_nodes`` long) and the number of graphs; a ``Data`` is one graph."""
    index = getattr(batch, "batch", None)
    n = getattr(batch, "num_graphs", None)
    if index is None:
        return torch.zeros(batch.num_nodes, dtype=torch.long, device=batch.x.device), 1
    return index, int(n) if n is not None else int(index.max()) + 1


def require_level(encoder: nn.Module, want: str, method: str, hint: str) -> None:
    """Raise ``ValueError`` when ``encoder.level`` (the data's level) is not ``want``; an
    encoder without a ``level`` attribute passes."""
    level = getattr(encoder, "level", None)
    if level is not None and level != want:
        raise ValueError(f"{method} is a {want}-level method but the data is {level}-level "
                         f"(encoder level={level!r}); {hint}")


def masked_nodes(batch: Any, h: Tensor) -> Tensor:
    """The rows of ``h`` where ``batch.node_mask`` is True (all rows when there is no mask).

    Shape: h ``num_nodes x D`` -> ``M x D``.
    """
    mask = getattr(batch, "node_mask", None)
    if mask is None:
        return h
    if mask.dtype != torch.bool or tuple(mask.shape) != (h.shape[0],):
        raise ValueError(f"node_mask must be a bool tensor with one entry per node "
                         f"({h.shape[0]}), got {mask.dtype} {tuple(mask.shape)}")
    return h[mask]


@ENCODERS.register("gin", scope="graph")
class GIN(nn.Module):
    """GIN of GraphCL (You et al. 2020) and InfoGraph (Sun et al. 2020), their ``Encoder``.

    ``num_layers`` x [``GINConv(MLP)`` (MLP = Linear, ReLU, Linear), ReLU, BatchNorm1d]; the
    graph embedding concatenates every layer's sum pooling (``global_add_pool``), so
    ``out_dim = hidden_dim * num_layers`` (32 x 3 = 96, the papers' TU setting). Linear layers
    start Xavier-uniform with zero bias (GraphCL's ``init_emb``, which covers the encoder).

    ``nodes`` is the concatenation of every layer's node output (InfoGraph's local features);
    at level ``"node"`` ``forward`` returns those rows where ``node_mask`` holds.

    Shape: a batch of ``G`` graphs, ``V`` nodes -> ``G x out_dim`` (graph) or ``M x out_dim``
    (node, ``M`` masked nodes); ``nodes``: ``V x out_dim``.
    """

    def __init__(self, in_dim: int, level: str = "graph", hidden_dim: int = 32,
                 num_layers: int = 3) -> None:
        super().__init__()
        if min(in_dim, hidden_dim, num_layers) < 1:
            raise ValueError(f"gin needs positive in_dim, hidden_dim and num_layers, got "
                             f"{in_dim}, {hidden_dim}, {num_layers}")
        self.in_dim, self.level = in_dim, _check_level(level)
        self.out_dim = hidden_dim * num_layers
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i in range(num_layers):
            mlp = nn.Sequential(nn.Linear(in_dim if i == 0 else hidden_dim, hidden_dim),
                                nn.ReLU(), nn.Linear(hidden_dim, hidden_dim))
            self.convs.append(GINConv(mlp))
            self.norms.append(nn.BatchNorm1d(hidden_dim))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def layers(self, batch: Any) -> list[Tensor]:
        """Every layer's node output. Shape: ``num_layers`` x (``V x hidden_dim``)."""
        h, edge_index = check_graph_batch(batch, self.in_dim, "gin")
        out = []
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = norm(torch.relu(conv(h, edge_index)))  # V x hidden
            out.append(h)
        return out

    def nodes(self, batch: Any) -> Tensor:
        return torch.cat(self.layers(batch), dim=1)  # V x out_dim

    def forward(self, batch: Any) -> Tensor:
        if self.level == "node":
            return masked_nodes(batch, self.nodes(batch))
        layers = self.layers(batch)  # checks the batch first
        index, n = graph_index(batch)
        pooled = [global_add_pool(h, index, size=n) for h in layers]  # G x hidden
        return torch.cat(pooled, dim=1)  # G x out_dim


def _activation(spec: str | nn.Module) -> nn.Module:
    if isinstance(spec, nn.Module):
        return spec
    if spec not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {spec!r}; choose one of: "
                         f"{', '.join(_ACTIVATIONS)} (or pass an nn.Module)")
    return _ACTIVATIONS[spec]()


@ENCODERS.register("gcn", scope="graph")
class GCN(nn.Module):
    """GCN of GRACE (Zhu et al. 2020), their ``Encoder``: ``num_layers`` ``GCNConv`` layers,
    ``in -> 2*out_dim -> ... -> 2*out_dim -> out_dim``, each followed by the activation (the
    last one too). Defaults are GRACE's Cora config: 2 layers, ``out_dim`` 128, ReLU (CiteSeer
    uses ``activation="prelu"``, one PReLU shared by the layers as in their code).

    At level ``"node"`` ``forward`` returns the nodes where ``node_mask`` holds; at level
    ``"graph"`` the mean of each graph's node embeddings (``global_mean_pool``; not in GRACE,
    which is node-level only).

    Shape: ``nodes``: ``V x out_dim``; ``forward``: ``M x out_dim`` (node) or ``G x out_dim``.
    """

    def __init__(self, in_dim: int, level: str = "graph", out_dim: int = 128,
                 num_layers: int = 2, activation: str | nn.Module = "relu") -> None:
        super().__init__()
        if min(in_dim, out_dim, num_layers) < 1:
            raise ValueError(f"gcn needs positive in_dim, out_dim and num_layers, got "
                             f"{in_dim}, {out_dim}, {num_layers}")
        self.in_dim, self.level, self.out_dim = in_dim, _check_level(level), out_dim
        dims = [in_dim] + [2 * out_dim] * (num_layers - 1) + [out_dim]
        self.convs = nn.ModuleList(GCNConv(a, b) for a, b in itertools.pairwise(dims))
        self.activation = _activation(activation)

    def nodes(self, batch: Any) -> Tensor:
        h, edge_index = check_graph_batch(batch, self.in_dim, "gcn")
        for conv in self.convs:
            h = self.activation(conv(h, edge_index))  # V x width
        return h  # V x out_dim

    def forward(self, batch: Any) -> Tensor:
        h = self.nodes(batch)
        if self.level == "node":
            return masked_nodes(batch, h)
        index, n = graph_index(batch)
        return global_mean_pool(h, index, size=n)  # G x out_dim
