"""Rank, world size and all-gather helpers that work with or without a process group.

With no ``torch.distributed`` process group (one device, the usual case in tests) ``rank()`` is
0, ``world_size()`` is 1 and both gathers return their input unchanged, so the losses and methods
never need a process group. Losses take ``rank`` as an argument (as open_clip's ``ClipLoss``
does), which keeps their multi-device math testable on one CPU.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["all_gather_object", "barrier", "broadcast_object", "broadcast_state", "gather_no_grad",
           "gather_with_grad", "is_distributed", "rank", "world_size"]


def is_distributed() -> bool:
    """True when a ``torch.distributed`` process group is initialized."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in the default group; 0 without a process group."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes in the default group; 1 without a process group."""
    return dist.get_world_size() if is_distributed() else 1


class _GatherWithGrad(torch.autograd.Function):
    """``all_gather`` whose backward sums every rank's gradient for each slice and hands each
    rank the gradient of its own slice (lightly's ``GatherLayer``; the same gradient as
    ``torch.distributed.nn.functional.all_gather``). Averaged by DDP, this is the gradient of
    the mean of the per-rank losses, i.e. of the global loss."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> tuple[Tensor, ...]:
        out = [torch.empty_like(x) for _ in range(world_size())]
        dist.all_gather(out, x.contiguous())
        return tuple(out)

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> Tensor:
        all_grads = torch.stack(grads)  # W x N x ...
        dist.all_reduce(all_grads)  # sum over ranks: each rank's loss touches every slice
        return all_grads[rank()]


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` from every rank along dim 0, differentiable for the local slice.

    Shape: ``x``: N x ... -> (N * world_size) x ..., rank ``r``'s rows at ``r*N:(r+1)*N``.
    Every rank must pass the same shape. Identity when ``world_size() == 1``.
    """
    if world_size() == 1:
        return x
    return torch.cat(_GatherWithGrad.apply(x), dim=0)


@torch.no_grad()
def gather_no_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` from every rank along dim 0 without autograd (MoCo's keys before they
    are enqueued). Shape: N x ... -> (N * world_size) x ...; ``x.detach()`` on one process."""
    if world_size() == 1:
        return x.detach()
    out = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out, dim=0)


# ---- collectives the trainer needs; each is a no-op (or the identity) without a process group ----
def barrier() -> None:
    """Wait until every rank gets here; nothing without a process group."""
    if world_size() > 1:
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` (any picklable value) on every rank; ``obj`` itself on one process.
    Only for small values (verdicts, flags): it pickles."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, device=_comm_device())
    return box[0]


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), indexed by rank; ``[obj]`` on one process."""
    if world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


@torch.no_grad()
def broadcast_state(module: torch.nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers (a MoCo queue, BatchNorm statistics) into
    every rank's ``module`` in place, so all ranks start from the same state; nothing on one
    process. Every rank's module must have the same tensors in the same order."""
    if world_size() == 1:
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=src)


def _comm_device() -> torch.device | None:
    """The device object collectives stage through: the current GPU for NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return None
