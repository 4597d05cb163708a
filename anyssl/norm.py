"""Split BatchNorm: several BatchNorm groups in one process, as several GPUs would have.

MoCo (He et al. 2020, sec. 3.3) found that BatchNorm lets a model "cheat" the instance
discrimination task: when a query and its key are normalized with statistics of the same set of
images, the statistics leak which key is the positive. On several GPUs the reference code
shuffles the key batch across GPUs (``anyssl.methods._shuffle_bn``); on one GPU its CIFAR-10 demo
(facebookresearch/moco, ``colab/moco_cifar10_demo.ipynb``) splits every BatchNorm into 8 groups
(``SplitBatchNorm``, ``--bn-splits 8``, "to simulate 8 GPUs") and shuffles the key batch before
the key encoder. This module holds that BatchNorm:

- ``split_batch_norm`` is the math: batch statistics per group of samples, the running
  statistics updated from the mean of the groups' (the demo's ``SplitBatchNorm.forward``).
- ``SplitBatchNorm`` is a drop-in ``BatchNorm{1,2,3}d`` with the same parameters and buffers
  (so checkpoints and exported weights are unchanged) whose ``splits`` is 1 (plain BatchNorm)
  unless ``batchnorm_splits`` raises it for the duration of a forward pass: evaluation and
  fine-tuning of the same encoder use ordinary BatchNorm.
- ``use_split_batchnorm`` swaps a module tree's BatchNorm layers for ``SplitBatchNorm``.

Samples go to groups in an interleaved order: sample ``i`` is in group ``i % splits`` (the
demo's ``view(-1, C * splits, H, W)``, one fused BatchNorm call when the batch divides evenly
and is contiguous; otherwise one call per group). A batch smaller than ``2 * splits`` uses
``batch // 2`` groups, so that every group holds at least two samples.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["SplitBatchNorm", "active_splits", "batchnorm_splits", "split_batch_norm",
           "use_split_batchnorm"]


def active_splits(batch: int, splits: int) -> int:
    """The number of groups a batch of ``batch`` samples is split into: ``splits``, but at most
    ``batch // 2`` (at least two samples per group) and at least 1."""
    return max(1, min(splits, batch // 2))


def split_batch_norm(
    x: Tensor, splits: int, running_mean: Tensor | None, running_var: Tensor | None,
    weight: Tensor | None, bias: Tensor | None, momentum: float, eps: float,
) -> Tensor:
    """Training-mode BatchNorm of ``x`` with statistics per group (sample ``i`` in group
    ``i % splits``). The running statistics, when given, move towards the mean over the groups
    of each group's batch statistics (unbiased variance), as the MoCo demo's SplitBatchNorm
    does; ``momentum`` is the update factor (torch's ``exponential_average_factor``).

    Shape:
        x: N x C x ... (N >= 1); running_mean, running_var, weight, bias: C. Returns x's shape.
    """
    n, c = x.shape[0], x.shape[1]
    if splits <= 1:
        return F.batch_norm(x, running_mean, running_var, weight, bias, True, momentum, eps)
    tracked = running_mean is not None and running_var is not None
    if n % splits == 0 and x.is_contiguous():
        # one call: the groups side by side as channels, (N/s) x (s*C) x ...
        rm = running_mean.repeat(splits) if running_mean is not None else None  # s*C
        rv = running_var.repeat(splits) if running_var is not None else None  # s*C
        w = weight.repeat(splits) if weight is not None else None
        b = bias.repeat(splits) if bias is not None else None
        grouped = x.view(n // splits, c * splits, *x.shape[2:])
        out = F.batch_norm(grouped, rm, rv, w, b, True, momentum, eps).view_as(x)
        if tracked and rm is not None and rv is not None:
            _set_mean_of_groups(running_mean, running_var, rm.view(splits, c), rv.view(splits, c))
        return out
    out = torch.empty_like(x)
    rms: list[Tensor] = []
    rvs: list[Tensor] = []
    for j in range(splits):  # uneven or non-contiguous batch: one call per group
        rm = running_mean.clone() if running_mean is not None else None
        rv = running_var.clone() if running_var is not None else None
        out[j::splits] = F.batch_norm(x[j::splits], rm, rv, weight, bias, True, momentum, eps)
        if rm is not None and rv is not None:
            rms.append(rm)
            rvs.append(rv)
    if tracked:
        _set_mean_of_groups(running_mean, running_var, torch.stack(rms), torch.stack(rvs))
    return out


@torch.no_grad()
def _set_mean_of_groups(running_mean: Tensor | None, running_var: Tensor | None,
                        means: Tensor, variances: Tensor) -> None:
    """Write the mean over groups (dim 0) of the updated running statistics back."""
    if running_mean is not None and running_var is not None:
        running_mean.copy_(means.mean(dim=0))
        running_var.copy_(variances.mean(dim=0))


class SplitBatchNorm(_BatchNorm):
    """BatchNorm over ``splits`` groups of the batch in training mode (``split_batch_norm``);
    ordinary BatchNorm when ``splits`` is 1 (the default) or in eval mode. Holds the same
    parameters and buffers as ``nn.BatchNorm1d/2d/3d``, under the same names.

    Shape:
        N x C x ... -> the same shape.
    """

    splits: int

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.splits = 1

    @classmethod
    def from_batchnorm(cls, bn: _BatchNorm) -> SplitBatchNorm:
        """A ``SplitBatchNorm`` sharing ``bn``'s parameters and buffers (no copy)."""
        new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
        new.weight, new.bias = bn.weight, bn.bias
        new.running_mean, new.running_var = bn.running_mean, bn.running_var
        new.num_batches_tracked = bn.num_batches_tracked
        return new.train(bn.training)

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"BatchNorm expects N x C x ... input, got {tuple(input.shape)}")

    def forward(self, input: Tensor) -> Tensor:
        splits = active_splits(input.shape[0], self.splits)
        if splits <= 1 or not self.training:
            return super().forward(input)
        self._check_input_dim(input)
        return split_batch_norm(input, splits, self.running_mean if self.track_running_stats
                                else None, self.running_var if self.track_running_stats
                                else None, self.weight, self.bias, self._update_factor(),
                                self.eps)

    def _update_factor(self) -> float:
        """torch's ``exponential_average_factor`` of this step (counts the step)."""
        if not self.track_running_stats or self.num_batches_tracked is None:
            return 0.0 if self.momentum is None else self.momentum
        self.num_batches_tracked.add_(1)
        if self.momentum is None:  # cumulative moving average
            return 1.0 / float(self.num_batches_tracked)
        return self.momentum

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, splits={self.splits}"


def use_split_batchnorm(module: nn.Module) -> int:
    """Replace every BatchNorm layer under ``module`` (not SyncBatchNorm, not already split) by a
    ``SplitBatchNorm`` sharing its weights; returns how many were replaced. ``module`` itself
    must not be a BatchNorm layer (its parent holds the reference to swap)."""
    count = 0
    for name, child in module.named_children():
        if isinstance(child, _BatchNorm) and not isinstance(
                child, (SplitBatchNorm, nn.SyncBatchNorm)):
            setattr(module, name, SplitBatchNorm.from_batchnorm(child))
            count += 1
        else:
            count += use_split_batchnorm(child)
    return count


@contextlib.contextmanager
def batchnorm_splits(module: nn.Module, splits: int) -> Iterator[None]:
    """Within the block, every ``SplitBatchNorm`` under ``module`` normalizes ``splits`` groups
    (in training mode); each gets its previous ``splits`` back on exit."""
    layers = [m for m in module.modules() if isinstance(m, SplitBatchNorm)]
    before = [m.splits for m in layers]
    for m in layers:
        m.splits = splits
    try:
        yield
    finally:
        for m, s in zip(layers, before, strict=True):
            m.splits = s
