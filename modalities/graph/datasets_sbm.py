"""A synthetic node-level graph of any size: a stochastic block model (``--data sbm``).

``sbm_graph`` draws ``num_nodes`` nodes in ``num_blocks`` equal-probability blocks and
``num_nodes * avg_degree / 2`` undirected edges, each inside its source's block with probability
``p_in`` (else to a uniform node), without ever forming an ``N x N`` matrix (memory is
``O(N + E)``). A node's features are its block's random centre (unit Gaussian, ``features``
wide) plus Gaussian noise of std ``noise``; its label is its block. With the defaults (noise 10,
``p_in`` 0.5) a logistic regression finds 18% of the blocks from the raw features of 4,000 nodes
and 69% from a random-init 2-layer GCN's embeddings (chance 10%): neighbourhoods carry the
blocks, and a trained encoder has room to do better. Used by
``benchmarks/graph_large.py`` and to try node-level training past memory from the CLI:
``anyssl train --modality graph --method grace --data sbm -d num_nodes=200000``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch_geometric.data import Data

from anyssl.modalities.graph.data import NodeDataset
from anyssl.modalities.graph.sampling import BATCH_NODES, FANOUT, sampled_dataset
from anyssl.registry import DATASETS

__all__ = ["sbm", "sbm_graph"]


def sbm_graph(num_nodes: int, num_blocks: int = 10, avg_degree: float = 16.0,
              p_in: float = 0.5, features: int = 32, noise: float = 10.0,
              seed: int = 0) -> Data:
    """One SBM graph (see the module docstring): ``Data(x, edge_index, y)``, both edge
    directions stored, self-loops and repeated pairs left to ``check_graphs`` to drop.

    Shape: x ``num_nodes x features`` float32, edge_index ``2 x E`` (E ~ num_nodes x
    avg_degree), y ``num_nodes``.
    """
    if num_nodes < 2 or num_blocks < 1 or avg_degree <= 0 or not 0 <= p_in <= 1:
        raise ValueError(f"sbm needs num_nodes >= 2, num_blocks >= 1, avg_degree > 0 and p_in "
                         f"in [0, 1]; got {num_nodes}, {num_blocks}, {avg_degree}, {p_in}")
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(num_blocks, (num_nodes,), generator=g)  # N
    by_block = torch.argsort(y)  # N: node ids grouped by block
    size = torch.bincount(y, minlength=num_blocks)  # B
    start = torch.cumsum(size, 0) - size  # B
    m = int(num_nodes * avg_degree / 2)
    src = torch.randint(num_nodes, (m,), generator=g)  # M
    offset = (torch.rand(m, generator=g, dtype=torch.double) * size[y[src]]).long()  # M
    inside = by_block[start[y[src]] + offset]  # M: a uniform node of src's block
    anywhere = torch.randint(num_nodes, (m,), generator=g)  # M
    dst = torch.where(torch.rand(m, generator=g) < p_in, inside, anywhere)  # M
    edge_index = torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])  # 2 x 2M
    centres = torch.randn(num_blocks, features, generator=g)  # B x F
    x = centres[y] + noise * torch.randn(num_nodes, features, generator=g)  # N x F
    return Data(x=x, edge_index=edge_index, y=y)


@DATASETS.register("sbm", scope="graph")
def sbm(split: str = "train", seed: int = 0, num_nodes: int = 10_000, num_blocks: int = 10,
        avg_degree: float = 16.0, p_in: float = 0.5, features: int = 32, noise: float = 10.0,
        graph_seed: int = 0, split_seed: int = 0, sampler: str = "auto",
        batch_nodes: int = BATCH_NODES, fanout: Any = FANOUT) -> Any:
    """A stochastic block model graph, node level (labels: the blocks), with GRACE's random
    10 / 10 / 80 split (``split_seed``); ``graph_seed`` fixes the graph. ``sampler``,
    ``batch_nodes``, ``fanout``: see ``anyssl.modalities.graph.sampling`` (auto: sampled
    subgraphs above 50,000 nodes)."""
    data = sbm_graph(num_nodes, num_blocks, avg_degree, p_in, features, noise, graph_seed)
    ds = NodeDataset(data, split, split_mode="random", split_seed=split_seed,
                     suggested_epochs=20)
    return sampled_dataset(ds, split, sampler=sampler, batch_nodes=batch_nodes, fanout=fanout,
                           seed=seed)
