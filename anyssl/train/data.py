"""Where batches come from and where they go: the device, a resumable epoch sampler, the loader,
and the per-step seeds that make a run (and a resumed run) draw the same data and views.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sized
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["EpochSampler", "make_loader", "mix_seed", "resolve_device", "steps_per_epoch"]


def resolve_device(spec: str | torch.device) -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; also ``"cpu"``, ``"cuda"``, ``"cuda:N"``."""
    if isinstance(spec, torch.device):
        return spec
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except (RuntimeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {spec!r} asked for, but CUDA is not available; use cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {spec!r} does not exist: {torch.cuda.device_count()} CUDA device(s) seen"
            )
    return dev


#: ``mix_seed`` streams: the views of a step, the data order of an epoch, the loader's workers.
VIEWS, ORDER, WORKERS = 0, 1, 2


def mix_seed(seed: int, index: int, stream: int = VIEWS) -> int:
    """A 63-bit seed derived from ``(seed, stream, index)`` (splitmix64 finalizer), so that
    nearby indices and different streams give unrelated random streams."""
    z = (seed * 0x9E3779B97F4A7C15 + stream * 0xD1B54A32D192ED03
         + (index + 1) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return (z ^ (z >> 31)) >> 1


class EpochSampler(Sampler[int]):
    """Indices of a seeded permutation per epoch (``mix_seed(seed, epoch, ORDER)``), optionally
    starting at ``start`` so a resumed run skips the samples its interrupted epoch consumed."""

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True) -> None:
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch ``epoch`` from position ``start`` next."""
        if not 0 <= start <= self.size:
            raise ValueError(f"start must be in [0, {self.size}], got {start}")
        self.epoch, self.start = epoch, start

    def order(self, epoch: int) -> torch.Tensor:
        """The full index order of ``epoch`` (``size`` long tensor)."""
        if not self.shuffle:
            return torch.arange(self.size)
        g = torch.Generator().manual_seed(mix_seed(self.seed, epoch, ORDER))
        return torch.randperm(self.size, generator=g)

    def __iter__(self) -> Iterator[int]:
        yield from self.order(self.epoch)[self.start:].tolist()

    def __len__(self) -> int:
        return self.size - self.start


def make_loader(dataset: Dataset[Any], batch_size: int, sampler: EpochSampler,
                collate: Callable[[list[Any]], Any], num_workers: int, pin_memory: bool,
                seed: int) -> DataLoader[Any]:
    """A drop-last loader over ``sampler``. Its own generator seeds the workers, so building or
    iterating it never draws from torch's global RNG (which a checkpoint restores)."""
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, drop_last=True, collate_fn=collate,
        num_workers=num_workers, pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(mix_seed(seed, 0, WORKERS)),
    )


def steps_per_epoch(dataset: Sized, batch_size: int) -> int:
    """Full batches per epoch; ``ValueError`` when the dataset is smaller than one batch."""
    n = len(dataset)
    if n < batch_size:
        raise ValueError(
            f"the training set has {n} samples, fewer than one batch of {batch_size}; "
            f"lower --batch-size (to at most {n})"
        )
    return n // batch_size
