"""The online kNN monitor: lines in metrics.jsonl every N epochs (and after the last), the same
numbers as the kNN protocol, and a run that trains exactly as one without it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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


class _OneGraph(torch.utils.data.Dataset):
    """One item holding many labelled rows, as a node-level graph data set does (one graph,
    a label per node, -1 for nodes outside the split)."""

    def __init__(self, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.y = torch.randint(0, 3, (40,), generator=g)
        self.y[:5] = -1
        self.x = torch.randn(40, 6, generator=g) + self.y[:, None].clamp(min=0)

    def __len__(self) -> int:
        return 1

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x, self.y


def test_monitor_on_many_rows_per_sample_caps_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("anyssl.train.monitor.MAX_SAMPLES", 30)
    encoder = nn.Linear(6, 4)
    monitor = KNNMonitor(_OneGraph(0), _OneGraph(1), 1, encoder_of=lambda m: m,
                         collate=lambda batch: batch[0], to_device=lambda b, d, nb: b, k=5)
    got = monitor.measure(encoder, torch.device("cpu"))
    feats, labels = {}, {}
    for seed in (0, 1):  # the monitor's rows: labelled ones, a seeded 30 of the 35
        data = _OneGraph(seed)
        keep = torch.nonzero(data.y >= 0).reshape(-1).numpy()
        keep = np.sort(np.random.default_rng(seed).choice(keep, 30, replace=False))
        with torch.no_grad():
            feats[seed], labels[seed] = encoder(data.x[keep]), data.y[keep]
    want = knn_classify(feats[0], labels[0], feats[1], labels[1], k=5)
    assert got["knn_top1"] == pytest.approx(want["top1"])
