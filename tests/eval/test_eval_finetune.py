"""balanced_subset() and finetune() (SimCLR's low-label fine-tuning)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from anyssl.eval.finetune import balanced_subset, dataset_labels, finetune


def test_balanced_subset_counts_per_class() -> None:
    labels = np.repeat(np.arange(5), 100)
    idx = balanced_subset(labels, 0.1, seed=0)
    assert np.bincount(labels[idx]).tolist() == [10] * 5
    assert np.all(np.diff(idx) > 0)  # sorted, unique
    imbalanced = np.concatenate([np.zeros(200), np.ones(50), np.full(3, 2), np.full(7, -1)])
    counts = np.bincount(imbalanced[balanced_subset(imbalanced, 0.1)].astype(int))
    assert counts.tolist() == [20, 5, 1]  # at least one per class; -1 (unlabeled) never picked
    assert balanced_subset(labels, 1.0).tolist() == list(range(500))


def test_balanced_subset_is_seeded() -> None:
    labels = np.repeat(np.arange(4), 50)
    a, b = balanced_subset(labels, 0.2, seed=1), balanced_subset(labels, 0.2, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, balanced_subset(labels, 0.2, seed=2))


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_balanced_subset_fraction_bounds(fraction: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        balanced_subset(np.arange(10) % 2, fraction)


def test_dataset_labels_reads_attribute_or_items() -> None:
    data = TensorDataset(torch.zeros(4, 2), torch.tensor([3, 1, 0, 1]))
    assert dataset_labels(data).tolist() == [3, 1, 0, 1]
    data.targets = [0, 0, 1, 1]  # type: ignore[attr-defined]
    assert dataset_labels(data).tolist() == [0, 0, 1, 1]


class ToyEncoder(nn.Module):
    def __init__(self, in_dim: int = 8, out_dim: int = 16) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.net = nn.Sequential(nn.Linear(in_dim, out_dim), nn.BatchNorm1d(out_dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _blobs(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(4, 8, generator=torch.Generator().manual_seed(99)) * 3
    y = torch.randint(0, 4, (n,), generator=g)
    return TensorDataset(centers[y] + torch.randn(n, 8, generator=g), y)


def test_finetune_learns_and_leaves_callers_encoder_alone() -> None:
    torch.manual_seed(0)
    enc = ToyEncoder().eval()
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    calls = []

    def augment(x: torch.Tensor, generator: torch.Generator | None = None) -> Any:
        calls.append(x.shape[0])
        return x + 0.05 * torch.randn(x.shape, generator=generator)

    res = finetune(enc, _blobs(400, 0), _blobs(200, 1), fraction=0.1, epochs=15, lr=0.1,
                   batch_size=16, device="cpu", augment=augment)
    assert res["n_labels"] == sum(max(1, round(0.1 * c)) for c in
                                  np.bincount(_blobs(400, 0).tensors[1].numpy()))
    assert res["top1"] > 0.6  # chance is 0.25
    assert not enc.training
    for k, v in enc.state_dict().items():
        assert torch.equal(v, before[k]), k
    n = int(res["n_labels"])
    batches = n // 16 + (n % 16 > 1)  # a trailing 1-sample batch is dropped (BatchNorm)
    assert len(calls) == 15 * batches  # every training batch is augmented


def test_finetune_is_deterministic_for_a_seed() -> None:
    enc = ToyEncoder()
    kw: dict[str, Any] = dict(fraction=0.05, epochs=3, lr=0.05, batch_size=8, seed=4, device="cpu")
    assert finetune(enc, _blobs(200, 0), _blobs(50, 1), **kw) == finetune(
        enc, _blobs(200, 0), _blobs(50, 1), **kw)


def test_finetune_needs_out_dim() -> None:
    with pytest.raises(ValueError, match="out_dim"):
        finetune(nn.Linear(8, 4), _blobs(40, 0), _blobs(10, 1), epochs=1)
