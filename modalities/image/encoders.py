"""Image encoders: torchvision ResNets (He et al. 2016) and a small CNN for CPU-sized runs.

Every encoder takes ``in_channels`` and ``image_size`` (the dataset's ``encoder_kwargs``), fixes
``out_dim`` at construction, and normalizes its input inside (mean/std buffers), so views can
stay float in [0, 1] (uint8 is accepted too).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from anyssl.registry import ENCODERS

__all__ = ["ResNetEncoder", "SmallCNN", "resnet18", "resnet34", "resnet50"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Below this image size ResNets get the CIFAR stem (SimCLR, Chen et al. 2020, Appendix B.9).
SMALL_STEM_BELOW = 64


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; uint8 input is first scaled to [0, 1].

    Defaults: ImageNet statistics for 3 channels, 0.5 / 0.5 (to [-1, 1]) otherwise.

    Shape:
        ``B x C x H x W`` -> same shape, float.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, in_channels: int, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> None:
        super().__init__()
        rgb = in_channels == 3
        mean = mean if mean is not None else (IMAGENET_MEAN if rgb else (0.5,) * in_channels)
        std = std if std is not None else (IMAGENET_STD if rgb else (0.5,) * in_channels)
        if len(mean) != in_channels or len(std) != in_channels:
            raise ValueError(f"mean and std need {in_channels} values (one per channel), "
                             f"got {len(mean)} and {len(std)}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


def _check_shape_args(in_channels: int, image_size: int) -> None:
    if in_channels < 1 or image_size < 1:
        raise ValueError(f"in_channels and image_size must be >= 1, got {in_channels}, "
                         f"{image_size}")


class ResNetEncoder(nn.Module):
    """A torchvision ResNet without its classifier (random init, ``weights=None``).

    The first conv takes ``in_channels``; ``small_stem`` (default: ``image_size < 64``) swaps
    the 7x7 stride-2 conv + max-pool stem for a 3x3 stride-1 conv and no pool, the CIFAR
    variant of SimCLR (Appendix B.9) and MoCo/BYOL re-implementations.

    Shape:
        ``B x in_channels x H x W`` float [0, 1] or uint8 -> ``B x out_dim``.
    """

    def __init__(self, arch: str, in_channels: int = 3, image_size: int = 224,
                 small_stem: bool | None = None, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> None:
        super().__init__()
        import torchvision.models as tvm  # imported here: loading the plugin stays fast

        _check_shape_args(in_channels, image_size)
        self.small_stem = image_size < SMALL_STEM_BELOW if small_stem is None else small_stem
        net = getattr(tvm, arch)(weights=None)
        if self.small_stem:
            net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        elif in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.out_dim: int = int(net.fc.in_features)
        net.fc = nn.Identity()
        self.normalize = Normalize(in_channels, mean, std)
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.normalize(x))  # B x out_dim


@ENCODERS.register("resnet18", scope="image")
def resnet18(in_channels: int = 3, image_size: int = 224, small_stem: bool | None = None,
             mean: Sequence[float] | None = None,
             std: Sequence[float] | None = None) -> ResNetEncoder:
    """ResNet-18 (512-d features), torchvision, random init; small stem below 64 px."""
    return ResNetEncoder("resnet18", in_channels, image_size, small_stem, mean, std)


@ENCODERS.register("resnet34", scope="image")
def resnet34(in_channels: int = 3, image_size: int = 224, small_stem: bool | None = None,
             mean: Sequence[float] | None = None,
             std: Sequence[float] | None = None) -> ResNetEncoder:
    """ResNet-34 (512-d features), torchvision, random init; small stem below 64 px."""
    return ResNetEncoder("resnet34", in_channels, image_size, small_stem, mean, std)


@ENCODERS.register("resnet50", scope="image")
def resnet50(in_channels: int = 3, image_size: int = 224, small_stem: bool | None = None,
             mean: Sequence[float] | None = None,
             std: Sequence[float] | None = None) -> ResNetEncoder:
    """ResNet-50 (2048-d features), torchvision, random init; small stem below 64 px."""
    return ResNetEncoder("resnet50", in_channels, image_size, small_stem, mean, std)


def _conv_bn_relu(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


@ENCODERS.register("smallcnn", scope="image")
class SmallCNN(nn.Module):
    """Four conv-BN-ReLU layers (widths w, 2w, 2w, 4w; the last three stride 2) + global
    average pool: ~130k parameters at ``width=32``, out_dim ``4 * width``. Images of 64 px or
    more get a stride-2 first layer too.

    Shape:
        ``B x in_channels x H x W`` float [0, 1] or uint8 -> ``B x out_dim``.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 32, width: int = 32,
                 mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> None:
        super().__init__()
        _check_shape_args(in_channels, image_size)
        if width < 1:
            raise ValueError(f"smallcnn width must be >= 1, got {width}")
        w = width
        first_stride = 1 if image_size < SMALL_STEM_BELOW else 2
        self.normalize = Normalize(in_channels, mean, std)
        self.features = nn.Sequential(
            _conv_bn_relu(in_channels, w, first_stride),
            _conv_bn_relu(w, 2 * w, 2),
            _conv_bn_relu(2 * w, 2 * w, 2),
            _conv_bn_relu(2 * w, 4 * w, 2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.out_dim: int = 4 * w

    def forward(self, x: Tensor) -> Tensor:
        return self.features(self.normalize(x))  # B x out_dim

