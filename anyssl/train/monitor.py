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


def _pick(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Indices of the labelled entries, at most ``limit`` of them (a seeded random subset, the
    same at every check)."""
    idx = np.flatnonzero(labels >= 0)
    if idx.size > limit:
        idx = np.sort(np.random.default_rng(seed).choice(idx, limit, replace=False))
    return idx


def _sample_labels(dataset: Dataset[Any]) -> np.ndarray | None:
    """One label per sample, or None when a sample holds many labelled rows (a node-level graph
    data set is one graph whose ``labels`` are its nodes'): such data is embedded whole and its
    rows are capped after embedding."""
    n = len(dataset)  # type: ignore[arg-type]
    rows = getattr(dataset, "labels", None)
    if rows is not None and not callable(rows) and len(rows) != n:
        return None
    try:
        return dataset_labels(dataset)
    except (TypeError, ValueError):  # an item's label is not one number
        return None


def _labelled(dataset: Dataset[Any]) -> bool:
    labels = _sample_labels(dataset)
    if labels is None:  # many rows per sample (few samples): read every item's labels
        n = len(dataset)  # type: ignore[arg-type]
        labels = np.concatenate([np.asarray(torch.as_tensor(dataset[i][1]).cpu()).reshape(-1)
                                 for i in range(n)])
    return bool((labels >= 0).any())


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
        if not _labelled(train_set) or not _labelled(test_set):
            raise ValueError("--monitor-every runs kNN on labels, but the data has no labelled "
                             "train and test samples; drop --monitor-every")
        self.bank, self.queries = self._capped(train_set, seed), self._capped(test_set, seed + 1)
        self.every, self.k, self.temperature = every, k, temperature
        self.encoder_of, self.collate, self.to_device = encoder_of, collate, to_device
        self.batch_size = batch_size
        self.history: list[dict[str, float]] = []

    @staticmethod
    def _capped(dataset: Dataset[Any], seed: int) -> tuple[Dataset[Any], int]:
        """The labelled samples to embed (at most ``MAX_SAMPLES`` when labels are per sample)
        and the seed that caps the embedded rows otherwise."""
        labels = _sample_labels(dataset)
        if labels is None:
            return dataset, seed
        return Subset(dataset, _pick(labels, MAX_SAMPLES, seed).tolist()), seed

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
            bank, bank_y = self._rows(embed(encoder, self.bank[0], **kw), self.bank[1])
            queries, query_y = self._rows(embed(encoder, self.queries[0], **kw), self.queries[1])
        res = knn_classify(bank, bank_y, queries, query_y, k=self.k,
                           temperature=self.temperature, device=device)
        return {f"knn_{key}": float(value) for key, value in res.items()}

    @staticmethod
    def _rows(embedded: tuple[Any, Any], seed: int) -> tuple[Any, np.ndarray]:
        """The labelled rows of embedded features, at most ``MAX_SAMPLES`` (a node-level graph
        gives one row per node; per-sample data was capped before embedding)."""
        feats, labels = embedded
        idx = _pick(np.asarray(labels).reshape(-1), MAX_SAMPLES, seed)
        return feats[idx], np.asarray(labels).reshape(-1)[idx]
