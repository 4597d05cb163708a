"""Where batches come from and where they go: the device, a resumable epoch sampler, the loader,
and the per-step seeds that make a run (and a resumed run) draw the same data and views.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sized
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["EpochSampler", "make_loader", "mix_seed", "rank_seed", "resolve_device",
           "resolve_workers", "steps_per_epoch"]

#: At most this many loader workers per process when the count is chosen automatically (JPEG
#: decoding is CPU-bound: a GPU step of ResNet-50 consumes what about 16 cores decode).
MAX_AUTO_WORKERS = 16
#: Batches each worker decodes ahead (DataLoader's ``prefetch_factor``).
PREFETCH_FACTOR = 4


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


#: ``mix_seed`` streams: the views of a step, the data order of an epoch, the loader's workers,
#: the seed of a rank.
VIEWS, ORDER, WORKERS, RANKS = 0, 1, 2, 3


def mix_seed(seed: int, index: int, stream: int = VIEWS) -> int:
    """A 63-bit seed derived from ``(seed, stream, index)`` (splitmix64 finalizer), so that
    nearby indices and different streams give unrelated random streams."""
    z = (seed * 0x9E3779B97F4A7C15 + stream * 0xD1B54A32D192ED03
         + (index + 1) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return (z ^ (z >> 31)) >> 1


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s views, global RNGs and loader workers: ``seed`` itself on rank 0
    (so a one-process run keeps its seeds), ``mix_seed(seed, rank, RANKS)`` on the others, so
    that no two ranks draw the same augmentations or dropout masks."""
    return seed if rank == 0 else mix_seed(seed, rank, RANKS)


