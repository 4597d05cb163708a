"""Image Vision Transformers (Dosovitskiy et al. 2021): ``vit_tiny`` and ``vit_small``.

The transformer blocks are torchvision's ``EncoderBlock`` (pre-norm attention + MLP, LayerNorm
eps 1e-6). torchvision's whole ``VisionTransformer`` does not fit: it asserts one input size
(DINO's and SwAV's multi-crop feeds the same network 32 px and 16 px views) and pools the CLS
token only. Around the blocks this file keeps what MoCo v3's ``vits.py`` does
(facebookresearch/moco-v3, vits.py L25-69): a fixed 2-D sin-cos position embedding (computed
for any grid, so every crop size divisible into patches works), xavier-uniform weights with
Q, K and V treated separately, zero biases, a CLS token of std 1e-6.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from anyssl.modalities.image.encoders import Normalize, _check_shape_args
from anyssl.registry import ENCODERS

__all__ = ["ViTEncoder", "default_patch_size", "sincos_position_embedding", "vit_small",
           "vit_tiny"]

POOLS = ("cls", "mean")


def default_patch_size(image_size: int) -> int:
    """Patch size for ``image_size``: 4 px below 64 px (solo-learn's CIFAR ViTs,
    scripts/pretrain/cifar/mae.yaml: ``patch_size: 4, img_size: 32``), 8 px below 128 px (an
    8 to 16 patch grid, as DINO's ViT-S/8), 16 px from 128 px (DINO main_dino.py
    ``--patch_size 16``; MoCo v3 vits.py L117)."""
    if image_size < 64:
        return 4
    return 8 if image_size < 128 else 16


def sincos_position_embedding(grid_h: int, grid_w: int, dim: int,
                              temperature: float = 10000.0) -> Tensor:
    """Fixed 2-D sin-cos position embedding of MoCo v3 (vits.py L53-64): ``dim / 4`` features
    each for sin and cos of the row index, then of the column index (MoCo v3's order on its
    square grids, whose ``meshgrid`` puts the first index on the rows of the raster sequence).

    Shape:
        -> ``(grid_h * grid_w) x dim``, rows in raster order (row-major, as the patch
        sequence of ``Conv2d(...).flatten(2)``).
    """
    if dim % 4:
        raise ValueError(f"the sin-cos position embedding needs a dim divisible by 4, got {dim}")
    rows, cols = torch.meshgrid(torch.arange(grid_h, dtype=torch.float32),
                                torch.arange(grid_w, dtype=torch.float32), indexing="ij")
    omega = 1.0 / temperature ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4))
    out_r = rows.flatten()[:, None] * omega[None]  # HW x dim/4
    out_c = cols.flatten()[:, None] * omega[None]  # HW x dim/4
    return torch.cat([out_r.sin(), out_r.cos(), out_c.sin(), out_c.cos()], dim=1)


class ViTEncoder(nn.Module):
    """A ViT: patch embedding, CLS token + fixed sin-cos positions, ``depth`` torchvision
    encoder blocks, LayerNorm, then the CLS token (``pool="cls"``, DINO and MoCo v3) or the
    mean of the patch tokens (``pool="mean"``). ``out_dim = embed_dim``.

    ``patch_embed`` is the patch-embedding ``Conv2d``; ``freeze_patch_embed=True`` stops its
    gradient, MoCo v3's ``--stop-grad-conv1`` (sec. 5, "random patch projection";
    vits.py L49-51). Inputs of any size divisible by ``patch_size`` work (a remainder is
    cropped by the strided conv, as DINO's ``PatchEmbed``).

    Shape:
        ``B x in_channels x H x W`` float [0, 1] or uint8 -> ``B x embed_dim``.
    """

    pos_embed: Tensor

    def __init__(self, embed_dim: int, depth: int, num_heads: int, in_channels: int = 3,
                 image_size: int = 224, patch_size: int | None = None, pool: str = "cls",
                 mlp_ratio: float = 4.0, freeze_patch_embed: bool = False,
                 mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> None:
        super().__init__()
        from torchvision.models.vision_transformer import EncoderBlock  # keeps plugin import fast

        _check_shape_args(in_channels, image_size)
        patch = default_patch_size(image_size) if patch_size is None else patch_size
        _check_patch_size(patch, image_size)
        if pool not in POOLS:
            raise ValueError(f"unknown ViT pool {pool!r}; valid: {', '.join(POOLS)}")
        self.patch_size, self.pool, self.out_dim = patch, pool, embed_dim
        self.normalize = Normalize(in_channels, mean, std)
        self.patch_embed = nn.Conv2d(in_channels, embed_dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        grid = image_size // patch
        self.register_buffer("pos_embed", sincos_position_embedding(grid, grid, embed_dim),
                             persistent=False)  # fixed (vits.py L69); recomputed, not saved
        self.blocks = nn.Sequential(*[
            EncoderBlock(num_heads, embed_dim, int(embed_dim * mlp_ratio), 0.0, 0.0)
            for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self._init_weights(in_channels)
        self.patch_embed.requires_grad_(not freeze_patch_embed)

    def _init_weights(self, in_channels: int) -> None:
        """MoCo v3's init (vits.py L31-47), with torchvision's fused ``in_proj`` as its qkv."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.MultiheadAttention) and module.in_proj_weight is not None:
                d3, d = module.in_proj_weight.shape  # 3D x D: Q, K, V treated separately
                val = math.sqrt(6.0 / (d3 // 3 + d))
                nn.init.uniform_(module.in_proj_weight, -val, val)
                nn.init.zeros_(module.in_proj_bias)
        nn.init.normal_(self.cls_token, std=1e-6)
        fan = in_channels * self.patch_size**2 + self.out_dim  # xavier for the patch conv
        val = math.sqrt(6.0 / fan)
        nn.init.uniform_(self.patch_embed.weight, -val, val)
        nn.init.zeros_(self.patch_embed.bias)  # type: ignore[arg-type]

    def _positions(self, grid_h: int, grid_w: int, like: Tensor) -> Tensor:
        """The position embedding of a ``grid_h x grid_w`` patch grid (cached for the
        construction size)."""
        if grid_h * grid_w == self.pos_embed.shape[0] and grid_h == grid_w:
            pos = self.pos_embed
        else:
            pos = sincos_position_embedding(grid_h, grid_w, self.out_dim).to(like.device)
        return pos.to(like.dtype)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if h < self.patch_size or w < self.patch_size:
            raise ValueError(f"ViT input {h}x{w} px is smaller than one {self.patch_size} px "
                             "patch; use larger views or a smaller -e patch_size")
        tokens = self.patch_embed(self.normalize(x))  # B x D x h' x w'
        gh, gw = tokens.shape[-2:]
        tokens = tokens.flatten(2).transpose(1, 2)  # B x h'w' x D
        tokens = tokens + self._positions(gh, gw, tokens)
        cls = self.cls_token.to(tokens.dtype).expand(tokens.shape[0], -1, -1)  # B x 1 x D
        tokens = self.blocks(torch.cat([cls, tokens], dim=1))  # B x (1 + h'w') x D
        if self.pool == "cls":
            return self.norm(tokens)[:, 0]  # B x D
        return self.norm(tokens[:, 1:].mean(dim=1))  # B x D (mean of the patch tokens)


def _check_patch_size(patch_size: int, image_size: int) -> None:
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1 or (
            image_size % patch_size):
        valid = [p for p in range(1, image_size + 1) if image_size % p == 0]
        raise ValueError(f"ViT patch_size {patch_size!r} does not divide image_size "
                         f"{image_size}; valid: {', '.join(map(str, valid))}")


@ENCODERS.register("vit_tiny", scope="image")
def vit_tiny(in_channels: int = 3, image_size: int = 224, patch_size: int | None = None,
             pool: str = "cls", freeze_patch_embed: bool = False,
             mean: Sequence[float] | None = None,
             std: Sequence[float] | None = None) -> ViTEncoder:
    """ViT-Tiny (192-d, 12 layers, 3 heads; DINO vision_transformer.py L236-240), random
    init; 4 px patches below 64 px, 16 px from 128 px; -e pool=cls|mean."""
    return ViTEncoder(192, 12, 3, in_channels, image_size, patch_size, pool,
                      freeze_patch_embed=freeze_patch_embed, mean=mean, std=std)


@ENCODERS.register("vit_small", scope="image")
def vit_small(in_channels: int = 3, image_size: int = 224, patch_size: int | None = None,
              pool: str = "cls", freeze_patch_embed: bool = False,
              mean: Sequence[float] | None = None,
              std: Sequence[float] | None = None) -> ViTEncoder:
    """ViT-Small (384-d, 12 layers, 6 heads; DINO vision_transformer.py L243-247), random
    init; 4 px patches below 64 px, 16 px from 128 px; -e pool=cls|mean."""
    return ViTEncoder(384, 12, 6, in_channels, image_size, patch_size, pool,
                      freeze_patch_embed=freeze_patch_embed, mean=mean, std=std)
