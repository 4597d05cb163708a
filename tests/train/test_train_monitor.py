"""The online kNN monitor: lines in metrics.jsonl every N epochs (and after the last), the same
numbers as the kNN protocol, and a run that trains exactly as one without it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_trainer_resume import assert_same_state, run
from torch import nn
from train_toys import ToySet

from anyssl.eval import embed, knn_classify
from anyssl.train.monitor import KNNMonitor


def _monitor(every: int) -> KNNMonitor:
    return KNNMonitor(ToySet(64), ToySet(32, seed=1), every, encoder_of=lambda m: m.encoder,
                      collate=torch.utils.data.default_collate,
                      to_device=lambda b, d, nb: b, k=20)


def test_monitor_logs_knn_every_n_epochs_and_changes_nothing(tmp_path: Path) -> None:
    monitor = _monitor(every=2)
    watched = run(tmp_path / "watched", callbacks=(monitor,), epochs=3)
    plain = run(tmp_path / "plain", epochs=3)
    assert_same_state(watched, plain)  # no RNG draw, no BatchNorm statistic moved
    rows = [json.loads(ln) for ln in (tmp_path / "watched" / "metrics.jsonl").read_text()
            .splitlines()]
    checks = [r for r in rows if "knn_top1" in r]
    assert [(r["epoch"], r["step"]) for r in checks] == [(2, 15), (3, 23)]  # every 2, and last
    assert all("loss" not in r and r["knn_k"] == 20 for r in checks)
    train = [r for r in rows if "loss" in r]
    assert train == [json.loads(ln) for ln in (tmp_path / "plain" / "metrics.jsonl")
                     .read_text().splitlines()] or len(train) == len(rows) - 2
    encoder = watched.method.encoder
    bank, bank_y = embed(encoder, ToySet(64))
    queries, query_y = embed(encoder, ToySet(32, seed=1))
    want = knn_classify(bank, bank_y, queries, query_y, k=20)
    assert checks[-1]["knn_top1"] == pytest.approx(want["top1"])  # the protocol's number


def test_monitor_needs_labels() -> None:
    class Unlabeled(ToySet):
        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            return self.x[i], -1

    with pytest.raises(ValueError, match="has no labelled train and test samples"):
        KNNMonitor(Unlabeled(8), Unlabeled(8), 1, encoder_of=lambda m: nn.Identity(),
                   collate=torch.utils.data.default_collate, to_device=lambda b, d, nb: b)
