"""Image ViTs: sizes and out_dim, patch sizes, pooling, MoCo v3's init and sin-cos positions
(parity with a transcription of vits.py), the frozen patch embedding, and a CLI run."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

import anyssl.modalities.image  # noqa: F401  (registers the encoders)
from anyssl.cli.app import app
from anyssl.modalities.image import ACCELERATOR_ENCODERS
from anyssl.modalities.image.encoders_vit import (
    ViTEncoder,
    default_patch_size,
    sincos_position_embedding,
)
from anyssl.registry import ENCODERS

DIMS = {"vit_tiny": 192, "vit_small": 384}


@functools.cache
def _vit(name: str, image_size: int, **kw: object) -> ViTEncoder:
    torch.manual_seed(0)
    return ENCODERS.build(name, "image", in_channels=3, image_size=image_size, **kw)


def _moco_v3_sincos(h: int, w: int, embed_dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """facebookresearch/moco-v3 vits.py L53-68, transcribed (the CLS row dropped)."""
    grid_w = torch.arange(w, dtype=torch.float32)
    grid_h = torch.arange(h, dtype=torch.float32)
    grid_w, grid_h = torch.meshgrid(grid_w, grid_h, indexing="ij")
    pos_dim = embed_dim // 4
    omega = torch.arange(pos_dim, dtype=torch.float32) / pos_dim
    omega = 1. / (temperature**omega)
    out_w = torch.einsum('m,d->md', [grid_w.flatten(), omega])
    out_h = torch.einsum('m,d->md', [grid_h.flatten(), omega])
    return torch.cat([torch.sin(out_w), torch.cos(out_w), torch.sin(out_h), torch.cos(out_h)],
                     dim=1)


@pytest.mark.parametrize("name", sorted(DIMS))
@pytest.mark.parametrize(("size", "patch"), [(32, 4), (64, 8)])
def test_shapes_out_dim_and_patch_size(name: str, size: int, patch: int) -> None:
    enc = _vit(name, size)
    assert enc.out_dim == DIMS[name] and enc.patch_size == patch
    assert len(enc.blocks) == 12
    assert enc.blocks[0].self_attention.num_heads == {"vit_tiny": 3, "vit_small": 6}[name]
    assert enc.pos_embed.shape == ((size // patch) ** 2, DIMS[name])
    with torch.inference_mode():
        y = enc(torch.rand(1, 3, size, size))
    assert y.shape == (1, DIMS[name]) and torch.isfinite(y).all()


def test_default_patch_sizes_and_override() -> None:
    assert [default_patch_size(s) for s in (28, 32, 64, 96, 128, 224)] == [4, 4, 8, 8, 16, 16]
    enc = ViTEncoder(32, 1, 2, in_channels=1, image_size=224)
    assert enc.patch_size == 16 and enc.pos_embed.shape == (196, 32)  # 14 x 14, DINO's ViT-S/16
    assert ViTEncoder(32, 1, 2, image_size=32, patch_size=8).pos_embed.shape == (16, 32)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"patch_size": 5}, r"patch_size 5 does not divide image_size 32; valid: 1, 2, 4, 8, 16, 32"),
    ({"patch_size": 64}, r"patch_size 64 does not divide image_size 32"),
    ({"patch_size": 0}, r"patch_size 0 does not divide"),
    ({"pool": "max"}, r"unknown ViT pool 'max'; valid: cls, mean"),
])
def test_bad_arguments_are_one_line_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        ENCODERS.build("vit_tiny", "image", in_channels=3, image_size=32, **kwargs)
    assert "\n" not in str(err.value)


def test_input_smaller_than_a_patch() -> None:
    enc = ViTEncoder(32, 1, 2, image_size=32, patch_size=8)
    with pytest.raises(ValueError, match="smaller than one 8 px patch"):
        enc(torch.rand(1, 3, 4, 4))


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_pooling_reads_the_right_tokens(pool: str) -> None:
    torch.manual_seed(0)
    enc = ViTEncoder(32, 2, 2, image_size=32, patch_size=8, pool=pool).eval()
    seen: list[torch.Tensor] = []
    enc.blocks.register_forward_hook(lambda m, i, o: seen.append(o))
    x = torch.rand(3, 3, 32, 32)
    y = enc(x)
    tokens = seen[0]  # B x (1 + 16) x D after the last block
    assert tokens.shape == (3, 17, 32)
    want = enc.norm(tokens)[:, 0] if pool == "cls" else enc.norm(tokens[:, 1:].mean(1))
    torch.testing.assert_close(y, want)
    other = ViTEncoder(32, 2, 2, image_size=32, patch_size=8,
                       pool="mean" if pool == "cls" else "cls").eval()
    other.load_state_dict(enc.state_dict())  # same weights, other pooling: other features
    assert not torch.allclose(other(x), y)


def test_sincos_matches_moco_v3_and_is_fixed() -> None:
    for grid, dim in ((2, 8), (4, 32), (8, 192)):
        torch.testing.assert_close(sincos_position_embedding(grid, grid, dim),
                                   _moco_v3_sincos(grid, grid, dim))
    enc = ViTEncoder(32, 1, 2, image_size=32, patch_size=4)
    torch.testing.assert_close(enc.pos_embed, _moco_v3_sincos(8, 8, 32))
    assert "pos_embed" not in dict(enc.named_parameters())  # fixed (vits.py L69)
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_position_embedding(2, 2, 6)


def test_moco_v3_initialization() -> None:
    torch.manual_seed(0)
    enc = ViTEncoder(64, 2, 4, in_channels=3, image_size=32, patch_size=4)
    attn = enc.blocks[0].self_attention
    qkv_bound = math.sqrt(6.0 / (64 + 64))  # Q, K, V each a 64 x 64 xavier (vits.py L36)
    assert attn.in_proj_weight.abs().max() <= qkv_bound
    assert attn.in_proj_weight.abs().max() > 0.9 * qkv_bound
    fc = enc.blocks[0].mlp[0]  # 64 -> 256, xavier-uniform
    assert fc.weight.abs().max() <= math.sqrt(6.0 / (64 + 256))
    assert fc.bias.abs().max() == 0 and attn.in_proj_bias.abs().max() == 0
    patch_bound = math.sqrt(6.0 / (3 * 4 * 4 + 64))  # vits.py L45
    assert patch_bound * 0.9 < enc.patch_embed.weight.abs().max() <= patch_bound
    assert enc.cls_token.abs().max() < 1e-4  # std 1e-6 (vits.py L41)


def test_gradients_flow_and_frozen_patch_embed() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    enc = ViTEncoder(32, 2, 2, image_size=32, patch_size=8, pool="mean")
    enc(x).pow(2).sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    frozen = ENCODERS.build("vit_tiny", "image", in_channels=3, image_size=32, patch_size=8,
                            freeze_patch_embed=True)
    assert isinstance(frozen.patch_embed, torch.nn.Conv2d)  # what MoCo v3 freezes
    frozen(x).sum().backward()
    assert not frozen.patch_embed.weight.requires_grad and frozen.patch_embed.weight.grad is None
    assert frozen.blocks[0].self_attention.in_proj_weight.grad is not None


def test_other_input_sizes_and_uint8() -> None:
    enc = ViTEncoder(32, 1, 2, in_channels=1, image_size=32, patch_size=4).eval()
    seen: list[torch.Tensor] = []
    enc.blocks.register_forward_pre_hook(lambda m, i: seen.append(i[0]))
    small = torch.rand(2, 1, 16, 16)  # a multi-crop local view: a 4 x 4 grid
    assert enc(small).shape == (2, 32) and seen[-1].shape == (2, 17, 32)
    x = torch.randint(0, 256, (2, 1, 32, 32), dtype=torch.uint8)
    torch.testing.assert_close(enc(x), enc(x.float() / 255), atol=1e-5, rtol=1e-5)


def test_gpu_recipes_name_registered_vits() -> None:
    assert set(ACCELERATOR_ENCODERS) == {"dino", "mocov3"}
    assert set(ACCELERATOR_ENCODERS.values()) <= set(ENCODERS.names("image")) & set(DIMS)


def test_simclr_trains_a_step_through_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "vit"
    result = CliRunner().invoke(app, [
        "train", "--modality", "image", "--method", "simclr", "--encoder", "vit_tiny",
        "-e", "patch_size=16", "-e", "pool=mean", "--epochs", "1", "--max-steps", "1",
        "--batch-size", "4", "--no-eval", "--seed", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["encoder"] == "vit_tiny" and saved["encoder_args"]["patch_size"] == 16
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows and all(math.isfinite(r["loss"]) for r in rows)
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert {"encoder.patch_embed.weight", "encoder.blocks.11.mlp.3.weight"} <= set(state["method"])


def test_dino_and_mocov3_default_to_vit_small_on_a_gpu_only() -> None:
    from anyssl.modality import get_modality

    image = get_modality("image")
    assert image.accelerator_encoder("dino", "cuda") == "vit_small"
    assert image.accelerator_encoder("mocov3", "cuda:1") == "vit_small"
    assert image.accelerator_encoder("dino", "cpu") is None  # the CPU keeps the small CNN
    assert image.accelerator_encoder("simclr", "cuda") is None


def test_accelerator_encoder_is_written_into_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from anyssl import api
    from anyssl.train import TrainConfig

    cfg = TrainConfig.from_dict({"modality": "image", "method": "dino", "device": "cuda"})
    assert api._with_accelerator_encoder(cfg).encoder == "vit_small"
    chosen = cfg.merged({"encoder": "resnet18"})  # an explicit --encoder always wins
    assert api._with_accelerator_encoder(chosen).encoder == "resnet18"
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    auto = cfg.merged({"device": "auto"})
    assert api._with_accelerator_encoder(auto).encoder in (None, "")
