"""The online kNN monitor: every N epochs, weighted kNN of the encoder's frozen features on the
labelled split, logged to ``metrics.jsonl`` and shown in the progress bar.

This is the monitor the MoCo CIFAR-10 demo prints each epoch and solo-learn's ``--knn_eval``
callback: users watch it to stop a run that is not learning. The bank is the labelled training
split, the queries the test split (each capped at ``MAX_SAMPLES`` by a fixed, seeded subset so
that a large data set costs a bounded pass); k = 200 and T = 0.07 as in the final protocol
(``anyssl.eval.knn``).

The monitor changes nothing a resumed run depends on: the encoder runs in eval mode under
``no_grad`` (no BatchNorm statistics move) and the global random state is restored after it
(``torch.random.fork_rng``), so a run with the monitor trains exactly as one without.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from anyssl.eval.embed import embed
from anyssl.eval.finetune import dataset_labels
from anyssl.eval.knn import knn_classify

__all__ = ["MAX_SAMPLES", "KNNMonitor"]

#: At most this many bank (train) and query (test) samples are embedded per check.
MAX_SAMPLES = 10_000


def _capped(dataset: Dataset[Any], labels: np.ndarray, limit: int, seed: int
            ) -> tuple[Dataset[Any], np.ndarray]:
    """The labelled samples of ``dataset``, at most ``limit`` of them (a seeded random subset,
    the same at every check)."""
    idx = np.flatnonzero(labels >= 0)
    if idx.size > limit:
        idx = np.sort(np.random.default_rng(seed).choice(idx, limit, replace=False))
    return Subset(dataset, idx.tolist()), labels[idx]


class KNNMonitor:
    """A trainer callback running kNN on the labelled split every ``every`` epochs (and after
    the last one), on the main process only.

    Args:
        train_set, test_set: the bank (labelled training samples) and the queries.
        every: epochs between checks.
        encoder_of: picks the encoder to monitor from the method (its ``eval_encoder`` or
            ``encoder``).
        collate, to_device: the modality's batching.
    """

    def __init__(self, train_set: Dataset[Any], test_set: Dataset[Any], every: int, *,
                 encoder_of: Callable[[Any], torch.nn.Module], collate: Any, to_device: Any,
                 k: int = 200, temperature: float = 0.07, seed: int = 0,
                 batch_size: int = 256) -> None:
        if every < 1:
            raise ValueError(f"monitor_every must be >= 1, got {every}")
        train_y, test_y = dataset_labels(train_set), dataset_labels(test_set)
        if not (train_y >= 0).any() or not (test_y >= 0).any():
            raise ValueError("--monitor-every runs kNN on labels, but the data has no labelled "
                             "train and test samples; drop --monitor-every")
        self.bank, self.bank_y = _capped(train_set, train_y, MAX_SAMPLES, seed)
        self.queries, self.query_y = _capped(test_set, test_y, MAX_SAMPLES, seed + 1)
        self.every, self.k, self.temperature = every, k, temperature
        self.encoder_of, self.collate, self.to_device = encoder_of, collate, to_device
        self.batch_size = batch_size
        self.history: list[dict[str, float]] = []

    def on_epoch_end(self, trainer: Any) -> None:
        epoch = trainer.step // trainer.steps_per_epoch  # epochs done
        last = trainer.step >= trainer.total_steps
        if not trainer.is_main or (epoch % self.every and not last):
            return
        result = self.measure(self.encoder_of(trainer.method), trainer.device)
        self.history.append({"epoch": epoch, **result})
        trainer.metrics.log_monitor(trainer.step - 1, epoch, result)

    def measure(self, encoder: torch.nn.Module, device: torch.device) -> dict[str, float]:
        """``knn_top1`` (and ``knn_top5``) of ``encoder``'s features, in [0, 1], and ``knn_k``."""
        cuda = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):  # leave the training run's RNGs untouched
            kw = {"batch_size": self.batch_size, "device": device, "collate": self.collate,
                  "to_device": self.to_device}
            bank, _ = embed(encoder, self.bank, **kw)
            queries, _ = embed(encoder, self.queries, **kw)
        res = knn_classify(bank, self.bank_y, queries, self.query_y, k=self.k,
                           temperature=self.temperature, device=device)
        return {f"knn_{key}": float(value) for key, value in res.items()}
