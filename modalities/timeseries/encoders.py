"""Time-series encoders: TS2Vec's dilated convolutions (Yue et al. 2022) and the ResNet baseline
of Wang, Yan & Oates 2017. The Transformer lives in ``encoders_transformer.py``.

Every encoder takes ``in_channels`` and ``length`` (the dataset's ``encoder_kwargs``; ``length``
is accepted and unused here), fixes ``out_dim`` at construction and has two calls:

* ``timesteps(x, time_mask=None)``: ``N x C x T`` (``NaN`` = missing / right padding, see
  ``series.py``) -> ``N x T x out_dim`` per-step features. ``NaN`` is filled with 0; steps that
  are not valid, and steps where ``time_mask`` (``N x T`` bool, True = keep) is False, are zeroed
  in the latent right after the input layer (TS2Vec ``TSEncoder.forward``: ``x[~mask] = 0``).
  The right padding (every step at or after ``series.lengths``) is zeroed again after every
  layer that mixes time steps, so padding never changes the features of the valid steps, and
  the padded steps' features are 0.
* ``forward(x)``: ``N x out_dim``, the max over the valid steps of ``timesteps(x)`` (TS2Vec's
  full-series max pooling).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anyssl.modalities.timeseries import series
from anyssl.registry import ENCODERS

__all__ = ["ConvBlock", "DilatedConvEncoder", "ResNet1d", "SamePadConv", "TSEncoder",
           "conv_time", "instance_vector", "padding_steps", "prepare_series", "time_last"]


def padding_steps(x: Tensor) -> Tensor:
    """``N x T`` bool: the right padding, i.e. the steps at or after ``series.lengths(x)``."""
    t = torch.arange(x.shape[-1], device=x.device)
    return t.unsqueeze(0) >= series.lengths(x).unsqueeze(1)


def prepare_series(x: Tensor, in_channels: int,
                   time_mask: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Check the batch, fill ``NaN`` with 0 and build the step masks.

    Shape:
        ``x`` N x C x T, ``time_mask`` N x T bool or None -> filled ``x`` N x C x T,
        ``keep`` N x T bool (valid and not time-masked), ``pad`` N x T bool (right padding).
    """
    series.check_series(x, "time-series encoders")
    if x.shape[1] != in_channels:
        raise ValueError(f"this encoder was built for {in_channels} channels, got a batch with "
                         f"{x.shape[1]}; build it with in_channels={x.shape[1]}")
    keep = series.valid_steps(x)
    if time_mask is not None:
        if time_mask.dtype != torch.bool or tuple(time_mask.shape) != tuple(keep.shape):
            raise ValueError(f"time_mask must be a bool tensor of shape {tuple(keep.shape)} "
                             f"(N x T, True = keep), got {time_mask.dtype} "
                             f"{tuple(time_mask.shape)}")
        keep = keep & time_mask
    return series.fill(x), keep, padding_steps(x)


def instance_vector(h: Tensor, x: Tensor) -> Tensor:
    """Max-pool per-step features over the valid steps of ``x`` (TS2Vec's instance vector).

    Shape:
        ``h`` N x T x D, ``x`` N x C x T -> N x D.
    """
    return series.masked_max_pool(h, series.valid_steps(x))


def _zero_steps(h: Tensor, steps: Tensor) -> Tensor:
    """Zero the ``N x T`` ``steps`` of a channel-first ``N x D x T`` (or ``N x D x 1 x T``)
    tensor. ``torch.where`` keeps a channels-last layout (``masked_fill`` returns a contiguous
    copy, which would send the next conv down oneDNN's slower path)."""
    mask = steps.view(steps.shape[0], *[1] * (h.dim() - 2), steps.shape[1])
    return torch.where(mask, h.new_zeros(()), h)


def _check_positive(**values: int) -> None:
    for name, v in values.items():
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")


