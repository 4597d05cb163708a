"""Checking and cleaning graphs before they become dataset items, and the features given to
graphs that have none.

``check_graphs`` is the one entry point: it validates every graph (one Python pass reading
shapes, then whole-dataset tensor checks), removes self-loops and merges duplicate edges, and
returns float32 features and long edge indices for every graph. Rules, each tested:

- a graph with one node, or with no edges, is allowed (an augmentation keeps >= 1 node);
- a graph with no nodes, node features with NaN or inf, feature widths that differ between
  graphs (or some graphs with ``x`` and some without), an ``edge_index`` that is not ``2 x E``
  integers in ``0..num_nodes-1``, and an empty dataset raise ``GraphDataError`` naming the graph;
- self-loops are removed and duplicate edges merged (``torch_geometric.utils.remove_self_loops``
  and ``coalesce``, as PyG's TU reader does), with one log line saying how many graphs changed;
  directed edges are kept as given (undirected graphs store both directions).
- graphs without ``x`` get features (``feature_rule``): one-hot degree, else a constant.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch_geometric.utils import coalesce, degree, one_hot, remove_self_loops

__all__ = ["FEATURE_CHOICES", "GraphDataError", "check_graphs", "degree_features"]

log = logging.getLogger(__name__)
#: ``features=``: the graph's ``x`` when present (else degree), one-hot degree, or constant 1.
FEATURE_CHOICES = ("auto", "degree", "constant")


class GraphDataError(ValueError):
    """Graph data that cannot be used (the message names the graph and the fix)."""


# ---- features for graphs without x ----------------------------------------------------------
def degree_features(edge_index: Tensor, num_nodes: int, max_degree: int | None = 64,
                    force_degree: bool = False) -> tuple[Tensor, str]:
    """Features for nodes that have none, from their degree over the whole dataset at once.

    The rule: the degree of each node (``degree(edge_index[0])``, the count PyG's
    ``OneHotDegree`` uses) is one-hot encoded as ``min(degree, cap)`` with
    ``cap = min(max degree in the data, max_degree)`` (``F = cap + 1``), the features GraphCL
    and InfoGraph give the TU sets without node labels (IMDB, REDDIT, COLLAB). They cap at the
    dataset's max degree when it is below 1,000; we cap at 64 by default so ``in_dim`` stays
    bounded (the few busier nodes share the last column); ``max_degree=None`` does not cap.
    When every node has the same degree (no edges at all, or a regular graph) the degree says
    nothing and each node gets the constant ``[1.0]`` (``F = 1``) unless ``force_degree``.

    Shape: ``edge_index`` ``2 x E`` (all graphs, node ids offset), -> ``num_nodes x F`` float32
    and a short description for the log.
    """
    deg = degree(edge_index[0], num_nodes, dtype=torch.long)  # num_nodes
    top = int(deg.max()) if num_nodes else 0
    if not force_degree and (num_nodes == 0 or int(deg.min()) == top):
        return torch.ones(num_nodes, 1), "constant 1 (every node has the same degree)"
    cap = top if max_degree is None else min(top, max_degree)
    x = one_hot(deg.clamp(max=cap), num_classes=cap + 1, dtype=torch.float32)
    return x, f"one-hot degree, {cap + 1} columns (degree capped at {cap})"


# ---- per-graph reading ----------------------------------------------------------------------
def _num_nodes(g: Any, i: int) -> int:
    x = getattr(g, "x", None)
    n = int(x.shape[0]) if isinstance(x, Tensor) else g.num_nodes
    if not n:
        raise GraphDataError(f"graph {i} has no nodes; every graph needs at least one node "
                             "(set x or num_nodes)")
    return int(n)


def _features(g: Any, i: int, n: int) -> Tensor | None:
    x = getattr(g, "x", None)
    if x is None:
        return None
    x = torch.as_tensor(x)
    x = x.unsqueeze(-1) if x.dim() == 1 else x
    if x.dim() != 2 or x.shape[0] != n:
        raise GraphDataError(f"graph {i}: x must be num_nodes x F ({n} rows), got shape "
                             f"{tuple(x.shape)}")
    return x if x.dtype == torch.float32 else x.float()


def _edges(g: Any, i: int) -> Tensor:
    ei = getattr(g, "edge_index", None)
    if ei is None:
        return torch.zeros(2, 0, dtype=torch.long)
    ei = torch.as_tensor(ei)
    if ei.dim() != 2 or ei.shape[0] != 2 or ei.is_floating_point() or ei.dtype == torch.bool:
        raise GraphDataError(f"graph {i}: edge_index must be a 2 x E integer tensor, got "
                             f"{ei.dtype} of shape {tuple(ei.shape)}")
    return ei.long()


def _check_widths(xs: list[Tensor | None]) -> None:
    """Every graph has ``x`` of one width, or none has ``x``."""
    first = xs[0]
    for i, x in enumerate(xs):
        if (x is None) != (first is None):
            has = "has no" if x is None else "has"
            raise GraphDataError(f"graph {i} {has} node features (x) but graph 0 "
                                 f"{'has' if first is not None else 'has no'}; give every "
                                 "graph x of one width, or none")
        if x is not None and first is not None and x.shape[1] != first.shape[1]:
            raise GraphDataError(f"graph {i} has {x.shape[1]} node features but graph 0 has "
                                 f"{first.shape[1]}; every graph needs the same feature width")


# ---- whole-dataset checks -------------------------------------------------------------------
def _check_finite(xs: list[Tensor], counts: Tensor) -> None:
    bad = ~torch.isfinite(torch.cat(xs)).all(dim=1)  # total_nodes
    if bool(bad.any()):
        gid = torch.repeat_interleave(torch.arange(len(xs)), counts)
        i = int(gid[bad][0])
        raise GraphDataError(f"graph {i} has NaN or inf node features; fill or drop them "
                             "before building the dataset")


def _flag_edges(eis: list[Tensor], counts: Tensor) -> tuple[set[int], set[int]]:
    """Check node ids are in range; return the graphs with self-loops and with duplicates."""
    n_edges = torch.tensor([e.shape[1] for e in eis])
    if int(n_edges.sum()) == 0:
        return set(), set()
    ei = torch.cat(eis, dim=1)  # 2 x E_total, local ids
    gid = torch.repeat_interleave(torch.arange(len(eis)), n_edges)  # E_total
    out = (ei < 0).any(0) | (ei >= counts[gid]).any(0)
    if bool(out.any()):
        k = int(out.nonzero()[0])
        n, col = int(counts[gid[k]]), ei[:, k]
        node = int(col[(col < 0) | (col >= n)][0])
        raise GraphDataError(f"graph {int(gid[k])}: edge_index refers to node {node} but the "
                             f"graph has {n} nodes (ids 0..{n - 1})")
    loops = set(gid[ei[0] == ei[1]].tolist())
    offset = torch.cumsum(counts, 0) - counts  # G: first global node id of each graph
    total = int(counts.sum())
    key = (ei[0] + offset[gid]) * total + ei[1] + offset[gid]  # E_total, one per (src, dst)
    order = key.argsort()
    same = key[order][1:] == key[order][:-1]
    dups = set(gid[order][1:][same].tolist())
    return loops, dups


def _clean(ei: Tensor, n: int) -> Tensor:
    ei, _ = remove_self_loops(ei)
    return coalesce(ei, num_nodes=n)


def check_graphs(graphs: Sequence[Any], features: str = "auto",
                 max_degree: int | None = 64) -> tuple[list[Tensor], list[Tensor]]:
    """Validated features and cleaned edges of ``graphs`` (PyG ``Data``-like objects).

    ``features``: ``"auto"`` keeps ``x`` and gives graphs without ``x`` degree features (see
    ``degree_features``); ``"degree"`` / ``"constant"`` replace ``x`` by one-hot degree / 1.
    Returns ``(xs, edge_indices)``: per graph ``num_nodes x F`` float32 and ``2 x E`` long.
    Raises ``GraphDataError`` for the cases listed in the module docstring.
    """
    if features not in FEATURE_CHOICES:
        raise ValueError(f"unknown features {features!r}; choose one of: "
                         f"{', '.join(FEATURE_CHOICES)}")
    if len(graphs) == 0:
        raise GraphDataError("the dataset holds no graphs; give at least one Data object")
    sizes = [_num_nodes(g, i) for i, g in enumerate(graphs)]
    counts = torch.tensor(sizes)
    given = [_features(g, i, n) for i, (g, n) in enumerate(zip(graphs, sizes, strict=True))]
    eis = [_edges(g, i) for i, g in enumerate(graphs)]
    loops, dups = _flag_edges(eis, counts)
    for i in sorted(loops | dups):
        eis[i] = _clean(eis[i], sizes[i])
    if loops or dups:
        log.info("removed self-loops in %d graph(s) and merged duplicate edges in %d graph(s)",
                 len(loops), len(dups))
    if features == "auto" and given[0] is not None:
        _check_widths(given)
        xs = [x for x in given if x is not None]
        _check_finite(xs, counts)
        return xs, eis
    if features == "auto":
        _check_widths(given)
    offset = torch.cumsum(counts, 0) - counts
    all_ei = torch.cat([e + o for e, o in zip(eis, offset.tolist(), strict=True)], dim=1)
    if features == "constant":
        x, how = torch.ones(int(counts.sum()), 1), "constant 1"
    else:
        x, how = degree_features(all_ei, int(counts.sum()), max_degree,
                                 force_degree=features == "degree")
    log.info("graphs have no node features (x) in use: giving each node %s", how)
    return list(x.split(sizes)), eis
