"""Image encoders: registry contract (out_dim, channels, sizes), stems, input normalization."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import anyssl.modalities.image  # noqa: F401  (registers the encoders)
from anyssl.modalities.image.encoders import IMAGENET_MEAN, IMAGENET_STD, Normalize, SmallCNN
from anyssl.registry import ENCODERS

EXPECTED_DIM = {"smallcnn": 128, "resnet18": 512, "resnet34": 512, "resnet50": 2048}


def test_registry_lists_the_image_encoders() -> None:
    assert set(EXPECTED_DIM) <= set(ENCODERS.names("image"))


@pytest.mark.parametrize("name", sorted(EXPECTED_DIM))
@pytest.mark.parametrize("in_channels", [1, 3])
def test_out_dim_matches_output(name: str, in_channels: int) -> None:
    torch.manual_seed(0)
    enc = ENCODERS.build(name, "image", in_channels=in_channels, image_size=32)
    assert isinstance(enc.out_dim, int) and enc.out_dim == EXPECTED_DIM[name]
    y = enc(torch.rand(2, in_channels, 16, 16))
    assert y.shape == (2, enc.out_dim) and torch.isfinite(y).all()


def test_resnet_stem_is_chosen_by_image_size() -> None:
    small = ENCODERS.build("resnet18", "image", in_channels=3, image_size=32)
    assert small.small_stem and small.net.conv1.kernel_size == (3, 3)
    assert small.net.conv1.stride == (1, 1) and isinstance(small.net.maxpool, nn.Identity)
    big = ENCODERS.build("resnet18", "image", in_channels=1, image_size=64)
    assert not big.small_stem and big.net.conv1.kernel_size == (7, 7)
    assert big.net.conv1.stride == (2, 2) and big.net.conv1.in_channels == 1
    assert isinstance(big.net.maxpool, nn.MaxPool2d)
    forced = ENCODERS.build("resnet18", "image", in_channels=3, image_size=224, small_stem=True)
    assert forced.net.conv1.kernel_size == (3, 3)
    off = ENCODERS.build("resnet18", "image", in_channels=3, image_size=32, small_stem=False)
    assert off.net.conv1.kernel_size == (7, 7)
    # the small stem keeps 4x more resolution: 32 px -> 4 x 4 before pooling vs 1 x 1
    feats: dict[int, torch.Size] = {}
    for enc in (small, off):
        enc.net.avgpool.register_forward_hook(lambda m, i, o, e=enc: feats.__setitem__(id(e),
                                                                                      i[0].shape))
        enc.eval()(torch.rand(1, 3, 32, 32))
    assert feats[id(small)][-1] == 4 and feats[id(off)][-1] == 1


def test_uint8_input_equals_float_input() -> None:
    torch.manual_seed(0)
    enc = SmallCNN(in_channels=3, image_size=32).eval()
    x = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    torch.testing.assert_close(enc(x), enc(x.float() / 255), atol=1e-5, rtol=1e-5)


def test_normalize_defaults_and_math() -> None:
    rgb = Normalize(3)
    x = torch.rand(2, 3, 4, 4)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(rgb(x), (x - mean) / std.view(1, 3, 1, 1))
    gray = Normalize(1)
    torch.testing.assert_close(gray(torch.ones(1, 1, 2, 2)), torch.ones(1, 1, 2, 2))
    assert "mean" in dict(rgb.named_buffers())  # moves with .to(device), saved in state_dict
    with pytest.raises(ValueError, match="one per channel"):
        Normalize(3, mean=(0.5,), std=(0.5,))


def test_smallcnn_size_and_width() -> None:
    params = sum(p.numel() for p in SmallCNN(in_channels=1).parameters())
    assert 100_000 <= params <= 200_000
    wide = SmallCNN(in_channels=1, width=8)
    assert wide.out_dim == 32 and wide(torch.rand(2, 1, 28, 28)).shape == (2, 32)
    assert SmallCNN(in_channels=3, image_size=96)(torch.rand(2, 3, 96, 96)).shape == (2, 128)


def test_smallcnn_trains() -> None:
    torch.manual_seed(0)
    enc = SmallCNN(in_channels=1)
    head = nn.Linear(enc.out_dim, 2)
    opt = torch.optim.SGD([*enc.parameters(), *head.parameters()], lr=0.1)
    x = torch.rand(16, 1, 16, 16)
    y = (x.mean((1, 2, 3)) > x.mean()).long()
    x[y == 1, :, :4] = 1.0  # a visible cue
    losses = []
    for _ in range(15):
        loss = nn.functional.cross_entropy(head(enc(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("kwargs", [{"in_channels": 0}, {"image_size": 0}, {"width": 0}])
def test_bad_encoder_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SmallCNN(**kwargs)
    if "width" not in kwargs:
        with pytest.raises(ValueError):
            ENCODERS.build("resnet18", "image", **kwargs)
