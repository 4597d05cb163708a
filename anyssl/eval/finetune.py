"""Low-label fine-tuning: encoder + linear head trained end to end on a small, class-balanced
part of the training labels, then top-1 on the test set.

The semi-supervised protocol of SimCLR (Chen et al. 2020, sec. 6 and Table 7; appendix B.5):
1% or 10% of the labels sampled per class, SGD with Nesterov momentum 0.9, learning rate
``0.05 * batch_size / 256``, no weight decay, no warm-up, 60 epochs for 1% and 30 for 10%, and only
light augmentation (random crop and flip for images; here the caller's ``augment``). The learning
rate decays with a cosine schedule over all steps, as in the SimCLR code.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, default_collate

from anyssl.eval.embed import Collate, ToDevice, embed, module_device, topk_accuracies
from anyssl.modality import move_to_device
from anyssl.types import Augmentation


def balanced_subset(labels: ArrayLike, fraction: float, seed: int = 0) -> np.ndarray:
    """Seeded, class-balanced indices of ``fraction`` of the labeled samples.

    Each class keeps ``round(fraction * its count)`` samples, at least one, so a balanced data set
    (ImageNet, CIFAR) gets the same number per class (1% of ImageNet: ~12.8 per class) and
    ``fraction=1`` keeps everything. Unlabeled samples (label < 0) are never picked.

    Shape:
        labels: N; returns sorted int64 indices into it.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1]; got {fraction}")
    y = np.asarray(labels).reshape(-1)
    classes = np.unique(y[y >= 0])
    if classes.size == 0:
        raise ValueError("balanced_subset needs labeled samples (labels >= 0); got none")
    rng = np.random.default_rng(seed)
    picked = []
    for c in classes:
        members = np.flatnonzero(y == c)
        n = max(1, round(fraction * members.size))
        picked.append(rng.permutation(members)[:n])
    return np.sort(np.concatenate(picked)).astype(np.int64)


def dataset_labels(dataset: Dataset[Any]) -> np.ndarray:
    """The labels of a dataset of ``(input, label)`` pairs: its ``targets`` or ``labels``
    attribute when it has one of the right length, else read item by item."""
    n = len(dataset)  # type: ignore[arg-type]
    for attr in ("targets", "labels"):
        values = getattr(dataset, attr, None)
        if values is not None and not callable(values) and len(values) == n:
            return np.asarray(torch.as_tensor(values).cpu()).astype(np.int64)
    return np.asarray([int(dataset[i][1]) for i in range(n)], dtype=np.int64)


def _train(
    net: nn.Module, loader: DataLoader[Any], *, epochs: int, lr: float, device: torch.device,
    to_device: ToDevice, augment: Augmentation | None, seed: int,
) -> None:
    """SGD (Nesterov, momentum 0.9, no weight decay) with a per-step cosine decay of ``lr``."""
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True)
    total = max(1, epochs * len(loader))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total)))
    gen = torch.Generator(device=device).manual_seed(seed) if augment is not None else None
    net.train()
    for _ in range(epochs):
        for batch in loader:
            x, y = to_device(batch, device, device.type == "cuda")
            if augment is not None:
                x = augment(x, generator=gen)
            loss = F.cross_entropy(net(x), torch.as_tensor(y, device=device).long())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()


def finetune(
    encoder: nn.Module,
    train_set: Dataset[Any],
    test_set: Dataset[Any],
    *,
    fraction: float = 0.01,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int = 256,
    seed: int = 0,
    device: torch.device | str | None = None,
    collate: Collate = default_collate,
    to_device: ToDevice = move_to_device,
    augment: Augmentation | None = None,
    num_workers: int = 0,
) -> dict[str, float]:
    """Fine-tune a copy of ``encoder`` plus a linear head on ``fraction`` of the train labels.

    The caller's encoder is not changed (a deep copy is trained). ``epochs=None`` is 60 for
    ``fraction <= 1%`` and 30 above (SimCLR); ``lr=None`` is ``0.05 * b / 256`` with ``b`` the
    batch size actually used (``min(batch_size, n_labels)``). ``augment`` (an augmentation
    acting on a whole batch on the device) is applied to training batches only. The head is
    zero-initialized, so the run is deterministic for a seed on the CPU. ``device=None`` trains
    where the encoder's parameters are.

    Returns ``top1`` (and ``top5`` when classes > 5) on ``test_set`` and ``n_labels`` used.
    """
    out_dim = getattr(encoder, "out_dim", None)
    if not isinstance(out_dim, int) or out_dim < 1:
        raise ValueError("finetune needs an encoder with an int `out_dim` (its feature size)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    labels = dataset_labels(train_set)
    idx = balanced_subset(labels, fraction, seed)
    num_classes = max(int(getattr(train_set, "num_classes", None) or 0), int(labels.max()) + 1)
    epochs = (60 if fraction <= 0.01 else 30) if epochs is None else epochs
    bsz = min(batch_size, idx.size)
    lr = 0.05 * bsz / 256 if lr is None else lr
    dev = module_device(encoder) if device is None else torch.device(device)

    head = nn.Linear(out_dim, num_classes)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    net = nn.Sequential(copy.deepcopy(encoder), head).to(dev)
    loader: DataLoader[Any] = DataLoader(
        Subset(train_set, idx.tolist()), batch_size=bsz, shuffle=True, collate_fn=collate,
        generator=torch.Generator().manual_seed(seed), num_workers=num_workers,
        drop_last=idx.size > bsz and idx.size % bsz == 1,  # no 1-sample batch (BatchNorm)
    )
    _train(net, loader, epochs=epochs, lr=lr, device=dev, to_device=to_device, augment=augment,
           seed=seed)
    logits, test_y = embed(net, test_set, batch_size=batch_size, device=dev, collate=collate,
                           to_device=to_device, num_workers=num_workers)
    scores = topk_accuracies(torch.from_numpy(logits), torch.from_numpy(test_y))
    return {**scores, "n_labels": int(idx.size)}


__all__ = ["balanced_subset", "dataset_labels", "finetune"]
