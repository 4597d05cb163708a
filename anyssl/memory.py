"""A fixed-size FIFO queue of keys: MoCo's dictionary of negatives (He et al. 2020, sec. 3.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Queue"]


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
