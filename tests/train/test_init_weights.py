"""``--init``: torchvision, timm and anyssl weight files load into the encoder (same features
as the source model), momentum targets restart from them, and files that do not fit fail
with one line naming the key and both shapes."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from anyssl.export import layout_of
from anyssl.modalities.image.encoders import ResNetEncoder, SmallCNN
from anyssl.modalities.image.encoders_vit import ViTEncoder
from anyssl.momentum import MomentumTarget
from anyssl.train.init_weights import apply_init, load_into, read_weights

torchvision = pytest.importorskip("torchvision")


def _features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


def _rgb_resnet() -> ResNetEncoder:
    return ResNetEncoder("resnet18", in_channels=3, image_size=224, small_stem=False)


def test_a_torchvision_state_dict_loads_with_its_fc_ignored():
    torch.manual_seed(1)
    source = torchvision.models.resnet18()
    encoder = _rgb_resnet()
    load_into(encoder, source.state_dict(), "tv.pt")
    source.fc = nn.Identity()
    x = torch.rand(2, 3, 64, 64)
    # the encoder normalizes inside with ImageNet's statistics, the torchvision model does not
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(_features(encoder, x), _features(source, (x - mean) / std))


def test_a_timm_resnet_state_dict_loads_into_the_torchvision_based_encoder():
    timm = pytest.importorskip("timm")
    torch.manual_seed(2)
    source = timm.create_model("resnet18", num_classes=10)
    encoder = _rgb_resnet()
    load_into(encoder, source.state_dict(), "timm.pt")
    source.reset_classifier(0)
    x = torch.rand(2, 3, 64, 64)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(_features(encoder, x), _features(source, (x - mean) / std))


def test_plain_exports_round_trip_through_load_into():
    for make in (lambda: ResNetEncoder("resnet18", 1, 32),
                 lambda: ViTEncoder(32, 1, 2, in_channels=3, image_size=16, pool="mean")):
        torch.manual_seed(3)
        source, fresh = make(), make()
        load_into(fresh, layout_of(source).to_plain(source).state_dict, "export")
        for key, value in source.state_dict().items():
            torch.testing.assert_close(fresh.state_dict()[key], value, msg=key)


def test_a_vit_with_learned_positions_is_refused():
    encoder = ViTEncoder(32, 1, 2, in_channels=3, image_size=16)
    state = layout_of(encoder).to_plain(encoder).state_dict
    state["pos_embed"] = torch.randn_like(state["pos_embed"])
    with pytest.raises(ValueError, match="pos_embed is not the fixed 2-D sin-cos"):
        load_into(ViTEncoder(32, 1, 2, in_channels=3, image_size=16), state, "vit.pt")


def test_a_shape_mismatch_names_the_key_and_both_shapes():
    state = torchvision.models.resnet18().state_dict()
    with pytest.raises(ValueError) as err:
        load_into(ResNetEncoder("resnet18", 1, 32), state, "tv.pt")
    message = str(err.value)
    assert "\n" not in message
    assert "'conv1.weight' has shape (64, 3, 7, 7)" in message
    assert "has 'net.conv1.weight' of shape (64, 1, 3, 3)" in message


def test_another_architecture_and_a_smaller_model_are_refused():
    with pytest.raises(ValueError, match=r"key 'features.0.0.weight' fits no weight"):
        load_into(_rgb_resnet(), SmallCNN(3, 32, width=4).state_dict(), "cnn.pt")
    partial = {k: v for k, v in torchvision.models.resnet18().state_dict().items()
               if not k.startswith("layer4.")}
    with pytest.raises(ValueError, match=r"no weights for 'net.layer4.0.conv1.weight'"):
        load_into(_rgb_resnet(), partial, "part.pt")


def test_wrappers_and_prefixes_of_other_tools_are_looked_through(tmp_path):
    source = SmallCNN(1, 32, width=4)
    nested = {"epoch": 3, "state_dict": {f"backbone.{k}": v for k, v in
                                         source.state_dict().items()}}
    torch.save(nested, tmp_path / "solo.ckpt")
    state, info = read_weights(tmp_path / "solo.ckpt")
    assert info is None
    encoder = SmallCNN(1, 32, width=4)
    load_into(encoder, state, "solo.ckpt")
    torch.testing.assert_close(encoder.state_dict()["features.0.0.weight"],
                               source.state_dict()["features.0.0.weight"])
    torch.save({"config": {}, "method": {f"encoder.{k}": v for k, v in
                                         source.state_dict().items()}}, tmp_path / "last.pt")
    assert read_weights(tmp_path / "last.pt")[0].keys() == source.state_dict().keys()


def test_files_that_hold_no_state_dict_are_refused(tmp_path):
    torch.save({"epoch": 3}, tmp_path / "meta.pt")
    with pytest.raises(ValueError, match="holds no state dict"):
        read_weights(tmp_path / "meta.pt")
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        read_weights(tmp_path / "bad.safetensors")
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_weights(tmp_path / "missing.pt")


class _Moco(nn.Module):
    """The part of a momentum method ``apply_init`` touches: an encoder and its EMA copy."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = SmallCNN(1, 32, width=4)
        self.head = nn.Linear(16, 8)
        self.target = MomentumTarget(nn.Sequential(self.encoder, self.head))


def test_apply_init_restarts_momentum_targets_from_the_new_weights(tmp_path):
    torch.manual_seed(4)
    source = SmallCNN(1, 32, width=4)
    torch.save(source.state_dict(), tmp_path / "init.pt")
    method = _Moco()
    note = apply_init(method, tmp_path / "init.pt")
    assert note == f"encoder initialized from {tmp_path / 'init.pt'}"
    for key, value in source.state_dict().items():
        torch.testing.assert_close(method.encoder.state_dict()[key], value)
        torch.testing.assert_close(method.target.module[0].state_dict()[key], value)


def test_a_different_normalization_is_refused_with_the_flags_to_pass(tmp_path):
    source = ResNetEncoder("resnet18", 1, 32)
    torch.save(layout_of(source).to_plain(source).state_dict, tmp_path / "e.pt")
    info = {"input": {"normalization": {"mean": [0.2], "std": [0.3], "inside": False}}}
    (tmp_path / "e.pt.json").write_text(json.dumps(info))

    class Method(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = ResNetEncoder("resnet18", 1, 32)

    with pytest.raises(ValueError, match=r"input mean \[0.2\] but the encoder uses \[0.5\]; "
                                         "pass -e mean="):
        apply_init(Method(), tmp_path / "e.pt")
