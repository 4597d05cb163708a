"""Any timm model as an image encoder: features and out_dim, a training step through the CLI,
weights read from the local caches only, and the one-line errors (timm missing, no weights)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import anyssl.modalities.image  # noqa: F401  (registers the encoders)
from anyssl.cli.app import app
from anyssl.registry import ENCODERS

try:
    import timm
except ImportError:  # the optional extra is absent: only the missing-timm test runs
    timm = None

needs_timm = pytest.mark.skipif(timm is None, reason='needs the timm extra: pip install '
                                '"anyssl[timm]"')


def test_missing_timm_is_a_one_line_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # `import timm` now raises ImportError
    with pytest.raises(ImportError, match=r'^timm is not installed: pip install "anyssl\[timm\]"$'):
        ENCODERS.build("timm", "image", name="resnet10t", in_channels=3, image_size=32)


@needs_timm
def test_resnet_features_and_out_dim() -> None:
    torch.manual_seed(0)
    enc = ENCODERS.build("timm", "image", name="resnet10t", in_channels=1, image_size=32)
    assert enc.out_dim == enc.model.num_features == 512
    assert enc.model.conv1[0].in_channels == 1  # in_chans follows the dataset
    y = enc(torch.rand(2, 1, 32, 32))
    assert y.shape == (2, 512) and torch.isfinite(y).all()  # num_classes=0: pooled features


@needs_timm
def test_vit_is_built_for_the_dataset_image_size() -> None:
    enc = ENCODERS.build("timm", "image", name="vit_tiny_patch16_224", in_channels=3,
                         image_size=32, depth=2)  # other -e keywords go to timm
    assert tuple(enc.model.patch_embed.img_size) == (32, 32) and enc.out_dim == 192
    assert len(enc.model.blocks) == 2
    assert enc(torch.rand(2, 3, 32, 32)).shape == (2, 192)
    wide = ENCODERS.build("timm", "image", name="vit_tiny_patch16_224", in_channels=3,
                          image_size=32, img_size=64, depth=1)  # -e img_size= wins
    assert tuple(wide.model.patch_embed.img_size) == (64, 64)


@needs_timm
@pytest.mark.parametrize(("kwargs", "match"), [
    ({}, r"needs a model name: -e name=NAME"),
    ({"name": "no_such_net"}, r"unknown timm model 'no_such_net'"),
    ({"name": "resnet10t", "pretrained": "/nowhere/w.pth"}, r"weights file '/nowhere/w.pth'"),
])
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ENCODERS.build("timm", "image", in_channels=3, image_size=32, **kwargs)


@pytest.fixture
def empty_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the Hugging Face cache and torch hub's cache at empty folders (nothing local)."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch"))
    return tmp_path


@needs_timm
def test_pretrained_offline_is_a_one_line_error(empty_caches: Path) -> None:
    with pytest.raises(ValueError, match="no local weights for timm model 'resnet10t'") as err:
        ENCODERS.build("timm", "image", name="resnet10t", in_channels=3, image_size=32,
                       pretrained=True)
    text = str(err.value)
    assert "\n" not in text and str(empty_caches / "hf") in text
    assert "hf download timm/resnet10t.c3_in1k" in text and "-e pretrained=PATH" in text


@needs_timm
def test_pretrained_weights_load_from_the_local_caches(empty_caches: Path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(1)
    source = timm.create_model("resnet10t")  # stands in for the published weights
    weights = {k: v.contiguous() for k, v in source.state_dict().items()}
    snapshot = empty_caches / "hf" / "models--timm--resnet10t.c3_in1k" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    save_file(weights, str(snapshot / "model.safetensors"))
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc")
    enc = ENCODERS.build("timm", "image", name="resnet10t", in_channels=3, image_size=32,
                         pretrained=True)
    torch.testing.assert_close(enc.model.conv1[0].weight, weights["conv1.0.weight"])
    assert "fc.weight" not in enc.model.state_dict()  # classifier dropped
    mean = torch.tensor(enc.model.pretrained_cfg["mean"]).view(1, 3, 1, 1)
    torch.testing.assert_close(enc.normalize.mean, mean)  # the weights' normalization
    gray = ENCODERS.build("timm", "image", name="resnet10t", in_channels=1, image_size=32,
                          pretrained=str(snapshot / "model.safetensors"))  # an explicit file
    torch.testing.assert_close(gray.model.conv1[0].weight,
                               weights["conv1.0.weight"].sum(1, keepdim=True))  # timm adapts


@needs_timm
def test_simclr_trains_a_step_with_a_timm_encoder(tmp_path: Path) -> None:
    out = tmp_path / "timm"
    result = CliRunner().invoke(app, [
        "train", "--modality", "image", "--method", "simclr", "--encoder", "timm",
        "-e", "name=resnet10t", "--epochs", "1", "--max-steps", "1", "--batch-size", "4",
        "--no-eval", "--seed", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and all(math.isfinite(r["loss"]) for r in rows)
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=False)["method"]
    assert "encoder.model.conv1.0.weight" in state
