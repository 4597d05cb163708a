"""A custom evaluation protocol: retrieval by class on frozen features.

Each test clip queries the training clips by cosine similarity; the protocol reports whether
its nearest neighbour has its label (``top1``) and the share of its ``k`` nearest that do
(``top_k_precision``), both fractions, shown as percentages. A protocol of kind ``"features"``
gets the frozen embeddings and labels of both splits and returns float metrics.
"""

from __future__ import annotations

import numpy as np

__all__ = ["class_retrieval"]


def class_retrieval(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                    test_y: np.ndarray, *, k: int = 10, seed: int = 0) -> dict[str, float]:
    """Retrieval by class: precision@k of the cosine nearest training clips of each test clip.

    Shape: train_x N x D, train_y N, test_x M x D, test_y M. ``seed`` is unused (the protocol
    is deterministic) but every protocol is given one.
    """
    if not 1 <= k <= len(train_x):
        raise ValueError(f"class_retrieval k must be in [1, {len(train_x)}], got {k}")
    a = train_x / np.maximum(np.linalg.norm(train_x, axis=1, keepdims=True), 1e-12)
    q = test_x / np.maximum(np.linalg.norm(test_x, axis=1, keepdims=True), 1e-12)
    nearest = np.argsort(-(q @ a.T), axis=1, kind="stable")[:, :k]  # M x k
    hits = train_y[nearest] == test_y[:, None]  # M x k
    return {"top1": float(hits[:, 0].mean()), "top_k_precision": float(hits.mean()),
            "k": float(k)}
