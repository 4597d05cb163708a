"""DINO's projection head (Caron et al. 2021, sec. 3.1 and App. C; ``vision_transformer.py``
``DINOHead``): an MLP to a bottleneck, L2 normalization, then a weight-normalized linear layer
to K prototypes."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DINOHead", "WeightNormLinear"]


class WeightNormLinear(nn.Module):
    """A bias-free linear layer with weight normalization (Salimans & Kingma 2016): row ``k`` of
    the weight is ``weight_g[k] * weight_v[k] / ||weight_v[k]||`` (``nn.utils.weight_norm`` with
    ``dim=0``, written out so that the layer deep-copies into an EMA teacher). ``weight_g``
    starts at 1; with ``fix_norm`` it is frozen there (DINO's ``norm_last_layer``).

    Shape: N x in_dim -> N x out_dim.
    """

    def __init__(self, in_dim: int, out_dim: int, fix_norm: bool = True) -> None:
        super().__init__()
        self.weight_v = nn.Parameter(nn.Linear(in_dim, out_dim, bias=False).weight.detach())
        self.weight_g = nn.Parameter(torch.ones(out_dim, 1), requires_grad=not fix_norm)

    def forward(self, x: Tensor) -> Tensor:
        v = self.weight_v  # out x in
        return F.linear(x, self.weight_g * v / v.norm(dim=1, keepdim=True))  # N x out

    def extra_repr(self) -> str:
        out_dim, in_dim = self.weight_v.shape
        return f"in={in_dim}, out={out_dim}, fix_norm={not self.weight_g.requires_grad}"


class DINOHead(nn.Module):
    """``num_layers`` linear layers (GELU between them, BatchNorm with ``use_bn``) from
    ``in_dim`` through ``hidden_dim`` to a ``bottleneck_dim`` embedding, L2-normalized, then a
    weight-normalized layer ``last_layer`` to ``out_dim`` prototype scores (``DINOHead``:
    ``nlayers=3, hidden_dim=2048, bottleneck_dim=256``; the MLP's weights truncated-normal
    with std 0.02, biases 0).

    Shape: N x in_dim -> N x out_dim.
    """

    def __init__(self, in_dim: int, out_dim: int = 65536, hidden_dim: int = 2048,
                 bottleneck_dim: int = 256, num_layers: int = 3, use_bn: bool = False,
                 norm_last_layer: bool = True) -> None:
        super().__init__()
        if num_layers < 1 or min(in_dim, out_dim, hidden_dim, bottleneck_dim) < 1:
            raise ValueError(
                f"DINOHead needs num_layers >= 1 and positive dims, got num_layers={num_layers}, "
                f"in={in_dim}, hidden={hidden_dim}, bottleneck={bottleneck_dim}, out={out_dim}")
        self.in_dim, self.out_dim = in_dim, out_dim
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [bottleneck_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(dims)):
            layers.append(nn.Linear(a, b))
            if i < num_layers - 1:
                layers += [nn.BatchNorm1d(b)] if use_bn else []
                layers.append(nn.GELU())
        self.mlp = nn.Sequential(*layers)
        for m in self.mlp.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.last_layer = WeightNormLinear(bottleneck_dim, out_dim, fix_norm=norm_last_layer)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"DINOHead expects N x {self.in_dim} inputs, got {tuple(x.shape)}")
        return self.last_layer(F.normalize(self.mlp(x), dim=-1))  # N x out_dim
