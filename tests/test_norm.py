"""Split BatchNorm: parity with the MoCo CIFAR-10 demo's SplitBatchNorm, per-group statistics,
plain BatchNorm outside ``batchnorm_splits``, and unchanged parameter and buffer names."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anyssl.norm import (
    SplitBatchNorm,
    active_splits,
    batchnorm_splits,
    split_batch_norm,
    use_split_batchnorm,
)


class DemoSplitBatchNorm(nn.BatchNorm2d):
    """A transcription of ``SplitBatchNorm`` from facebookresearch/moco's
    ``colab/moco_cifar10_demo.ipynb`` (training branch), the reference."""

    def __init__(self, num_features: int, num_splits: int) -> None:
        super().__init__(num_features)
        self.num_splits = num_splits

    def forward(self, input: Tensor) -> Tensor:
        n, c, h, w = input.shape
        running_mean_split = self.running_mean.repeat(self.num_splits)
        running_var_split = self.running_var.repeat(self.num_splits)
        outcome = F.batch_norm(
            input.view(-1, c * self.num_splits, h, w), running_mean_split, running_var_split,
            self.weight.repeat(self.num_splits), self.bias.repeat(self.num_splits),
            True, self.momentum, self.eps).view(n, c, h, w)
        self.running_mean.data.copy_(running_mean_split.view(self.num_splits, c).mean(dim=0))
        self.running_var.data.copy_(running_var_split.view(self.num_splits, c).mean(dim=0))
        return outcome


def _pair(channels: int = 3, splits: int = 4) -> tuple[SplitBatchNorm, DemoSplitBatchNorm]:
    torch.manual_seed(0)
    demo = DemoSplitBatchNorm(channels, splits)
    with torch.no_grad():
        demo.weight.uniform_(0.5, 1.5)
        demo.bias.uniform_(-0.5, 0.5)
        demo.running_mean.uniform_(-1, 1)
        demo.running_var.uniform_(0.5, 2)
    ours = SplitBatchNorm.from_batchnorm(copy.deepcopy(demo))
    ours.splits = splits
    return ours, demo


def test_matches_the_moco_demo_values_gradients_and_running_statistics() -> None:
    ours, demo = _pair()
    x = torch.randn(16, 3, 5, 5) * 2 + 1
    x_ours, x_demo = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    y_ours, y_demo = ours(x_ours), demo(x_demo)
    torch.testing.assert_close(y_ours, y_demo)
    g = torch.randn_like(y_demo)
    (y_ours * g).sum().backward()
    (y_demo * g).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_demo.grad)
    torch.testing.assert_close(ours.weight.grad, demo.weight.grad)
    torch.testing.assert_close(ours.bias.grad, demo.bias.grad)
    torch.testing.assert_close(ours.running_mean, demo.running_mean)
    torch.testing.assert_close(ours.running_var, demo.running_var)
    assert int(ours.num_batches_tracked) == 1


def test_each_group_is_normalized_with_its_own_statistics() -> None:
    x = torch.randn(12, 4) * torch.arange(1, 13.0).view(12, 1)  # very different sample scales
    y = split_batch_norm(x, 3, None, None, None, None, 0.1, 1e-5)
    for j in range(3):  # group j: samples j, j+3, j+6, j+9
        torch.testing.assert_close(y[j::3], F.batch_norm(x[j::3], None, None, training=True))
    assert not torch.allclose(y, F.batch_norm(x, None, None, training=True))


@pytest.mark.parametrize("shape", [(10, 3, 4, 4), (16, 3, 4, 4)], ids=["uneven", "strided"])
def test_per_group_path_equals_the_fused_path_math(shape: tuple[int, ...]) -> None:
    """An uneven batch, or a non-contiguous one, goes group by group with the same grouping."""
    ours, _ = _pair(splits=4)
    x = torch.randn(*shape)
    if shape[0] == 16:  # non-contiguous (as a channels_last batch on a GPU would be)
        x = x.contiguous(memory_format=torch.channels_last)
        assert not x.is_contiguous()
    ref = copy.deepcopy(ours)
    y = ours(x.requires_grad_(True))
    want = torch.empty_like(x)
    means, variances = [], []
    for j in range(4):
        rm, rv = ref.running_mean.clone(), ref.running_var.clone()
        want[j::4] = F.batch_norm(x[j::4], rm, rv, ref.weight, ref.bias, True, 0.1, ref.eps)
        means.append(rm)
        variances.append(rv)
    torch.testing.assert_close(y, want)
    torch.testing.assert_close(ours.running_mean, torch.stack(means).mean(0))
    torch.testing.assert_close(ours.running_var, torch.stack(variances).mean(0))
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_one_split_and_eval_mode_are_plain_batchnorm() -> None:
    bn = nn.BatchNorm2d(3)
    split = SplitBatchNorm.from_batchnorm(copy.deepcopy(bn))
    x = torch.randn(8, 3, 4, 4)
    torch.testing.assert_close(split(x), bn(x))  # splits = 1 (the default): BatchNorm
    split.splits = 4
    split.eval()
    bn.eval()
    torch.testing.assert_close(split(x), bn(x))  # eval: running statistics, never split


def test_small_batches_keep_two_samples_per_group() -> None:
    assert active_splits(256, 8) == 8
    assert active_splits(8, 8) == 4
    assert active_splits(3, 8) == 1
    layer = SplitBatchNorm(5)
    layer.splits = 8
    y = layer(torch.randn(6, 5))  # 3 groups of 2: BatchNorm1d needs more than one value
    assert torch.isfinite(y).all()


def test_swapping_keeps_names_values_and_is_switched_by_the_context() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Sequential(nn.Flatten(), nn.Linear(4 * 36, 6), nn.BatchNorm1d(6)))
    before = copy.deepcopy(net.state_dict())
    assert use_split_batchnorm(net) == 2
    assert use_split_batchnorm(net) == 0  # already split
    after = net.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    layers = [m for m in net.modules() if isinstance(m, SplitBatchNorm)]
    assert len(layers) == 2 and all(m.splits == 1 for m in layers)
    with batchnorm_splits(net, 4):
        assert all(m.splits == 4 for m in layers)
    assert all(m.splits == 1 for m in layers)
    with pytest.raises(RuntimeError), batchnorm_splits(net, 2):
        raise RuntimeError("boom")
    assert all(m.splits == 1 for m in layers)  # restored on an error too


def test_sync_batchnorm_is_left_alone() -> None:
    net = nn.Sequential(nn.Linear(3, 3), nn.SyncBatchNorm(3))
    assert use_split_batchnorm(net) == 0 and isinstance(net[1], nn.SyncBatchNorm)
