"""Plain key names for the image encoders (``anyssl export``, ``anyssl train --init``).

* ``ResNetEncoder`` -> torchvision's ``resnet18/34/50`` names without the classifier, as
  solo-learn's backbones (``fc = nn.Identity()``): loads with ``strict=True`` into a torchvision
  ResNet whose ``fc`` is ``nn.Identity()`` (and whose stem is swapped for the small one when the
  run used it). A torchvision or timm ResNet state dict loads back, its ``fc.*`` ignored.
* ``TimmEncoder`` -> the timm model's own names (``timm.create_model(name, num_classes=0)``).
* ``ViTEncoder`` -> timm's ``VisionTransformer`` names (``patch_embed.proj``, ``attn.qkv``,
  ``mlp.fc1``...), the fixed sin-cos positions written as ``pos_embed`` (a zero row for the CLS
  token, as MoCo v3's vits.py L66).

The normalization (mean / std) stays out of the weights: the export's JSON carries it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import torch
from torch import Tensor, nn

from anyssl.export import PlainWeights, register_layout
from anyssl.modalities.image.encoders import ResNetEncoder
from anyssl.modalities.image.encoders_timm import TimmEncoder
from anyssl.modalities.image.encoders_vit import ViTEncoder, sincos_position_embedding

__all__ = ["ResNetLayout", "TimmLayout", "ViTLayout", "resnet_arch"]

#: (block type, blocks per stage) -> torchvision factory
_RESNETS = {("BasicBlock", (2, 2, 2, 2)): "resnet18", ("BasicBlock", (3, 4, 6, 3)): "resnet34",
            ("Bottleneck", (3, 4, 6, 3)): "resnet50", ("Bottleneck", (3, 4, 23, 3)): "resnet101",
            ("Bottleneck", (3, 8, 36, 3)): "resnet152"}
LOAD_FILE = "state_dict = torch.load(FILE)  # or safetensors.torch.load_file(FILE)"
INPUT_RULE = "float in [0, 1] (uint8 / 255), then (x - mean) / std per channel"


def _own(state: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The entries under ``prefix`` with it stripped (copied, unshared)."""
    return {k.removeprefix(prefix): v.detach().cpu().contiguous().clone()
            for k, v in state.items() if k.startswith(prefix)}


def resnet_arch(net: nn.Module) -> str:
    """The torchvision factory name of a ResNet, from its block type and stage depths."""
    depths = tuple(len(getattr(net, f"layer{i}")) for i in range(1, 5))
    block = type(net.layer1[0]).__name__  # type: ignore[index]
    return _RESNETS.get((block, depths), "resnet")  # type: ignore[arg-type]


@register_layout(ResNetEncoder)
class ResNetLayout:
    """torchvision ResNet names, no ``fc``; the stem swap written into the ``load`` lines."""

    def to_plain(self, encoder: nn.Module) -> PlainWeights:
        net: Any = encoder.net
        arch, cin = resnet_arch(net), int(net.conv1.in_channels)
        small = bool(getattr(encoder, "small_stem", False))
        load = ["import torch, torchvision", f"model = torchvision.models.{arch}()"]
        if small:
            load += [f"model.conv1 = torch.nn.Conv2d({cin}, 64, 3, 1, 1, bias=False)  # small "
                     "stem", "model.maxpool = torch.nn.Identity()"]
        elif cin != 3:
            load.append(f"model.conv1 = torch.nn.Conv2d({cin}, 64, 7, 2, 3, bias=False)")
        load += ["model.fc = torch.nn.Identity()  # the export has no classifier", LOAD_FILE,
                 "model.load_state_dict(state_dict)  # strict"]
        return PlainWeights(_own(encoder.state_dict(), "net."), "torchvision",
                            f"torchvision.models.{arch}", load,
                            {"stem": "small" if small else "standard", "in_channels": cin,
                             "input_rule": INPUT_RULE})

    def key_map(self, encoder: nn.Module, state: Mapping[str, Tensor]) -> dict[str, str | None]:
        own = encoder.state_dict()
        return {k: None if k.startswith("fc.") else f"net.{k}" for k in state
                if k.startswith("fc.") or f"net.{k}" in own}


@register_layout(TimmEncoder)
class TimmLayout:
    """The timm model's own names (its classifier is ``Identity``: ``num_classes=0``)."""

    def to_plain(self, encoder: nn.Module) -> PlainWeights:
        model: Any = encoder.model
        cfg: dict[str, Any] = getattr(model, "pretrained_cfg", None) or {}
        name = cfg.get("architecture") or type(model).__name__
        cin = int(cast(Any, encoder).normalize.mean.numel())
        size = getattr(getattr(model, "patch_embed", None), "img_size", None)
        extra = f", img_size={next(iter(size))}" if size is not None else ""
        load = ["import timm", f"model = timm.create_model({name!r}, num_classes=0, "
                f"in_chans={cin}{extra})", LOAD_FILE, "model.load_state_dict(state_dict)"]
        return PlainWeights(_own(encoder.state_dict(), "model."), "timm",
                            f"timm.create_model({name!r})", load, {"input_rule": INPUT_RULE})

    def key_map(self, encoder: nn.Module, state: Mapping[str, Tensor]) -> dict[str, str | None]:
        own = encoder.state_dict()
        cfg: dict[str, Any] = getattr(encoder.model, "pretrained_cfg", None) or {}
        head = str(cfg.get("classifier") or "head")
        heads = (f"{head}.", "head.", "fc.", "classifier.")
        return {k: f"model.{k}" if f"model.{k}" in own else None for k in state
                if f"model.{k}" in own or k.startswith(heads)}


