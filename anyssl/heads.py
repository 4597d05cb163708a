"""MLP heads: the projector and predictor that sit on top of an encoder.

One class covers the heads of the methods here: BYOL's projector and predictor
(Linear-BN-ReLU-Linear), SimCLR's reference projector (BatchNorm after every layer, the last one
with a learnable scale and no shift), MoCo v2's BN-free MLP, MoCo v1's single linear layer and
the SimCLR v2 / MoCo v3 heads that end with a non-affine BatchNorm.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["MLPHead"]


class MLPHead(nn.Module):
    """``num_layers`` linear layers; every one but the last is followed by BatchNorm (when
    ``batch_norm``) and ReLU; the last by a non-affine BatchNorm when ``last_bn`` (SimCLR v2,
    Chen et al. 2020b; MoCo v3, Chen et al. 2021), or with ``last_bn_scale`` by a BatchNorm with
    a learnable per-feature scale and no shift (google-research/simclr's ``projection_head``:
    ``batch_norm_relu(..., center=False)``, scale on). ``num_layers=1`` is a plain linear head
    (MoCo v1). Linear layers followed by BatchNorm have no bias (the BN shift replaces it).

    Shape: N x in_dim -> N x out_dim.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        out_dim: int,
        num_layers: int = 2,
        batch_norm: bool = True,
        last_bn: bool = False,
        last_bn_scale: bool = False,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if min(in_dim, hidden_dim, out_dim) < 1:
            raise ValueError(
                f"head dims must be positive, got in={in_dim}, hidden={hidden_dim}, out={out_dim}"
            )
        self.in_dim, self.out_dim = in_dim, out_dim
        layers: list[nn.Module] = []
        dim = in_dim
        for _ in range(num_layers - 1):
            layers.append(nn.Linear(dim, hidden_dim, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.ReLU(inplace=True))
            dim = hidden_dim
        layers.append(nn.Linear(dim, out_dim, bias=not (last_bn or last_bn_scale)))
        if last_bn or last_bn_scale:
            bn = nn.BatchNorm1d(out_dim, affine=last_bn_scale)
            if last_bn_scale:
                bn.register_parameter("bias", None)  # scale only (center=False)
            layers.append(bn)
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"MLPHead expects N x {self.in_dim} inputs, got {tuple(x.shape)}")
        return self.layers(x)  # N x out_dim
