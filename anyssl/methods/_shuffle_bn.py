"""MoCo's shuffling BatchNorm across processes (He et al. 2020, sec. 3.3; the reference code's
``_batch_shuffle_ddp`` and ``_batch_unshuffle_ddp``).

BatchNorm in the key encoder normalizes each process's sub-batch with its own statistics; if
the query and its key sit in the same sub-batch, those statistics leak which key is the
positive. Shuffling the key batch across processes before the key encoder, and restoring the
order after it, puts a query's key among other samples. One permutation of the global batch is
drawn on rank 0 and broadcast, so every rank agrees on it. Both calls need a process group.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from anyssl import distributed

__all__ = ["shuffle_across_ranks", "unshuffle_across_ranks"]


def _own_rows(x_all: Tensor, index: Tensor, n: int) -> Tensor:
    """The rows ``x_all[index[rank*n:(rank+1)*n]]``: this rank's slice of a reordered batch."""
    r = distributed.rank()
    return x_all[index[r * n:(r + 1) * n]]


@torch.no_grad()
def shuffle_across_ranks(x: Tensor) -> tuple[Tensor, Tensor]:
    """This rank's slice of the global key batch after a random permutation.

    Returns the shuffled slice and the index that undoes the permutation (for
    ``unshuffle_across_ranks``). Every rank must pass the same number of rows.

    Shape: x N x ... -> (N x ..., (N * world_size) long).
    """
    x_all = distributed.gather_no_grad(x)  # NW x ...
    if distributed.rank() == 0:
        perm = torch.randperm(x_all.shape[0], device=x.device)  # NW
    else:
        perm = torch.empty(x_all.shape[0], dtype=torch.long, device=x.device)
    dist.broadcast(perm, src=0)  # rank 0's permutation everywhere
    return _own_rows(x_all, perm, x.shape[0]), torch.argsort(perm)


@torch.no_grad()
def unshuffle_across_ranks(k: Tensor, unshuffle: Tensor) -> Tensor:
    """The keys back in the original order: row ``i`` is the key of this rank's input ``i``.

    Shape: k N x ... (keys of the shuffled slice), unshuffle (N * world_size) -> N x ...
    """
    return _own_rows(distributed.gather_no_grad(k), unshuffle, k.shape[0])
