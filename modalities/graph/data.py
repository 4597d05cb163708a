"""Graph datasets and their collate: ``GraphDataset`` (one item per graph, e.g. TU sets) and
``NodeDataset`` (one big graph whose nodes are classified, e.g. Cora).

An item is ``(data, label)``: ``data`` a ``torch_geometric.data.Data`` with float32 ``x``
(``num_nodes x F``, always present: see ``data_checks.degree_features``) and long
``edge_index`` (``2 x E``). Graph level: ``label`` an int (-1 unlabeled) and ``data.y`` the same
label as a 1-element tensor. Node level: ``data.node_mask`` (bool, ``num_nodes``) marks the nodes
the split evaluates on and ``label`` is ``data.y[data.node_mask]``; pre-training uses the whole
graph. Items are built once and returned as they are (augmentations copy, never mutate).
Attributes other than ``x``, ``edge_index``, ``y`` and the masks (``edge_attr``, ``pos``...) are
dropped: the encoders read ``x`` and ``edge_index`` only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torch_geometric.data import Batch, Data

from anyssl.modalities.graph.data_checks import GraphDataError, check_graphs
from anyssl.splits import check_split, split_indices

__all__ = ["GraphDataError", "GraphDataset", "NodeDataset", "collate", "graph_dataset",
           "random_node_split"]

log = logging.getLogger(__name__)
SPLIT_MODES = ("public", "random")


def collate(items: Sequence[tuple[Data, Any]]) -> tuple[Batch, Tensor]:
    """Batch dataset items: ``(Batch.from_data_list(datas), labels)``.

    Shape: graph level ``labels`` is ``num_graphs`` long; node level it is the concatenation of
    each item's ``y[node_mask]`` (one entry per masked node, in batch node order).
    """
    if len(items) == 0:
        raise ValueError("collate got no items; give at least one (data, label) pair")
    datas = [d for d, _ in items]
    labels = torch.cat([torch.as_tensor(lab).view(-1) for _, lab in items]).long()
    return Batch.from_data_list(datas), labels


def _class_names(num_classes: int | None, classes: Sequence[str] | None) -> list[str] | None:
    if classes is not None:
        return [str(c) for c in classes]
    return [str(c) for c in range(num_classes)] if num_classes else None


def _graph_label(g: Any, i: int) -> int | None:
    """The int label in ``g.y`` (-1 when missing); None for a float (regression) target."""
    y = getattr(g, "y", None)
    if y is None:
        return -1
    t = torch.as_tensor(y)
    if t.numel() != 1:
        raise GraphDataError(f"graph {i}: y has {t.numel()} values; a graph-level label is one "
                             "int (node labels belong in a NodeDataset)")
    if t.is_floating_point() and float(t) != round(float(t)):
        return None
    if int(t) < -1:
        raise GraphDataError(f"graph {i}: label {int(t)} is negative; use 0..C-1 (-1 unlabeled)")
    return int(t)


class PretrainGraphs(Dataset[tuple[Data, int]]):
    """Every graph of a TU set, train and test, for pre-training only (``pretrain_on="all"``)."""

    def __init__(self, graphs: list[Data], targets: list[int],
                 encoder_kwargs: dict[str, Any]) -> None:
        self.graphs, self.targets, self.encoder_kwargs = graphs, targets, dict(encoder_kwargs)

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, index: int) -> tuple[Data, int]:
        return self.graphs[index], self.targets[index]


class GraphDataset(Dataset[tuple[Data, int]]):
    """Graph classification data (one item per graph), the GraphCL/InfoGraph setting.

    ``graphs``: a list of ``Data`` or any PyG ``Dataset`` / ``InMemoryDataset``; labels come
    from ``data.y`` (-1 when missing; float targets make the data unlabeled, with a warning).
    The split is seeded and stratified (``anyssl.splits.split_indices``): ``"train"`` is
    ``1 - test_fraction`` (90%) of each class, ``"test"`` the rest, fixed by ``split_seed`` (not
    the training seed) so every run evaluates on the same graphs. The SVM protocol's 10-fold
    cross-validation runs over train + test, i.e. every graph once, as GraphCL (You et al.
    2020) reports. ``pretrain_on``: ``"train"`` (default) pre-trains on the 90% train part only;
    ``"all"`` pre-trains on every graph, train and test (labels unused), as GraphCL's and
    InfoGraph's unsupervised TU code do (``pretrain_set``), the papers' protocol.
    ``features`` / ``max_degree``: see ``data_checks.check_graphs`` / ``degree_features``.
    ``suggested_epochs=20`` is GraphCL's TU setting.
    """

    level = "graph"
    suggested_encoder = "gin"
    eval_protocols: tuple[str, ...] = ("svm", "linear", "knn")

    def __init__(self, graphs: Sequence[Any], split: str = "train", *, split_seed: int = 0,
                 test_fraction: float = 0.1, features: str = "auto",
                 max_degree: int | None = 64, classes: Sequence[str] | None = None,
                 suggested_epochs: int = 20, pretrain_on: str = "train") -> None:
        s = check_split(split)
        if pretrain_on not in ("train", "all"):
            raise ValueError(f"pretrain_on must be 'train' (the train split) or 'all' (every "
                             f"graph, the papers' unsupervised TU protocol); got {pretrain_on!r}")
        graphs = list(graphs)
        xs, eis = check_graphs(graphs, features, max_degree)
        labels = [_graph_label(g, i) for i, g in enumerate(graphs)]
        if any(v is None for v in labels):
            log.warning("graphs hold float (regression) targets; they are ignored (unlabeled)")
            labels = [-1] * len(graphs)
        targets = [int(v) for v in labels if v is not None]
        train_idx, test_idx = split_indices(targets, test_fraction, split_seed)
        if len(train_idx) == 0 or len(test_idx) == 0:
            raise GraphDataError(f"{len(graphs)} graphs are too few to split into train and test "
                                 f"(test_fraction={test_fraction}); give more graphs")
        self.indices: list[int] = (train_idx if s == "train" else test_idx).tolist()
        self.targets: list[int] = [targets[i] for i in self.indices]
        self.graphs: list[Data] = [
            Data(x=xs[i], edge_index=eis[i], y=torch.tensor([targets[i]]))
            for i in self.indices]
        labelled = max(targets) >= 0
        self.num_classes: int | None = max(targets) + 1 if labelled else None
        if classes is not None and self.num_classes and len(classes) < self.num_classes:
            raise ValueError(f"{len(classes)} class names for labels 0..{self.num_classes - 1}")
        self.classes = _class_names(self.num_classes, classes)
        self.num_features = int(xs[0].shape[1])
        self.encoder_kwargs: dict[str, Any] = {"in_dim": self.num_features, "level": "graph"}
        self.suggested_epochs: int | None = suggested_epochs
        # GraphCL / InfoGraph: 10-fold CV over every graph; their code's SVC() is RBF (a linear
        # SVC with C = 1000 on raw embeddings takes minutes to converge in libsvm)
        self.eval_options: dict[str, dict[str, Any]] = {"svm": {"folds": 10, "kernel": "rbf"}}
        #: what pre-training iterates (``anyssl.build.pretrain_set``): every graph with
        #: ``pretrain_on="all"``, else None (this split)
        self.pretrain_set: PretrainGraphs | None = None
        if pretrain_on == "all" and s == "train":
            self.pretrain_set = PretrainGraphs(
                [Data(x=xs[i], edge_index=eis[i], y=torch.tensor([t]))
                 for i, t in enumerate(targets)], targets, self.encoder_kwargs)

    @classmethod
    def from_pyg(cls, data: Sequence[Any], split: str = "train", split_seed: int = 0,
                 **kwargs: Any) -> GraphDataset:
        """A ``GraphDataset`` from any PyG ``Dataset`` or list of ``Data`` (see the class)."""
        return cls(data, split, split_seed=split_seed, **kwargs)

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, index: int) -> tuple[Data, int]:
        return self.graphs[index], self.targets[index]


# ---- node level -----------------------------------------------------------------------------
def random_node_split(y: Tensor, seed: int, val_fraction: float = 0.1,
                      test_fraction: float = 0.8) -> dict[str, Tensor]:
    """Seeded train / val / test node masks stratified by class (unlabeled nodes count as one
    class): ``test_fraction`` of each class to test, ``val_fraction`` to val, the rest to
    train. The default 10% / 10% / 80% is GRACE's random 1:1:8 split (Zhu et al. 2020).

    Shape: ``y`` ``num_nodes`` -> masks ``num_nodes`` bool, disjoint and covering.
    """
    labels = y.cpu().numpy()
    rest, test = split_indices(labels, test_fraction, seed)
    share = round(val_fraction / (1 - test_fraction), 12)  # of the non-test nodes
    train_rel, val_rel = split_indices(labels[rest], share, seed + 1)
    out = {}
    for key, idx in (("train", rest[train_rel]), ("val", rest[val_rel]), ("test", test)):
        mask = torch.zeros(len(labels), dtype=torch.bool)
        mask[torch.as_tensor(np.asarray(idx, dtype=np.int64))] = True
        out[key] = mask
    return out


def _node_labels(data: Any, n: int) -> Tensor:
    y = getattr(data, "y", None)
    if y is None:
        return torch.full((n,), -1, dtype=torch.long)
    t = torch.as_tensor(y)
    if t.numel() != n:
        raise GraphDataError(f"graph 0: y has shape {tuple(t.shape)}; node labels need one "
                             f"value per node ({n})")
    t = t.reshape(-1)
    if t.is_floating_point() and not bool((t == t.round()).all()):
        log.warning("node labels are float (regression) targets; they are ignored (unlabeled)")
        return torch.full((n,), -1, dtype=torch.long)
    if n and int(t.min()) < -1:
        raise GraphDataError(f"graph 0: node label {int(t.min())} is negative; use 0..C-1 "
                             "(-1 unlabeled)")
    return t.long()


def _public_masks(data: Any, n: int) -> dict[str, Tensor] | None:
    """The graph's own ``train_mask`` / ``val_mask`` / ``test_mask`` (None when it has none)."""
    if getattr(data, "train_mask", None) is None or getattr(data, "test_mask", None) is None:
        return None
    masks = {}
    for key in ("train", "val", "test"):
        m = getattr(data, f"{key}_mask", None)
        m = torch.zeros(n, dtype=torch.bool) if m is None else torch.as_tensor(m)
        if m.dtype != torch.bool or m.shape != (n,):
            raise GraphDataError(f"graph 0: {key}_mask must be a bool tensor of {n} entries, "
                                 f"got {m.dtype} of shape {tuple(m.shape)}")
        masks[key] = m
    if bool((masks["train"] & masks["test"]).any()):
        raise GraphDataError("graph 0: train_mask and test_mask overlap; make them disjoint")
    return masks


