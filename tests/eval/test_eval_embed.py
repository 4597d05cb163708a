"""embed(): frozen features equal a direct eval-mode forward; train/eval mode is restored."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset, default_collate

from anyssl.eval.embed import embed, module_device, topk_accuracies
from anyssl.modality import move_to_device


class ToyEncoder(nn.Module):
    def __init__(self, in_dim: int = 5, out_dim: int = 3) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.bn = nn.BatchNorm1d(out_dim)
        self.drop = nn.Dropout(0.5)
        self.net = nn.Sequential(nn.Linear(in_dim, out_dim), self.bn, self.drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _data(n: int = 23, d: int = 5) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(n, d, generator=g), torch.randint(0, 4, (n,), generator=g))


def test_embed_equals_direct_eval_forward_and_restores_train_mode() -> None:
    torch.manual_seed(0)
    enc = ToyEncoder()
    stats = enc.bn.running_mean
    assert stats is not None
    stats.fill_(0.3)  # make eval-mode BatchNorm differ from train mode
    data = _data()
    enc.train()
    running = stats.clone()
    feats, labels = embed(enc, data, batch_size=7)  # 7 does not divide 23: a partial batch
    assert enc.training and enc.bn.training and enc.drop.training
    assert torch.equal(stats, running)  # eval mode: stats untouched
    enc.eval()
    with torch.no_grad():
        expected = enc(data.tensors[0]).numpy()
    assert feats.dtype == np.float32 and labels.dtype == np.int64
    assert feats.shape == (23, 3)
    np.testing.assert_allclose(feats, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(labels, data.tensors[1].numpy())


def test_embed_keeps_eval_mode() -> None:
    enc = ToyEncoder().eval()
    embed(enc, _data(), batch_size=5)
    assert not enc.training


def test_embed_uses_collate_and_to_device() -> None:
    calls = {"collate": 0, "to_device": 0}

    def collate(samples: list[Any]) -> Any:
        calls["collate"] += 1
        x, y = default_collate(samples)
        return {"x": x}, y

    def to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
        calls["to_device"] += 1
        assert device == torch.device("cpu")
        return move_to_device(batch, device, non_blocking)

    class DictEncoder(ToyEncoder):
        def forward(self, x: Any) -> torch.Tensor:
            return self.net(x["x"])

    enc = DictEncoder()
    feats, _ = embed(enc, _data(10), batch_size=4, collate=collate, to_device=to_device)
    assert calls == {"collate": 3, "to_device": 3}
    assert feats.shape == (10, 3)


def test_embed_bad_inputs() -> None:
    with pytest.raises(ValueError, match="empty"):
        embed(ToyEncoder(), TensorDataset(torch.zeros(0, 5), torch.zeros(0)))
    with pytest.raises(ValueError, match="batch_size"):
        embed(ToyEncoder(), _data(), batch_size=0)

    class Bad(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, None, :]

    with pytest.raises(ValueError, match="B x D"):
        embed(Bad(), _data())


def test_module_device_of_parameterless_module_is_cpu() -> None:
    assert module_device(nn.Identity()) == torch.device("cpu")
    assert module_device(ToyEncoder()) == torch.device("cpu")


def test_topk_accuracies_by_hand() -> None:
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.1, 0.8, 0.1]])
    assert topk_accuracies(scores, torch.tensor([0, 1, 1])) == {"top1": 2 / 3}
    wide = torch.arange(7.0).repeat(2, 1)  # class 6 ranks first, class 2 fifth, class 1 sixth
    out = topk_accuracies(wide, torch.tensor([2, 1]))
    assert out == {"top1": 0.0, "top5": 0.5}
