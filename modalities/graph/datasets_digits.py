"""The two offline default graph datasets, built from scikit-learn's bundled 8x8 digits
(``sklearn.datasets.load_digits``: 1,797 real handwritten digits, 10 classes; Alpaydin &
Kaynak 1998, UCI optdigits test set).

- ``digits-graphs`` (graph level, the default): each digit is a pixel graph.
- ``digits-knn`` (node level, the default for node methods): one k-NN graph of all digits.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from anyssl.modalities.graph.data import GraphDataset, NodeDataset, random_node_split
from anyssl.registry import DATASETS

__all__ = ["digits_graphs", "digits_knn", "knn_graph", "pixel_graphs"]

DIGIT_CLASSES = tuple(str(d) for d in range(10))
#: The 8 neighbour offsets (row, col) of a pixel.
NEIGHBOURS = tuple((dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0))


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float32), bunch.target.astype(np.int64)  # N x 8 x 8, N


def pixel_graphs(images: np.ndarray) -> list[tuple[Tensor, Tensor]]:
    """Each image as a pixel graph: nodes are the inked pixels (value > 0) in row-major order,
    features ``[value / 16, row / 7, col / 7]``, edges join 8-neighbour inked pixels (both
    directions). Vectorised over all images (numpy: fast on a busy CPU, no thread pool).

    Shape: ``images`` ``N x 8 x 8`` (values 0..16) -> per image ``(x: n_i x 3, ei: 2 x E_i)``.
    """
    img = np.asarray(images, dtype=np.float32)
    n, h, w = img.shape
    ink = img > 0  # N x H x W
    counts = ink.reshape(n, -1).sum(1)  # N
    assert bool((counts > 0).all()), "every digit has ink"
    local = ink.reshape(n, -1).cumsum(1).reshape(n, h, w) - 1  # node id of each inked pixel
    g, r, c = ink.nonzero()  # row-major per image, images in order
    x = np.stack([img[g, r, c] / 16, r / (h - 1), c / (w - 1)], axis=1).astype(np.float32)
    src, dst, gid = [], [], []
    for dr, dc in NEIGHBOURS:
        r2, c2 = r + dr, c + dc
        ok = (r2 >= 0) & (r2 < h) & (c2 >= 0) & (c2 < w)
        g1, r1, c1, r2, c2 = g[ok], r[ok], c[ok], r2[ok], c2[ok]
        both = ink[g1, r2, c2]
        src.append(local[g1[both], r1[both], c1[both]])
        dst.append(local[g1[both], r2[both], c2[both]])
        gid.append(g1[both])
    g_all = np.concatenate(gid)
    order = np.argsort(g_all, kind="stable")
    ei = np.stack([np.concatenate(src), np.concatenate(dst)])[:, order].astype(np.int64)
    cuts = np.cumsum(np.bincount(g_all, minlength=n))[:-1]
    xs = np.split(x, np.cumsum(counts)[:-1])
    return [(torch.from_numpy(xi), torch.from_numpy(np.ascontiguousarray(e)))
            for xi, e in zip(xs, np.split(ei, cuts, axis=1), strict=True)]


@functools.lru_cache(maxsize=1)
def _digit_graph_list() -> tuple[Data, ...]:
    images, labels = _digits()
    return tuple(Data(x=x, edge_index=ei, y=torch.tensor([int(y)]))
                 for (x, ei), y in zip(pixel_graphs(images), labels, strict=True))


@DATASETS.register("digits-graphs", scope="graph")
def digits_graphs(split: str = "train", seed: int = 0, split_seed: int = 0,
                  test_fraction: float = 0.1) -> GraphDataset:
    """scikit-learn's 1,797 8x8 digits as pixel graphs (inked pixels, 8-neighbour edges), 10
    classes; a seeded stratified 90/10 split (``split_seed``, not the training ``seed``)."""
    return GraphDataset(_digit_graph_list(), split, split_seed=split_seed,
                        test_fraction=test_fraction, classes=DIGIT_CLASSES)


def knn_graph(x: Tensor, k: int) -> Tensor:
    """The symmetrised k-nearest-neighbour graph of the rows of ``x`` (Euclidean; a node is
    never its own neighbour, so every node has degree >= k).

    Shape: ``x`` ``N x D`` -> ``edge_index`` ``2 x E`` (both directions, no duplicates).
    """
    if not 0 < k < x.shape[0]:
        raise ValueError(f"k must be in 1..{x.shape[0] - 1} for {x.shape[0]} points; got {k}")
    dist = torch.cdist(x, x)  # N x N
    dist.fill_diagonal_(float("inf"))
    nbr = dist.topk(k, dim=1, largest=False).indices  # N x k
    src = torch.arange(x.shape[0]).repeat_interleave(k)
    return to_undirected(torch.stack([src, nbr.reshape(-1)]), num_nodes=x.shape[0])


@functools.lru_cache(maxsize=4)
def _digit_knn(k: int, split_seed: int) -> Data:
    images, labels = _digits()
    x = torch.as_tensor(images).reshape(len(images), -1) / 16  # N x 64
    y = torch.as_tensor(labels)
    masks = random_node_split(y, split_seed)
    return Data(x=x, edge_index=knn_graph(x, k), y=y, train_mask=masks["train"],
                val_mask=masks["val"], test_mask=masks["test"])


@DATASETS.register("digits-knn", scope="graph")
def digits_knn(split: str = "train", seed: int = 0, k: int = 10, split_mode: str = "public",
               split_seed: int = 0) -> NodeDataset:
    """ONE graph of scikit-learn's 1,797 digits as nodes (features: the 64 pixels / 16, edges:
    the symmetrised ``k``-NN graph), 10 classes. Its "public" masks are a seeded stratified
    10% train / 10% val / 80% test split (``split_seed``), GRACE's 1:1:8 proportions."""
    return NodeDataset(_digit_knn(k, split_seed), split, split_mode=split_mode,
                       split_seed=split_seed, classes=DIGIT_CLASSES, suggested_epochs=200)
