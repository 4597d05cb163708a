"""A toy method and dataset for the trainer tests: a tiny MLP encoder with dropout and batch norm,
noise views from a ViewGenerator, a MoCo-style queue buffer and an EMA target updated in
``on_step_end``. Every stateful piece a real method has, in 60 lines."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from anyssl.train import TrainConfig
from anyssl.views import ViewGenerator

DIM = 6


class Noise:
    """Adds N(0, std^2) noise drawn from the view generator."""

    def __init__(self, std: float = 0.1) -> None:
        self.std = std

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return x + self.std * torch.randn(x.shape, generator=generator, device=x.device)


class ToyEncoder(nn.Sequential):
    def __init__(self, in_dim: int = DIM, out_dim: int = 4) -> None:
        super().__init__(nn.Linear(in_dim, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(8, out_dim))
        self.out_dim = out_dim


class ToyMethod(nn.Module):
    """InfoNCE of a query against an EMA key and a queue of past keys."""

    train_defaults: ClassVar[dict[str, Any]] = {"optimizer": "sgd", "lr": 0.4, "weight_decay": 1e-3,
                                      "schedule": "cosine", "warmup_epochs": 1.0}

    def __init__(self, queue_size: int = 12, nan_at: int | None = None) -> None:
        super().__init__()
        self.encoder = ToyEncoder()
        self.target = copy.deepcopy(self.encoder).requires_grad_(False)
        self.views = ViewGenerator(Noise(0.1), n_views=2)
        self.queue: Tensor
        self.ptr: Tensor
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, 4), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.nan_at, self.calls = nan_at, 0
        self.step_ends: list[tuple[int, int]] = []

    def training_step(self, batch: Any) -> tuple[Tensor, dict[str, Any]]:
        x, _ = batch
        v1, v2 = self.views(x)
        q = F.normalize(self.encoder(v1), dim=1)  # q: B x 4
        with torch.no_grad():
            k = F.normalize(self.target(v2), dim=1)  # k: B x 4
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ self.queue.clone().T], 1) / 0.2
        loss = F.cross_entropy(logits, torch.zeros(len(x), dtype=torch.long))
        n, i = len(self.queue), int(self.ptr)
        self.queue[(torch.arange(len(k)) + i) % n] = k.to(self.queue)  # autocast: bf16/fp16 keys
        self.ptr.fill_((i + len(k)) % n)
        self.calls += 1
        if self.nan_at is not None and self.calls > self.nan_at:
            loss = loss * float("nan")
        return loss, {"pos": logits[:, 0].mean().detach()}

    @torch.no_grad()
    def on_step_end(self, step: int, max_steps: int) -> None:
        self.step_ends.append((step, max_steps))
        for t, s in zip(self.target.parameters(), self.encoder.parameters(), strict=True):
            t.mul_(0.9).add_(s, alpha=0.1)


class ToySet(Dataset[tuple[Tensor, int]]):
    """``n`` random DIM-vectors with labels; ``encoder_kwargs`` like a modality dataset."""

    def __init__(self, n: int = 64, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, DIM, generator=g)
        self.y = torch.randint(0, 3, (n,), generator=g)
        self.encoder_kwargs = {"in_dim": DIM}
        self.num_classes = 3

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self.x[i], int(self.y[i])


def toy_config(out: Any, **kw: Any) -> TrainConfig:
    """A 2-epoch CPU run of 8 steps per epoch on ``ToySet(64)``."""
    base: dict[str, Any] = {"modality": "toy", "method": "toymoco", "epochs": 2,
                            "batch_size": 8, "device": "cpu", "out": str(out), "log_every": 3,
                            "eval": False}
    return TrainConfig.from_dict({**base, **kw})


def make_method(seed: int = 0, **kw: Any) -> ToyMethod:
    torch.manual_seed(seed)
    return ToyMethod(**kw)
