"""The epoch order over shards: a permutation of every sample that keeps reads local.

Reading a tar by offset is cheap when consecutive reads hit the same file, so the order visits
the shards one after another (in a new shard order each epoch) and shuffles only inside windows
of ``window`` consecutive positions, like a shuffle buffer of that size, but with a
deterministic permutation: the order is a pure function of ``(seed, epoch)``, so every rank
computes the same one and a resumed run continues at the exact sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch

__all__ = ["WINDOW_STRIDE", "epoch_order"]

#: Window ``w`` of epoch ``e`` draws its permutation from ``mix_seed(seed, e * WINDOW_STRIDE + w,
#: ORDER)``; a prime larger than any plausible number of windows per epoch.
WINDOW_STRIDE = 1_000_003


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def epoch_order(shard_starts: Sequence[int], seed: int, epoch: int, window: int) -> torch.Tensor:
    """The global sample order of epoch ``epoch``: a permutation of ``range(total)`` (int64,
    ``total`` = ``shard_starts[-1]``).

    ``shard_starts`` holds each shard's first global index and the total at the end (shard
    ``s`` is ``shard_starts[s] ... shard_starts[s + 1] - 1``). The shards come in the order
    ``torch.randperm(num_shards)`` draws from ``mix_seed(seed, epoch, ORDER)``, their index
    ranges concatenated; then each run of ``window`` consecutive positions (window ``w`` =
    positions ``w * window ... (w + 1) * window - 1``) is permuted with a generator seeded
    ``mix_seed(seed, epoch * WINDOW_STRIDE + w, ORDER)``. So a window holds samples of at most
    two shards when ``window`` is at most the shard size. ``window <= 1`` keeps each shard's own
    order (shards are still permuted). Cost: one small permutation per window.
    """
    from anyssl.train.data import ORDER, mix_seed  # lazily: anyssl.train imports the trainer

    starts = [int(s) for s in shard_starts]
    if not starts or starts[0] != 0 or any(b < a for a, b in pairwise(starts)):
        raise ValueError(f"shard_starts must start at 0 and not decrease, got {starts[:8]}...")
    shards = torch.randperm(len(starts) - 1, generator=_generator(mix_seed(seed, epoch, ORDER)))
    pieces = [torch.arange(starts[s], starts[s + 1]) for s in shards.tolist()]
    order = torch.cat(pieces) if pieces else torch.zeros(0, dtype=torch.long)  # total
    if window > 1:
        for w, lo in enumerate(range(0, len(order), window)):
            seg = order[lo: lo + window]  # window (the last one may be shorter)
            g = _generator(mix_seed(seed, epoch * WINDOW_STRIDE + w, ORDER))
            order[lo: lo + window] = seg[torch.randperm(len(seg), generator=g)]
    return order
