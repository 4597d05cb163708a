"""Weighted k-nearest-neighbour classification of frozen features.

The non-parametric classifier of Wu et al. 2018 ("Unsupervised Feature Learning via
Non-Parametric Instance Discrimination", sec. 3.4), the monitor the MoCo and DINO code bases
print during training: cosine similarity to every training feature, the ``k`` most similar
neighbours, each voting for its class with weight ``exp(sim / T)``; classes ranked by summed
votes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch import Tensor

from anyssl.eval.embed import as_split, resolve_device, topk_accuracies


def knn_scores(
    query: Tensor, bank: Tensor, bank_labels: Tensor, num_classes: int, *, k: int,
    temperature: float,
) -> Tensor:
    """Class scores of each query from its ``k`` nearest (cosine) bank features.

    ``query`` and ``bank`` must be L2-normalized. Returns the summed ``exp(sim / T)`` votes.

    Shape:
        query: B x D, bank: N x D, bank_labels: N; returns B x C.
    """
    sim = query @ bank.T  # B x N
    top_sim, top_idx = sim.topk(k, dim=1)  # B x k
    votes = (top_sim / temperature).exp()  # B x k
    neighbour_labels = bank_labels[top_idx]  # B x k
    scores = query.new_zeros(query.shape[0], num_classes)  # B x C
    return scores.scatter_add_(1, neighbour_labels, votes)


def knn_classify(
    train_x: ArrayLike | Tensor,
    train_y: ArrayLike | Tensor,
    test_x: ArrayLike | Tensor,
    test_y: ArrayLike | Tensor,
    *,
    k: int = 200,
    temperature: float = 0.07,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Weighted kNN accuracy of frozen features (top-1, and top-5 when classes > 5, in [0, 1]).

    ``k`` (200 and ``T = 0.07`` as in InstDisc and MoCo) is capped at the training set size and
    the value used is returned under ``"k"``. Test points are scored ``batch_size`` at a time.
    ``device=None`` runs on CUDA when available, else on the CPU.

    Shape:
        train_x: N x D, train_y: N, test_x: M x D, test_y: M.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    dev = resolve_device(device)
    bank, bank_labels, query, query_labels = as_split(train_x, train_y, test_x, test_y, dev)
    num_classes = int(max(bank_labels.max(), query_labels.max())) + 1
    k = min(k, bank.shape[0])
    bank = F.normalize(bank.to(dev), dim=1)  # N x D
    query = F.normalize(query.to(dev), dim=1)  # M x D
    scores = torch.cat([
        knn_scores(q, bank, bank_labels, num_classes, k=k, temperature=temperature)
        for q in query.split(batch_size)
    ])  # M x C
    return {**topk_accuracies(scores, query_labels), "k": k}


__all__ = ["knn_classify", "knn_scores"]
