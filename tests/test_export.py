"""Encoder export without a run: the weight layouts give the plain models' names, which load
with ``strict=True`` into torchvision's ResNets (the small stem swapped as the JSON's ``load``
lines say) and timm's VisionTransformer, with the same features; the hook and format choices."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from anyssl.export import (
    OwnLayout,
    layout_of,
    normalization,
    pick_tower,
    register_layout,
    resolve_format,
    write_file,
)
from anyssl.modalities.image.encoders import ResNetEncoder, SmallCNN
from anyssl.modalities.image.encoders_vit import ViTEncoder
from anyssl.modalities.image.export import ResNetLayout, TimmLayout, ViTLayout
from anyssl.pair import PairEncoder

torchvision = pytest.importorskip("torchvision")


def _normalized(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input a plain model needs: the encoder's mean / std applied by hand (from the
    values the JSON records, not the encoder's module)."""
    norm = normalization(encoder)
    assert norm is not None
    mean = torch.tensor(norm["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(norm["std"]).view(1, -1, 1, 1)
    return (x - mean) / std


def _randomize_bn(module: nn.Module) -> None:
    """Non-default BatchNorm statistics, so that a dropped or misnamed buffer shows."""
    g = torch.Generator().manual_seed(0)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


@pytest.mark.parametrize("arch", ["resnet18", "resnet34", "resnet50"])
def test_standard_stem_resnet_loads_strictly_into_torchvision(arch: str):
    torch.manual_seed(0)
    encoder = ResNetEncoder(arch, in_channels=3, image_size=224, small_stem=False).eval()
    _randomize_bn(encoder)
    plain = layout_of(encoder).to_plain(encoder)
    assert plain.layout == "torchvision" and plain.model == f"torchvision.models.{arch}"
    assert not any(k.startswith(("fc.", "net.", "normalize.")) for k in plain.state_dict)
    model = getattr(torchvision.models, arch)()
    model.fc = nn.Identity()
    model.load_state_dict(plain.state_dict, strict=True)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(_normalized(encoder, x)), encoder(x))


def _run_load_lines(lines: list[str], state: dict[str, torch.Tensor]) -> nn.Module:
    """Execute the JSON's documented ``load`` lines with ``state`` as the file's content."""
    code = "\n".join(line.replace("torch.load(FILE)", "STATE") for line in lines)
    scope: dict[str, Any] = {"STATE": state}
    exec(code, scope)
    return scope["model"]


@pytest.mark.parametrize("in_channels", [1, 3])
def test_small_stem_resnet_loads_with_the_documented_stem_swap(in_channels: int):
    torch.manual_seed(0)
    encoder = ResNetEncoder("resnet18", in_channels=in_channels, image_size=32).eval()
    assert encoder.small_stem
    _randomize_bn(encoder)
    plain = layout_of(encoder).to_plain(encoder)
    assert plain.extra["stem"] == "small" and plain.extra["in_channels"] == in_channels
    model = _run_load_lines(plain.load, plain.state_dict).eval()  # load_state_dict is strict
    x = torch.rand(2, in_channels, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(_normalized(encoder, x)), encoder(x))
    plain_model = torchvision.models.resnet18()
    plain_model.fc = nn.Identity()
    with pytest.raises(RuntimeError, match=r"conv1.weight"):  # without the swap it does not fit
        plain_model.load_state_dict(plain.state_dict)


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_vit_exports_timm_vision_transformer_names(pool: str):
    pytest.importorskip("timm")
    torch.manual_seed(0)
    encoder = ViTEncoder(64, 2, 4, in_channels=3, image_size=32, pool=pool).eval()
    plain = layout_of(encoder).to_plain(encoder)
    assert isinstance(layout_of(encoder), ViTLayout) and plain.layout == "timm"
    model = _run_load_lines(plain.load, plain.state_dict).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(_normalized(encoder, x)), encoder(x),
                                   rtol=1e-4, atol=1e-5)


def test_timm_encoder_exports_the_timm_models_own_names():
    timm = pytest.importorskip("timm")
    from anyssl.modalities.image.encoders_timm import timm_encoder

    encoder = timm_encoder(name="resnet10t", in_channels=3, image_size=32).eval()
    plain = layout_of(encoder).to_plain(encoder)
    assert isinstance(layout_of(encoder), TimmLayout)
    model = timm.create_model("resnet10t", num_classes=0).eval()
    model.load_state_dict(plain.state_dict, strict=True)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(_normalized(encoder, x)), encoder(x))


def test_other_encoders_export_their_own_state_dict():
    encoder = SmallCNN(in_channels=1, image_size=32, width=4)
    plain = layout_of(encoder).to_plain(encoder)
    assert isinstance(layout_of(encoder), OwnLayout) and plain.layout == "anyssl"
    assert plain.state_dict.keys() == encoder.state_dict().keys()
    assert plain.model == "anyssl.modalities.image.encoders.SmallCNN"
    # copies, not views: a later training step does not change an export in memory
    first = next(iter(encoder.state_dict()))
    assert plain.state_dict[first].data_ptr() != encoder.state_dict()[first].data_ptr()


def test_a_subclass_uses_its_bases_layout_and_a_second_registration_is_refused():
    class Wider(ResNetEncoder):
        pass

    assert isinstance(layout_of(Wider("resnet18", 3, 32)), ResNetLayout)
    with pytest.raises(ValueError, match=r"already registered.*override=True"):
        register_layout(ResNetEncoder)(ResNetLayout)


def test_pick_tower_picks_a_pair_encoders_tower_and_refuses_one_for_a_single_encoder():
    image, text = SmallCNN(3, 16, width=4), nn.Embedding(10, 8)
    text.out_dim = 8  # type: ignore[assignment]
    pair = PairEncoder({"image": image, "text": text})
    assert pick_tower(pair, None) == (image, "image")
    assert pick_tower(pair, "text") == (text, "text")
    with pytest.raises(ValueError, match="no tower 'audio'"):
        pick_tower(pair, "audio")
    with pytest.raises(ValueError, match="has one tower; drop --tower"):
        pick_tower(image, "text")


def test_format_comes_from_the_suffix_unless_given(tmp_path):
    assert resolve_format(None, tmp_path / "e.safetensors") == "safetensors"
    assert resolve_format(None, tmp_path / "e.onnx") == "onnx"
    assert resolve_format("torchscript", tmp_path / "e.bin") == "torchscript"
    with pytest.raises(ValueError, match=r"cannot tell the format.*--format"):
        resolve_format(None, tmp_path / "e.weights")
    with pytest.raises(ValueError, match="unknown export format 'tflite'; valid: state_dict"):
        resolve_format("tflite", tmp_path / "e.pt")


def test_tracing_formats_need_a_tensor_input(tmp_path):
    with pytest.raises(ValueError, match="takes a dict; export state_dict or safetensors"):
        write_file("onnx", tmp_path / "e.onnx", SmallCNN(1, 16, width=4), {"x": 1}, None)
