"""Toy parts for method tests: an MLP encoder on 16-d vectors and noise views."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from anyssl.pair import KeyedViews, PairEncoder
from anyssl.views import ViewGenerator

IN_DIM = 16


class ToyEncoder(nn.Module):
    """MLP on N x 16 vectors with BatchNorm (so train-mode statistics matter). N x 16 -> N x 24."""

    def __init__(self, out_dim: int = 24) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.net = nn.Sequential(nn.Linear(IN_DIM, 32), nn.BatchNorm1d(32), nn.ReLU(),
                                 nn.Linear(32, out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class GaussianNoise:
    """Adds per-sample gaussian noise drawn from the view generator's generator."""

    def __init__(self, sigma: float = 0.3) -> None:
        self.sigma = sigma

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return x + self.sigma * torch.randn(x.shape, generator=generator, device=x.device)


@pytest.fixture
def make_parts() -> Callable[..., tuple[ToyEncoder, ViewGenerator]]:
    """``make_parts(seed=0, n_views=2) -> (encoder, views)`` with seeded views."""

    def make(seed: int = 0, n_views: int = 2) -> tuple[ToyEncoder, ViewGenerator]:
        torch.manual_seed(seed)
        views = ViewGenerator(GaussianNoise(), n_views)
        views.manual_seed(seed)
        return ToyEncoder(), views

    return make


@pytest.fixture
def make_pair_parts() -> Callable[..., tuple[PairEncoder, KeyedViews]]:
    """``make_pair_parts(seed=0) -> (encoder, views)``: two toy towers ``a`` and ``b`` on
    16-d vectors and per-tower noise views, for methods with paired inputs (clip)."""

    def make(seed: int = 0) -> tuple[PairEncoder, KeyedViews]:
        torch.manual_seed(seed)
        views = KeyedViews({"a": GaussianNoise(), "b": GaussianNoise()})
        views.manual_seed(seed)
        return PairEncoder({"a": ToyEncoder(), "b": ToyEncoder()}), views

    return make


def pair_inputs(batch: tuple[Tensor, Tensor]) -> tuple[dict[str, Tensor], Tensor]:
    """A toy batch as paired inputs: ``b`` is a fixed function (reversal) of ``a``."""
    x, y = batch
    return {"a": x, "b": x.flip(1)}, y


@pytest.fixture
def toy_batch() -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(123)
    return torch.randn(32, IN_DIM, generator=g), torch.full((32,), -1, dtype=torch.long)
