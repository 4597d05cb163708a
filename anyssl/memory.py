"""Fixed-size FIFO memories of embeddings: MoCo's queue of negatives (He et al. 2020, sec. 3.2)
and NNCLR's support set of nearest-neighbour positives (Dwibedi et al. 2021, sec. 3.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anyssl.objectives import matmul_fp32

__all__ = ["Queue", "SupportSet", "nearest_neighbours"]


class Queue(nn.Module):
    """``size`` L2-normalized keys of dimension ``dim``, replaced oldest first.

    ``keys`` (size x dim) and ``ptr`` (the next row to overwrite, a 0-dim long tensor) are
    buffers, so they follow the module's device and dtype and are saved in checkpoints. The
    queue starts with random unit vectors, as MoCo's does. ``enqueue`` keeps the pointer on the
    device, so it never synchronizes with the host.

    Shape: keys: size x dim.
    """

    keys: Tensor
    ptr: Tensor

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"queue size and dim must be positive, got size={size}, dim={dim}")
        self.size, self.dim = size, dim
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Store ``keys`` (B x dim; normalized and detached here) in place of the oldest B.

        B need not divide ``size``: writes wrap around. With B > size only the newest ``size``
        keys are kept.
        """
        if keys.dim() != 2 or keys.shape[1] != self.dim:
            raise ValueError(f"queue holds keys of shape B x {self.dim}, got {tuple(keys.shape)}")
        b = keys.shape[0]
        dropped = max(b - self.size, 0)  # keys pushed out by newer keys of the same batch
        new = F.normalize(keys.detach()[dropped:], dim=1).to(self.keys)  # B' x dim
        idx = (self.ptr + dropped + torch.arange(new.shape[0], device=self.ptr.device)) % self.size
        self.keys.index_copy_(0, idx, new)
        self.ptr.copy_((self.ptr + b) % self.size)

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}"


@torch.no_grad()
def nearest_neighbours(z: Tensor, bank: Tensor, valid: int | Tensor | None = None) -> Tensor:
    """NNCLR's ``NN(z, Q)`` (Dwibedi et al. 2021, eq. 1): for each row of ``z``, the row of
    ``bank`` with the highest cosine similarity, without gradient.

    Only the first ``valid`` rows of ``bank`` are searched (default: all); with ``valid == 0``
    there is nothing to search and each row's neighbour is the row itself, normalized. ``valid``
    may be a 0-dim device tensor, so nothing synchronizes with the host. Similarities are
    computed in float32 under autocast (a bfloat16 argmax can pick another neighbour).

    Shape: z: N x D, bank: M x D, valid: 0 <= valid <= M. Returns N x D, rows of ``bank`` as
    stored (the bank's dtype).
    """
    if z.dim() != 2 or bank.dim() != 2 or z.shape[1] != bank.shape[1] or bank.shape[0] == 0:
        raise ValueError(f"z must be N x D and bank M x D (M > 0) with the same D, got "
                         f"{tuple(z.shape)} and {tuple(bank.shape)}")
    z = F.normalize(z.detach().to(bank.dtype), dim=1)  # N x D
    sim = matmul_fp32(z, F.normalize(bank, dim=1).T)  # N x M
    if valid is None:
        return bank[sim.argmax(dim=1)]  # N x D
    valid = torch.as_tensor(valid, device=bank.device)
    unwritten = torch.arange(bank.shape[0], device=bank.device) >= valid  # M
    idx = sim.masked_fill(unwritten, float("-inf")).argmax(dim=1)  # N
    return torch.where(valid > 0, bank[idx], z)  # N x D


class SupportSet(Queue):
    """NNCLR's support set (Dwibedi et al. 2021, sec. 3.2): a ``Queue`` of past projections
    whose nearest neighbour of each new projection replaces it as the positive.

    ``filled`` (a 0-dim long buffer, checkpointed with ``keys`` and ``ptr``) counts the rows
    written so far, capped at ``size``; ``nearest`` searches only those. The queue starts with
    random unit vectors, as MoCo's does, but they are never returned: before the first
    ``enqueue`` the neighbour of a projection is the projection itself. (lightly's
    ``NNMemoryBankModule`` and solo-learn's ``NNCLR`` search their random initial rows too, so
    their first steps pull towards random vectors until the queue has turned over once; the
    paper does not say.)

    Shape: keys: size x dim.
    """

    filled: Tensor

    def __init__(self, size: int, dim: int) -> None:
        super().__init__(size, dim)
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """As ``Queue.enqueue``, and count the written rows. Shape: keys: B x dim."""
        super().enqueue(keys)
        self.filled.copy_(torch.clamp(self.filled + keys.shape[0], max=self.size))

    def nearest(self, z: Tensor) -> Tensor:
        """``nearest_neighbours(z, keys, filled)``. Shape: z: N x dim -> N x dim, no grad."""
        return nearest_neighbours(z, self.keys, self.filled)
