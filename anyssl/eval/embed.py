"""Embed a dataset with a frozen encoder, plus the small helpers every protocol shares.

Every evaluation protocol (linear probe, kNN, SVM) starts from ``embed()``: the encoder runs in
eval mode under ``no_grad`` over the whole dataset and returns ``N x D`` float32 features and
``N`` int64 labels as numpy arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, default_collate

from anyssl.modality import move_to_device

#: ``to_device(batch, device, non_blocking)``: moves a collated batch to the device once.
ToDevice = Callable[[Any, torch.device, bool], Any]
Collate = Callable[[list[Any]], Any]


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``device`` as a ``torch.device``; None picks CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter (or buffer); the CPU when it has neither."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


def as_features(x: ArrayLike | Tensor, name: str = "features") -> Tensor:
    """An ``N x D`` float32 tensor from an array or tensor (not yet moved)."""
    t = x.detach() if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    if t.dim() != 2 or t.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty N x D array; got shape {tuple(t.shape)}")
    return t.float()


def as_labels(y: ArrayLike | Tensor, n: int, name: str = "labels") -> Tensor:
    """An ``N`` int64 tensor of class indices ``0..C-1`` matching ``n`` feature rows."""
    t = y.detach() if isinstance(y, Tensor) else torch.as_tensor(np.asarray(y))
    if t.dim() != 1 or t.shape[0] != n:
        raise ValueError(f"{name} must be a 1-D array of {n} class indices; got {tuple(t.shape)}")
    if t.is_floating_point() and not bool((t == t.round()).all()):
        raise ValueError(f"{name} must be integer class indices; got fractional values")
    t = t.long()
    if n and int(t.min()) < 0:
        raise ValueError(f"{name} contain negative (unlabeled) entries; evaluate labeled data only")
    return t


def as_split(
    train_x: ArrayLike | Tensor, train_y: ArrayLike | Tensor,
    test_x: ArrayLike | Tensor, test_y: ArrayLike | Tensor, device: torch.device,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Checked features (CPU, float32) and labels (on ``device``) of a train/test split.

    Shape:
        train_x: N x D, train_y: N, test_x: M x D, test_y: M (the same D).
    """
    xtr, xte = as_features(train_x, "train_x"), as_features(test_x, "test_x")
    if xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"train_x has {xtr.shape[1]} features but test_x {xte.shape[1]}")
    ytr = as_labels(train_y, xtr.shape[0], "train_y").to(device)
    yte = as_labels(test_y, xte.shape[0], "test_y").to(device)
    return xtr, ytr, xte, yte


def topk_accuracies(scores: Tensor, labels: Tensor) -> dict[str, float]:
    """Top-1 (and top-5 when there are more than 5 classes) accuracy of class scores.

    Shape:
        scores: N x C (higher is better); labels: N.
    """
    num_classes = scores.shape[1]
    ks = (1, 5) if num_classes > 5 else (1,)
    top = scores.topk(max(ks), dim=1).indices  # N x kmax
    hit = top == labels.to(top.device)[:, None]  # N x kmax
    n = max(1, labels.shape[0])
    return {f"top{k}": int(hit[:, :k].any(dim=1).sum()) / n for k in ks}


def eval_transform(dataset: Dataset[Any]) -> Any:
    """What a dataset asks evaluation to do to each batch of inputs on the device before the
    encoder (its ``eval_transform``: image folders stored larger than their views take the
    centre crop), looking through ``Subset`` and ``ConcatDataset``; None for nothing."""
    found = getattr(dataset, "eval_transform", None)
    if found is not None:
        return found
    inner = getattr(dataset, "dataset", None)  # Subset
    if isinstance(inner, Dataset):
        return eval_transform(inner)
    parts = getattr(dataset, "datasets", None)  # ConcatDataset
    return next((t for d in parts or [] if (t := eval_transform(d)) is not None), None)


def _forward_batches(
    encoder: nn.Module, loader: DataLoader[Any], device: torch.device, to_device: ToDevice,
    transform: Any = None,
) -> tuple[list[Tensor], list[Tensor]]:
    feats, labels = [], []
    non_blocking = device.type == "cuda"
    for batch in loader:
        inputs, y = to_device(batch, device, non_blocking)
        if transform is not None:
            inputs = transform(inputs)
        out = encoder(inputs)  # B x D
        if not isinstance(out, Tensor) or out.dim() != 2:
            shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(f"the encoder must return B x D features; got {shape}")
        feats.append(out.float().cpu())
        labels.append(torch.as_tensor(y).long().cpu())
    return feats, labels


def embed(
    encoder: nn.Module,
    dataset: Dataset[Any],
    *,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    collate: Collate = default_collate,
    to_device: ToDevice = move_to_device,
    num_workers: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of every sample in ``dataset``, in order.

    The encoder runs in eval mode under ``no_grad`` (its train/eval mode is restored after).
    ``device=None`` runs where the encoder's parameters are; an explicit ``device`` moves the
    encoder there (in place, ``Module.to``). Batches are ``(inputs, labels)`` as collated by
    ``collate``, moved once by ``to_device`` and passed through the dataset's
    ``eval_transform`` when it has one. A dataset whose items are already batches (sampled
    subgraphs of a large graph) caps ``batch_size`` with its ``eval_batch_size`` attribute.

    Shape:
        returns ``N x D`` float32 features and ``N`` int64 labels (numpy).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    batch_size = min(batch_size, int(getattr(dataset, "eval_batch_size", batch_size)))
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ValueError("cannot embed an empty dataset")
    if device is None:
        dev = module_device(encoder)
    else:
        dev = torch.device(device)
        encoder.to(dev)
    loader: DataLoader[Any] = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, collate_fn=collate,
        num_workers=num_workers, pin_memory=dev.type == "cuda",
    )
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            feats, labels = _forward_batches(encoder, loader, dev, to_device,
                                             eval_transform(dataset))
    finally:
        encoder.train(was_training)
    return torch.cat(feats).numpy(), torch.cat(labels).numpy()


__all__ = ["as_features", "as_labels", "embed", "eval_transform", "module_device",
           "resolve_device", "topk_accuracies"]
