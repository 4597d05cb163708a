"""Weighted k-nearest-neighbour classification of frozen features.

The non-parametric classifier of Wu et al. 2018 ("Unsupervised Feature Learning via
Non-Parametric Instance Discrimination", sec. 3.4), the monitor the MoCo and DINO code bases
print during training: cosine similarity to every training feature, the ``k`` most similar
neighbours, each voting for its class with weight ``exp(sim / T)``; classes ranked by summed
votes. By default ``k`` and ``T`` are chosen on the training split, since a fixed k=200 votes
over almost every sample of a small training set (``anyssl.eval.selection``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch import Tensor

from anyssl.eval.embed import as_split, resolve_device, topk_accuracies
from anyssl.eval.selection import FOLDS, best, cross_validate, selection_splits

#: k values tried when ``k`` is not given, each capped at the size of the part fitted on:
#: TS2Vec's 1-NN (``yuezhihan/ts2vec`` ``tasks/_eval_protocols.py`` l. 73-79), DINO's 10, 20,
#: 100, 200 (``facebookresearch/dino`` ``eval_knn.py`` l. 194; solo-learn's default is 20) and
#: 5, 50 between them.
K_GRID: tuple[int, ...] = (1, 5, 10, 20, 50, 100, 200)
#: temperatures tried when neither ``k`` nor ``temperature`` is given: InstDisc's 0.07 (Wu et al.
#: 2018 sec. 3.4; DINO ``eval_knn.py`` l. 196), a sharper 0.02 (near 1-NN; smaller overflows
#: float32's ``exp(1 / T)``) and flatter 0.2, 0.5 (near a plain majority vote).
TEMPERATURE_GRID: tuple[float, ...] = (0.02, 0.07, 0.2, 0.5)
#: the temperature of a fixed ``k`` given without one (InstDisc, MoCo, DINO).
TEMPERATURE = 0.07


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


def knn_grid_accuracy(
    query: Tensor, query_labels: Tensor, bank: Tensor, bank_labels: Tensor, num_classes: int,
    ks: Sequence[int], temperatures: Sequence[float], *, batch_size: int = 256,
) -> dict[tuple[int, float], float]:
    """Top-1 accuracy of every ``(k, T)`` pair from one pass: each batch of queries takes its
    ``max(ks)`` nearest bank features once, and every pair votes with the first ``k`` of them.

    ``query`` and ``bank`` must be L2-normalized; ``max(ks)`` must not exceed the bank size.

    Shape:
        query: B x D, query_labels: B, bank: N x D, bank_labels: N.
    """
    correct = dict.fromkeys(((k, t) for k in ks for t in temperatures), 0)
    for q, q_labels in zip(query.split(batch_size), query_labels.split(batch_size), strict=True):
        top_sim, top_idx = (q @ bank.T).topk(max(ks), dim=1)  # b x kmax, sorted
        neighbour_labels = bank_labels[top_idx]  # b x kmax
        for t in temperatures:
            votes = (top_sim / t).exp()  # b x kmax
            for k in ks:
                scores = votes.new_zeros(q.shape[0], num_classes)  # b x C
                scores.scatter_add_(1, neighbour_labels[:, :k], votes[:, :k])
                correct[(k, t)] += int((scores.argmax(dim=1) == q_labels).sum())
    return {key: hits / query.shape[0] for key, hits in correct.items()}


def choose_k_temperature(
    bank: Tensor, bank_labels: Tensor, num_classes: int, *, k_grid: Sequence[int] = K_GRID,
    temperatures: Sequence[float] = TEMPERATURE_GRID, seed: int = 0, folds: int = FOLDS,
    selection: str = "auto", batch_size: int = 256,
) -> tuple[int, float, dict[str, float]]:
    """The ``(k, T)`` of the grids with the best validation top-1 on the training set (k-fold
    on small sets, a seeded hold-out on large ones: ``anyssl.eval.selection``); ties go to
    the larger k, then to the temperature nearest 0.07. Also how it was chosen.

    Shape:
        bank: N x D L2-normalized training features; bank_labels: N.
    """
    if not k_grid or not temperatures:
        raise ValueError("the k and temperature grids must not be empty")
    _check(min(k_grid), min(temperatures))
    splits, how = selection_splits(bank_labels, seed=seed, folds=folds, selection=selection)
    cap = min(fit.shape[0] for fit, _ in splits)  # every split scores the same ks
    ks = sorted({min(k, cap) for k in k_grid}, reverse=True)
    ts = sorted(temperatures, key=lambda t: abs(math.log(t / TEMPERATURE)))
    scores = cross_validate(splits, lambda fit, val: knn_grid_accuracy(
        bank[val], bank_labels[val], bank[fit], bank_labels[fit], num_classes, ks, ts,
        batch_size=batch_size))
    k, t = best(scores, [(k, t) for k in ks for t in ts])
    return k, t, how


def _check(k: int, temperature: float) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")


def knn_classify(
    train_x: ArrayLike | Tensor,
    train_y: ArrayLike | Tensor,
    test_x: ArrayLike | Tensor,
    test_y: ArrayLike | Tensor,
    *,
    k: int | None = None,
    temperature: float | None = None,
    k_grid: Sequence[int] = K_GRID,
    temperature_grid: Sequence[float] = TEMPERATURE_GRID,
    selection: str = "auto",
    folds: int = FOLDS,
    seed: int = 0,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Weighted kNN accuracy of frozen features (top-1, and top-5 when classes > 5, in [0, 1]).

    ``k=None`` chooses ``k`` from ``k_grid`` and, unless ``temperature`` is given, the
    temperature from ``temperature_grid`` on the training split (``choose_k_temperature``:
    ``folds``-fold cross-validation up to 5,000 samples, a seeded 20% hold-out above), then
    scores the test set with the whole training set as the bank. A given ``k`` is used as is,
    with ``temperature`` 0.07 unless given: ``k=200`` is InstDisc's and MoCo's fixed protocol.
    ``k`` is capped at the training set size. Returns the ``"k"`` and ``"temperature"`` used,
    and ``"cv_folds"`` or ``"holdout"`` when they were chosen. Test points are scored
    ``batch_size`` at a time. ``device=None`` runs on CUDA when available, else on the CPU.

    Shape:
        train_x: N x D, train_y: N, test_x: M x D, test_y: M.
    """
    _check(1 if k is None else k, TEMPERATURE if temperature is None else temperature)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    dev = resolve_device(device)
    bank, bank_labels, query, query_labels = as_split(train_x, train_y, test_x, test_y, dev)
    num_classes = int(max(bank_labels.max(), query_labels.max())) + 1
    bank = F.normalize(bank.to(dev), dim=1)  # N x D
    query = F.normalize(query.to(dev), dim=1)  # M x D
    how: dict[str, float] = {}
    if k is None:
        temps = temperature_grid if temperature is None else (temperature,)
        k, temperature, how = choose_k_temperature(
            bank, bank_labels, num_classes, k_grid=k_grid, temperatures=temps, seed=seed,
            folds=folds, selection=selection, batch_size=batch_size)
    temperature = TEMPERATURE if temperature is None else temperature
    k = min(k, bank.shape[0])
    scores = torch.cat([
        knn_scores(q, bank, bank_labels, num_classes, k=k, temperature=temperature)
        for q in query.split(batch_size)
    ])  # M x C
    return {**topk_accuracies(scores, query_labels), "k": k, "temperature": temperature, **how}


__all__ = ["K_GRID", "TEMPERATURE", "TEMPERATURE_GRID", "choose_k_temperature",
           "knn_classify", "knn_grid_accuracy", "knn_scores"]