# -- TS2Vec (Yue et al. 2022, models/dilated_conv.py and models/encoder.py) --------------------
def conv_time(x: Tensor, conv: nn.Conv1d) -> Tensor:
    """``conv`` (a ``Conv1d``, its own padding and dilation) on a time-last 4-d tensor.

    The same sums as ``conv(x.squeeze(2))``, run as a 1 x k ``conv2d`` on a channels-last
    tensor: oneDNN's channels-last kernels are ~1.6x faster than its ``conv1d`` on ``N x C x T``
    (forward + backward, one thread, 8 x 64 x 1,460; the whole step: ``benchmarks/
    timeseries_speed.py``), and the layout is the memory of ``N x T x C``, so the per-step
    input layer and the output need no copy.

    When the dilation is at least the series' length (TS2Vec's last blocks on crops shorter
    than 1,024 or 512 steps), every tap but the centre one reads only the zero padding: the
    conv is then the centre tap's per-step matmul, the same sums without the zero products
    (a third of the work).

    Shape: ``N x in x 1 x T`` (channels-last) -> ``N x out x 1 x T'`` (channels-last).
    """
    k, d, centre = conv.kernel_size[0], conv.dilation[0], conv.kernel_size[0] // 2
    if k == 1 or (k % 2 == 1 and conv.padding[0] == d * centre and d >= x.shape[-1]):
        out = F.linear(x.permute(0, 2, 3, 1), conv.weight[:, :, centre], conv.bias)
        return out.permute(0, 3, 1, 2)  # N x out x 1 x T, channels-last
    weight = conv.weight.unsqueeze(2)  # out x in x 1 x k
    return F.conv2d(x, weight, conv.bias, padding=(0, int(conv.padding[0])),
                    dilation=(1, int(conv.dilation[0])))


def time_last(h: Tensor) -> Tensor:
    """``N x T x C`` -> the same memory as ``N x C x 1 x T`` channels-last (no copy when ``h``
    is contiguous), the layout ``conv_time`` runs on."""
    return h.transpose(1, 2).unsqueeze(2).contiguous(memory_format=torch.channels_last)


class SamePadConv(nn.Module):
    """TS2Vec's ``SamePadConv``: a dilated Conv1d padded by ``receptive_field // 2`` on both
    sides, dropping the last output when the receptive field is even (so ``T`` in = ``T`` out).
    Runs through ``conv_time`` (parameters as the reference's ``nn.Conv1d``).

    Shape:
        ``N x in_channels x 1 x T`` -> ``N x out_channels x 1 x T`` (channels-last).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 dilation: int = 1) -> None:
        super().__init__()
        self.receptive_field = (kernel_size - 1) * dilation + 1
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size,
                              padding=self.receptive_field // 2, dilation=dilation)
        self.remove = 1 if self.receptive_field % 2 == 0 else 0

    def forward(self, x: Tensor) -> Tensor:
        out = conv_time(x, self.conv)
        return out[..., : -self.remove] if self.remove > 0 else out


class ConvBlock(nn.Module):
    """TS2Vec's residual block: GELU -> SamePadConv -> GELU -> SamePadConv (both with the
    block's dilation) + residual (a 1x1 conv when the width changes or for the final block).
    The right padding ``pad`` is re-zeroed after the first conv and on the output.

    Shape:
        ``N x in_channels x 1 x T``, ``pad`` N x T -> ``N x out_channels x 1 x T``
        (channels-last, see ``conv_time``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int,
                 final: bool = False) -> None:
        super().__init__()
        self.conv1 = SamePadConv(in_channels, out_channels, kernel_size, dilation=dilation)
        self.conv2 = SamePadConv(out_channels, out_channels, kernel_size, dilation=dilation)
        self.projector = (nn.Conv1d(in_channels, out_channels, 1)
                          if in_channels != out_channels or final else None)

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:
        residual = x if self.projector is None else conv_time(x, self.projector)
        h = _zero_steps(self.conv1(F.gelu(x)), pad)
        h = self.conv2(F.gelu(h))
        return _zero_steps(h + residual, pad)