class NodeDataset(Dataset[tuple[Data, Tensor]]):
    """Node classification on one graph (DGI / GRACE setting): ONE item per split.

    ``split_mode``: ``"public"`` uses the graph's own ``train_mask`` / ``test_mask`` (Planetoid's
    standard 140 / 500 / 1,000 split, DGI's protocol; a graph without masks falls back to
    ``"random"``, logged); ``"random"`` is GRACE's seeded 10% / 10% / 80% split of all nodes
    (``random_node_split``, stratified, seeded by ``split_seed``). ``split`` ``"train"`` gives
    the graph with ``node_mask = train_mask``, ``"test"`` with ``test_mask`` (``"val"`` reads as
    ``"test"``, as everywhere in anyssl); the three masks are kept in ``self.masks``.
    ``suggested_epochs=200`` is GRACE's Cora/CiteSeer setting (1,500 for PubMed).
    Evaluation: the public split runs the linear probe and kNN (DGI's protocol is a logistic
    regression on the public split); the random split asked for by ``split_mode="random"``
    runs GRACE's ``logreg_cv`` first (``modalities/graph/protocols.py``: L2-normalized
    embeddings, C by 5-fold cross-validation, micro/macro-F1), then the same two.
    """

    level = "node"
    suggested_encoder = "gcn"
    eval_protocols: tuple[str, ...] = ("linear", "knn")
    #: the protocols of GRACE's random split (``split_mode="random"``)
    random_split_protocols: tuple[str, ...] = ("logreg_cv", "linear", "knn")

    def __init__(self, data: Any, split: str = "train", *, split_mode: str = "public",
                 split_seed: int = 0, features: str = "auto", max_degree: int | None = 64,
                 classes: Sequence[str] | None = None, suggested_epochs: int = 200) -> None:
        s = check_split(split)
        if split_mode not in SPLIT_MODES:
            raise ValueError(f"unknown split_mode {split_mode!r}; choose one of: "
                             f"{', '.join(SPLIT_MODES)}")
        xs, eis = check_graphs([data], features, max_degree)
        n = int(xs[0].shape[0])
        y = _node_labels(data, n)
        masks = _public_masks(data, n) if split_mode == "public" else None
        if masks is None:
            if split_mode == "public":
                log.info("the graph has no train_mask/test_mask; using the random 10/10/80 split")
            masks = random_node_split(y, split_seed)
        if not bool(masks[s].any()):
            raise GraphDataError(f"graph 0: the {s} mask selects no node; give a non-empty "
                                 f"{s}_mask or use split_mode='random'")
        self.masks: dict[str, Tensor] = masks
        self.split_mode = split_mode
        self.notes: list[str] = []
        if split_mode == "random":  # GRACE's split asked for: GRACE's protocol first
            self.eval_protocols = self.random_split_protocols
            self.notes.append(f"graph: GRACE's random 10/10/80 node split (split_seed="
                              f"{split_seed}), evaluated with logreg_cv first (GRACE's eval.py); "
                              "-d split_mode=public for the public split")
        self.data = Data(x=xs[0], edge_index=eis[0], y=y, node_mask=masks[s])
        self.label: Tensor = y[masks[s]]
        labelled = bool((y >= 0).any())
        self.num_classes: int | None = int(y.max()) + 1 if labelled else None
        self.classes = _class_names(self.num_classes, classes)
        self.num_features = int(xs[0].shape[1])
        self.encoder_kwargs: dict[str, Any] = {"in_dim": self.num_features, "level": "node"}
        self.suggested_epochs: int | None = suggested_epochs
        self.eval_options: dict[str, dict[str, Any]] = {}

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> tuple[Data, Tensor]:
        if index not in (0, -1):
            raise IndexError(f"a NodeDataset has one item (the graph); got index {index}")
        return self.data, self.label


def graph_dataset(data: Any, split: str = "train", split_seed: int = 0,
                  **kwargs: Any) -> GraphDataset | NodeDataset:
    """A dataset from Python objects: one ``Data`` -> ``NodeDataset`` (node level); a list of
    ``Data`` or a PyG ``Dataset`` -> ``GraphDataset`` (graph level). ``kwargs`` go to the class.
    """
    if isinstance(data, Data):
        return NodeDataset(data, split, split_seed=split_seed, **kwargs)
    if isinstance(data, (str, bytes)) or not hasattr(data, "__len__"):
        raise ValueError(f"expected a Data, a list of Data or a PyG Dataset; got "
                        f"{type(data).__name__}")
    return GraphDataset(data, split, split_seed=split_seed, **kwargs)