class EpochSampler(Sampler[int]):
    """Indices of a seeded permutation per epoch (``mix_seed(seed, epoch, ORDER)``), optionally
    starting at ``start`` so a resumed run skips the samples its interrupted epoch consumed.

    With ``world_size`` W > 1 it yields one rank's shard for a drop-last loader of
    ``batch_size`` B: step ``k`` of the epoch takes the global batch at positions
    ``k*W*B ... (k+1)*W*B - 1`` of the epoch order (the batch a one-process run of batch W*B
    takes at step ``k``) and rank ``r`` gets its ``r``-th contiguous block of B,
    ``k*W*B + r*B ... k*W*B + (r+1)*B - 1``. So the ranks' batches of a step, concatenated in rank
    order (what an all-gather assembles), are exactly the one-process batch, in the same order;
    an incomplete last global batch is dropped by every rank alike. ``start`` is a position in
    the epoch order (``k*W*B`` to resume at step ``k``). Like ``DistributedSampler`` the order is
    the same on every rank and reshuffled per epoch from ``(seed, epoch)``; unlike it, shards are
    contiguous blocks per step, not a stride over the epoch, and nothing is padded.

    ``order_fn`` (epoch -> permutation of ``range(size)``) replaces the seeded permutation, e.g.
    a dataset's shard-local ``epoch_order`` (``anyssl.shards``); it must be a pure function of
    the epoch, as everything above relies on every rank and a resumed run computing the same
    order.
    """

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True, *, rank: int = 0,
                 world_size: int = 1, batch_size: int = 1,
                 order_fn: Callable[[int], torch.Tensor] | None = None) -> None:
        if not 0 <= rank < world_size or batch_size < 1:
            raise ValueError(f"need 0 <= rank < world_size and batch_size >= 1, got rank={rank}, "
                             f"world_size={world_size}, batch_size={batch_size}")
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.rank, self.world_size, self.batch_size = rank, world_size, batch_size
        self.order_fn = order_fn
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch ``epoch`` from position ``start`` (of the whole epoch order) next."""
        if not 0 <= start <= self.size:
            raise ValueError(f"start must be in [0, {self.size}], got {start}")
        self.epoch, self.start = epoch, start

    def order(self, epoch: int) -> torch.Tensor:
        """The full index order of ``epoch`` (``size`` long tensor), the same on every rank."""
        if self.order_fn is not None:
            return self._checked(self.order_fn(epoch), epoch)
        if not self.shuffle:
            return torch.arange(self.size)
        g = torch.Generator().manual_seed(mix_seed(self.seed, epoch, ORDER))
        return torch.randperm(self.size, generator=g)

    def _checked(self, order: torch.Tensor, epoch: int) -> torch.Tensor:
        """``order`` as int64 when it is a permutation of ``range(size)``; ``ValueError`` else."""
        ok = (isinstance(order, torch.Tensor) and order.dim() == 1 and len(order) == self.size
              and not order.is_floating_point() and not order.is_complex())
        if ok and self.size:
            order = order.long()
            ok = (int(order.min()) >= 0 and int(order.max()) < self.size
                  and bool((torch.bincount(order, minlength=self.size) == 1).all()))
        if not ok:
            what = (f"{tuple(order.shape)} {order.dtype} tensor" if isinstance(order, torch.Tensor)
                    else type(order).__name__)
            raise ValueError(f"the dataset's epoch_order (the sampler's order_fn) must return a "
                             f"permutation of range({self.size}) for epoch {epoch}; got a {what} "
                             "that is not one")
        return order.long()

    def __iter__(self) -> Iterator[int]:
        rest = self.order(self.epoch)[self.start:]
        if self.world_size == 1:
            yield from rest.tolist()
            return
        w, b = self.world_size, self.batch_size
        steps = len(rest) // (w * b)
        blocks = rest[: steps * w * b].view(steps, w, b)  # step x rank x sample
        yield from blocks[:, self.rank].reshape(-1).tolist()

    def __len__(self) -> int:
        if self.world_size == 1:
            return self.size - self.start
        span = self.world_size * self.batch_size
        return (self.size - self.start) // span * self.batch_size


def usable_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def resolve_workers(requested: int | None, dataset: Any, processes_here: int = 1
                    ) -> tuple[int, str]:
    """The loader's worker count and a note saying why.

    ``requested`` wins. Otherwise a dataset that decodes files on access (``file_backed``, e.g.
    a folder of JPEGs) gets one worker per core this process's share of the machine leaves
    after the training process itself (``processes_here`` processes on this machine), at least
    1 and at most ``MAX_AUTO_WORKERS``; in-memory data gets 0 (a worker would only copy
    tensors the training process already holds)."""
    if requested is not None:
        return requested, f"data loader: {requested} worker process(es) (--num-workers)"
    if not getattr(dataset, "file_backed", False):
        return 0, "data loader: in the training process (the data is in memory)"
    share = max(1, usable_cores() // max(1, processes_here))
    n = max(1, min(MAX_AUTO_WORKERS, share - 1))
    return n, (f"data loader: {n} worker process(es) decode the files ({share} core(s) for this "
               "process; --num-workers N to change)")


def make_loader(dataset: Dataset[Any], batch_size: int, sampler: EpochSampler,
                collate: Callable[[list[Any]], Any], num_workers: int, pin_memory: bool,
                seed: int) -> DataLoader[Any]:
    """A drop-last loader over ``sampler``. Its own generator seeds the workers, so building or
    iterating it never draws from torch's global RNG (which a checkpoint restores). Workers,
    when there are any, persist across epochs and decode ``PREFETCH_FACTOR`` batches ahead."""
    workers: dict[str, Any] = ({"persistent_workers": True, "prefetch_factor": PREFETCH_FACTOR}
                               if num_workers > 0 else {})
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, drop_last=True, collate_fn=collate,
        num_workers=num_workers, pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(mix_seed(seed, 0, WORKERS)), **workers,
    )


def steps_per_epoch(dataset: Sized, batch_size: int, world_size: int = 1) -> int:
    """Full global batches (``world_size`` x ``batch_size`` samples) per epoch; ``ValueError``
    when the dataset is smaller than one."""
    n, span = len(dataset), batch_size * world_size
    if n < span:
        if world_size == 1:
            raise ValueError(
                f"the training set has {n} samples, fewer than one batch of {batch_size}; "
                f"lower --batch-size (to at most {n})"
            )
        raise ValueError(
            f"the training set has {n} samples, fewer than one global batch of {span} "
            f"({world_size} processes x --batch-size {batch_size}); lower --batch-size (to at "
            f"most {n // world_size}) or use fewer processes"
        )
    return n // span