#: anyssl ViT block keys (torchvision EncoderBlock) -> timm Block keys
_BLOCK = {"ln_1": "norm1", "self_attention.in_proj_weight": "attn.qkv.weight",
          "self_attention.in_proj_bias": "attn.qkv.bias", "self_attention.out_proj": "attn.proj",
          "ln_2": "norm2", "mlp.0": "mlp.fc1", "mlp.3": "mlp.fc2"}


def _timm_key(key: str, pool: str) -> str | None:
    """timm's name of an anyssl ViT key (None: the normalization, kept in the JSON)."""
    if key.startswith("patch_embed."):
        return "patch_embed.proj." + key.removeprefix("patch_embed.")
    if key.startswith("norm."):  # timm's avg pool normalizes after pooling: fc_norm
        return ("fc_norm." if pool == "mean" else "norm.") + key.removeprefix("norm.")
    if key.startswith("blocks."):
        _, index, rest = key.split(".", 2)
        for ours, theirs in _BLOCK.items():
            if rest == ours or rest.startswith(ours + "."):
                return f"blocks.{index}.{theirs}{rest[len(ours):]}"
    return key if key == "cls_token" else None


def _timm_pos_embed(encoder: nn.Module) -> Tensor:
    """``1 x (1 + N) x D``: a zero row for the CLS token, then the sin-cos grid."""
    pos: Tensor = encoder.pos_embed  # type: ignore[assignment]
    return torch.cat([pos.new_zeros(1, pos.shape[1]), pos])[None].clone()


@register_layout(ViTEncoder)
class ViTLayout:
    """timm ``VisionTransformer`` names; ``pos_embed`` from the fixed sin-cos grid."""

    def to_plain(self, encoder: nn.Module) -> PlainWeights:
        vit: Any = encoder
        state = {t: v.detach().cpu().contiguous().clone() for k, v in vit.state_dict().items()
                 if (t := _timm_key(k, vit.pool)) is not None}
        state["pos_embed"] = _timm_pos_embed(vit).cpu()
        grid = round(vit.pos_embed.shape[0] ** 0.5)
        args = {"img_size": grid * vit.patch_size, "patch_size": vit.patch_size,
                "in_chans": int(vit.patch_embed.in_channels), "embed_dim": vit.out_dim,
                "depth": len(vit.blocks), "num_heads": vit.blocks[0].num_heads,
                "mlp_ratio": vit.blocks[0].mlp[0].out_features / vit.out_dim, "num_classes": 0,
                "global_pool": "token" if vit.pool == "cls" else "avg", "qkv_bias": True}
        call = ", ".join(f"{k}={v!r}" for k, v in args.items())
        load = ["from timm.models.vision_transformer import VisionTransformer",
                f"model = VisionTransformer({call})", LOAD_FILE,
                "model.load_state_dict(state_dict)"]
        return PlainWeights(state, "timm", "timm.models.vision_transformer.VisionTransformer",
                            load, {"model_args": args, "input_rule": INPUT_RULE})

    def key_map(self, encoder: nn.Module, state: Mapping[str, Tensor]) -> dict[str, str | None]:
        vit: Any = encoder
        ours = {t: k for k in vit.state_dict() if (t := _timm_key(k, vit.pool)) is not None}
        out: dict[str, str | None] = {k: ours[k] for k in state if k in ours}
        out.update({k: None for k in state if k.startswith("head.")})
        if "pos_embed" in state:
            _check_pos_embed(vit, state["pos_embed"])
            out["pos_embed"] = None
        return out


def _check_pos_embed(vit: Any, given: Tensor) -> None:
    """anyssl's ViT has fixed sin-cos positions: a learned ``pos_embed`` cannot load into it."""
    grid = round((given.shape[-2] - 1) ** 0.5) if given.dim() == 3 else 0
    want = sincos_position_embedding(grid, grid, vit.out_dim) if grid else None
    if want is None or given.shape[-1] != vit.out_dim or not torch.allclose(
            given[0, 1:].float().cpu(), want, atol=1e-4) or given[0, 0].abs().max() > 1e-6:
        raise ValueError("pos_embed is not the fixed 2-D sin-cos embedding anyssl's ViT uses "
                         "(MoCo v3); a ViT with learned positions loads as --encoder timm "
                         "-e name=NAME instead")