class DilatedConvEncoder(nn.Module):
    """TS2Vec's stack of ``ConvBlock``s; block ``i`` has dilation ``2**i``.

    Shape:
        ``N x in_channels x 1 x T``, ``pad`` N x T -> ``N x channels[-1] x 1 x T``
        (channels-last, see ``conv_time``).
    """

    def __init__(self, in_channels: int, channels: Sequence[int], kernel_size: int) -> None:
        super().__init__()
        self.net = nn.ModuleList(
            ConvBlock(channels[i - 1] if i > 0 else in_channels, channels[i], kernel_size,
                      dilation=2**i, final=i == len(channels) - 1)
            for i in range(len(channels))
        )

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:
        for block in self.net:
            x = block(x, pad)
        return x


@ENCODERS.register("dilated_conv", scope="timeseries")
class TSEncoder(nn.Module):
    """TS2Vec's encoder (Yue et al. 2022, Sec. 3.1): per-step linear projection to
    ``hidden_dim``, zeroing of missing / masked steps, ``depth`` dilated residual conv blocks of
    width ``hidden_dim`` plus a final one of width ``out_dim``, then dropout (``repr_dropout``).

    Defaults are TS2Vec's: hidden 64, out 320, depth 10, kernel 3, dropout 0.1. Its random
    masking (binomial, continuous, ...) is drawn by the method and passed as ``time_mask``.
    Differences from the reference code: ``NaN`` is filled per entry (TS2Vec zeroes a whole step
    when any channel is ``NaN``; identical for one channel), and the right padding is re-zeroed
    inside the blocks (a no-op on a batch without right padding). The blocks run channels-last
    through ``conv_time`` (the same sums, faster on the CPU). ``receptive_field``: the number
    of input steps one output step sees, ``1 + 2 (kernel_size - 1) (2**(depth + 1) - 1)``.

    Shape:
        ``timesteps``: ``N x in_channels x T`` -> ``N x T x out_dim``;
        ``forward``: ``N x in_channels x T`` -> ``N x out_dim``.
    """

    def __init__(self, in_channels: int = 1, length: int | None = None, hidden_dim: int = 64,
                 out_dim: int = 320, depth: int = 10, kernel_size: int = 3,
                 dropout: float = 0.1) -> None:
        super().__init__()
        _check_positive(in_channels=in_channels, hidden_dim=hidden_dim, out_dim=out_dim,
                        kernel_size=kernel_size)
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        self.in_channels = in_channels
        self.out_dim: int = out_dim
        self.input_fc = nn.Linear(in_channels, hidden_dim)
        self.feature_extractor = DilatedConvEncoder(hidden_dim, [hidden_dim] * depth + [out_dim],
                                                    kernel_size)
        self.repr_dropout = nn.Dropout(p=dropout)
        self.receptive_field: int = 1 + 2 * (kernel_size - 1) * (2 ** (depth + 1) - 1)

    def timesteps(self, x: Tensor, time_mask: Tensor | None = None) -> Tensor:
        x, keep, pad = prepare_series(x, self.in_channels, time_mask)
        h = self.input_fc(x.transpose(1, 2))  # N x T x hidden
        h = time_last(h.masked_fill(~keep.unsqueeze(-1), 0.0))  # N x hidden x 1 x T
        h = self.repr_dropout(self.feature_extractor(h, pad))  # N x out_dim x 1 x T
        return h.squeeze(2).transpose(1, 2)  # N x T x out_dim (contiguous: channels-last)

    def forward(self, x: Tensor) -> Tensor:
        return instance_vector(self.timesteps(x), x)  # N x out_dim


