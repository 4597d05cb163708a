"""A pre-norm Transformer encoder for series (Vaswani et al. 2017), with the time-series encoder
contract of ``encoders.py``: ``timesteps(x, time_mask)`` -> ``N x T x out_dim`` and
``forward(x)`` -> ``N x out_dim`` (max over the valid steps).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from anyssl.modalities.timeseries import series
from anyssl.modalities.timeseries.encoders import instance_vector, prepare_series
from anyssl.registry import ENCODERS

__all__ = ["SeriesTransformer", "sinusoidal_encoding"]


def sinusoidal_encoding(length: int, dim: int, device: torch.device | None = None,
                        dtype: torch.dtype | None = None) -> Tensor:
    """The sinusoidal positional encoding of Vaswani et al. 2017 (Sec. 3.5):
    ``PE[t, 2i] = sin(t / 10000^(2i/dim))``, ``PE[t, 2i+1] = cos(t / 10000^(2i/dim))``.

    Shape:
        ``length x dim`` (an odd ``dim`` drops the last cosine column).
    """
    t = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)  # T x 1
    two_i = torch.arange(0, dim + 1, 2, device=device, dtype=torch.float32)
    angle = t * torch.exp(-math.log(10000.0) * two_i / dim)  # T x (dim // 2 + 1)
    pe = torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1)[:, :dim]  # T x dim
    return pe.to(dtype or torch.get_default_dtype())


@ENCODERS.register("transformer", scope="timeseries")
class SeriesTransformer(nn.Module):
    """Linear per-step projection to ``d_model``, sinusoidal positions (computed for the batch's
    length, so no maximum length), a pre-norm ``nn.TransformerEncoder`` (``norm_first=True``,
    final LayerNorm), and an optional linear projection to ``out_dim`` (default: ``d_model``).

    Masking: invalid steps (no channel observed, including the right padding) are key-masked in
    attention, so no valid step attends to them and right padding leaves the valid steps'
    features unchanged; a series with no valid step attends to all its steps instead (an
    all-masked attention row is ``NaN`` in PyTorch) and pools to zeros. ``time_mask`` is *not*
    key-masking: a masked step's latent is zeroed after the input projection (as TS2Vec does),
    so it keeps only its position. The padded steps' output features are 0.

    Shape:
        ``timesteps``: ``N x in_channels x T`` -> ``N x T x out_dim``;
        ``forward``: ``N x in_channels x T`` -> ``N x out_dim``.
    """

    def __init__(self, in_channels: int = 1, length: int | None = None, d_model: int = 128,
                 nhead: int = 4, num_layers: int = 3, dim_feedforward: int = 256,
                 dropout: float = 0.1, out_dim: int | None = None) -> None:
        super().__init__()
        for name, v in {"in_channels": in_channels, "d_model": d_model, "nhead": nhead,
                        "num_layers": num_layers, "dim_feedforward": dim_feedforward,
                        "out_dim": out_dim if out_dim is not None else 1}.items():
            if v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        if d_model % nhead:
            raise ValueError(f"d_model ({d_model}) must be divisible by nhead ({nhead})")
        self.in_channels = in_channels
        self.d_model = d_model
        self.input_proj = nn.Linear(in_channels, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(d_model),
                                             enable_nested_tensor=False)
        self.out_proj = nn.Linear(d_model, out_dim) if out_dim is not None else None
        self.out_dim: int = out_dim if out_dim is not None else d_model

    def timesteps(self, x: Tensor, time_mask: Tensor | None = None) -> Tensor:
        filled, keep, pad = prepare_series(x, self.in_channels, time_mask)
        valid = series.valid_steps(x)  # N x T
        h = self.input_proj(filled.transpose(1, 2))  # N x T x d_model
        h = h.masked_fill(~keep.unsqueeze(-1), 0.0)
        h = h + sinusoidal_encoding(h.shape[1], self.d_model, h.device, h.dtype)
        ignore = ~valid & valid.any(dim=1, keepdim=True)  # N x T; empty series ignore nothing
        h = self.encoder(h, src_key_padding_mask=ignore)  # N x T x d_model
        if self.out_proj is not None:
            h = self.out_proj(h)  # N x T x out_dim
        return h.masked_fill(pad.unsqueeze(-1), 0.0)

    def forward(self, x: Tensor) -> Tensor:
        return instance_vector(self.timesteps(x), x)  # N x out_dim
