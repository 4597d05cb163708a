"""The one backbone both sides of ``lightly_side_by_side.py`` train, in plain torch.

``PeerCNN`` is the architecture of anyssl's ``smallcnn`` (``modalities/image/encoders.py``,
``SmallCNN``): a built-in per-channel ``Normalize`` (uint8 or [0, 1] input; to [-1, 1] for one
channel, ImageNet statistics for three), four conv-BN-ReLU layers of widths w, 2w, 2w, 4w (the
last three stride 2; the first too from 64 px up) and a global average pool, ``out_dim = 4w``.
It imports nothing but torch, so the lightly virtual environment (which has no anyssl) imports
this same file; anyssl trains it through the ``peer_cnn`` plugin (``_peer_plugin.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["Normalize", "PeerCNN", "embed_images", "layer_summary", "weights_checksum"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: From this image size up the first layer has stride 2 too (as in anyssl's SmallCNN).
STRIDE2_FROM = 64

#: Builds the normalization layer of a conv block from its channel count (``nn.BatchNorm2d``;
#: lightly's ``SplitBatchNorm`` for MoCo's split BatchNorm).
NormFactory = Callable[[int], nn.Module]


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; uint8 input is scaled to [0, 1] first.

    Shape:
        ``B x C x H x W`` -> same shape, float32.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        rgb = in_channels == 3
        mean = IMAGENET_MEAN if rgb else (0.5,) * in_channels
        std = IMAGENET_STD if rgb else (0.5,) * in_channels
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


def _block(cin: int, cout: int, stride: int, norm: NormFactory) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                         norm(cout), nn.ReLU(inplace=True))


class PeerCNN(nn.Module):
    """anyssl's ``smallcnn`` (same layers, parameter names and initialization order).

    ``norm`` builds each block's normalization layer (default ``nn.BatchNorm2d``).

    Shape:
        ``B x in_channels x H x W`` uint8 or float in [0, 1] -> ``B x out_dim``.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, width: int = 32,
                 norm: NormFactory = nn.BatchNorm2d) -> None:
        super().__init__()
        if in_channels < 1 or image_size < 1 or width < 1:
            raise ValueError(f"in_channels, image_size and width must be >= 1, got "
                             f"{in_channels}, {image_size}, {width}")
        self.in_channels, self.image_size, self.width = in_channels, image_size, width
        w = width
        first_stride = 1 if image_size < STRIDE2_FROM else 2
        self.normalize = Normalize(in_channels)
        self.features = nn.Sequential(
            _block(in_channels, w, first_stride, norm),
            _block(w, 2 * w, 2, norm),
            _block(2 * w, 2 * w, 2, norm),
            _block(2 * w, 4 * w, 2, norm),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.out_dim: int = 4 * w

    def forward(self, x: Tensor) -> Tensor:
        return self.features(self.normalize(x))  # B x out_dim


def layer_summary(module: nn.Module) -> str:
    """The leaf layers of a head in order, e.g. ``Linear(128>2048) ReLU Linear(2048>128)``;
    ``-b`` marks a Linear without bias, ``BN(d)`` a BatchNorm (``BN(d,-affine)`` non-affine)."""
    parts = []
    for m in module.modules():
        if any(True for _ in m.children()):
            continue
        if isinstance(m, nn.Linear):
            parts.append(f"Linear({m.in_features}>{m.out_features}"
                         f"{'' if m.bias is not None else ',-b'})")
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            parts.append(f"BN({m.num_features}{'' if m.affine else ',-affine'})")
        else:
            parts.append(type(m).__name__)
    return " ".join(parts)


def weights_checksum(module: nn.Module) -> float:
    """Sum of |w| over the parameters: equal initial weights give equal checksums."""
    with torch.no_grad():
        return float(sum(p.detach().abs().double().sum() for p in module.parameters()))


@torch.no_grad()
def embed_images(backbone: nn.Module, images: Tensor, batch_size: int = 512) -> Tensor:
    """Features of ``images`` under the frozen ``backbone`` in eval mode (mode restored after).

    Shape:
        images: ``N x C x H x W`` uint8 -> ``N x out_dim`` float32.
    """
    was_training = backbone.training
    backbone.eval()
    try:
        return torch.cat([backbone(chunk).float() for chunk in images.split(batch_size)])
    finally:
        backbone.train(was_training)