# -- ResNet baseline (Wang, Yan & Oates 2017) ---------------------------------------------------
class ResidualBlock1d(nn.Module):
    """Three Conv1d (kernels 8, 5, 3, 'same' padding) + BatchNorm, ReLU after the first two;
    the shortcut (1x1 conv + BN when the width changes, else BN, as in the reference Keras
    code) is added and followed by ReLU. The right padding is re-zeroed after every conv.

    Shape:
        ``N x in_channels x T``, ``pad`` N x T -> ``N x out_channels x T``.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_sizes: Sequence[int] = (8, 5, 3)) -> None:
        super().__init__()
        widths = [in_channels] + [out_channels] * len(kernel_sizes)
        self.convs = nn.ModuleList(nn.Conv1d(widths[i], widths[i + 1], k)
                                   for i, k in enumerate(kernel_sizes))
        # 'same' padding, the extra step on the right for even kernels (as Keras pads)
        self.pads = [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in kernel_sizes]
        self.norms = nn.ModuleList(nn.BatchNorm1d(out_channels) for _ in kernel_sizes)
        self.shortcut: nn.Module = (
            nn.Sequential(nn.Conv1d(in_channels, out_channels, 1), nn.BatchNorm1d(out_channels))
            if in_channels != out_channels else nn.BatchNorm1d(out_channels))

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:
        h = x
        last = len(self.convs) - 1
        for i, (conv, norm, lr) in enumerate(zip(self.convs, self.norms, self.pads, strict=True)):
            h = norm(conv(F.pad(h, lr)))
            h = _zero_steps(F.relu(h) if i < last else h, pad)
        return _zero_steps(F.relu(h + self.shortcut(x)), pad)


@ENCODERS.register("resnet1d", scope="timeseries")
class ResNet1d(nn.Module):
    """The fully convolutional ResNet baseline of Wang, Yan & Oates 2017 ("Time series
    classification from scratch with deep neural networks"): residual blocks of widths 64, 128,
    128, without the global average pool and classifier. ``out_dim`` is the last width unless
    ``out_dim`` is given, which adds a final 1x1 conv projection.

    ``time_mask`` zeroes the masked steps of the (filled) input, since there is no per-step
    input layer. Padding invariance: in eval mode, a right-padded series gives exactly the
    features of the unpadded one. In train mode BatchNorm's batch statistics include the zeroed
    padding, so the features of the valid steps depend on how much padding the batch holds (as
    they depend on the other samples); the padded steps' features are still 0.

    Shape:
        ``timesteps``: ``N x in_channels x T`` -> ``N x T x out_dim``;
        ``forward``: ``N x in_channels x T`` -> ``N x out_dim``.
    """

    def __init__(self, in_channels: int = 1, length: int | None = None,
                 widths: Sequence[int] = (64, 128, 128), out_dim: int | None = None) -> None:
        super().__init__()
        _check_positive(in_channels=in_channels, n_widths=len(widths),
                        min_width=min(widths, default=1),
                        out_dim=out_dim if out_dim is not None else 1)
        self.in_channels = in_channels
        ins = [in_channels, *widths[:-1]]
        self.blocks = nn.ModuleList(ResidualBlock1d(i, o) for i, o in zip(ins, widths, strict=True))
        self.projection = nn.Conv1d(widths[-1], out_dim, 1) if out_dim is not None else None
        self.out_dim: int = out_dim if out_dim is not None else int(widths[-1])

    def timesteps(self, x: Tensor, time_mask: Tensor | None = None) -> Tensor:
        x, keep, pad = prepare_series(x, self.in_channels, time_mask)
        h = _zero_steps(x, ~keep)  # N x C x T
        for block in self.blocks:
            h = block(h, pad)  # N x width x T
        if self.projection is not None:
            h = _zero_steps(self.projection(h), pad)  # N x out_dim x T
        return h.transpose(1, 2)  # N x T x out_dim

    def forward(self, x: Tensor) -> Tensor:
        return instance_vector(self.timesteps(x), x)  # N x out_dim
