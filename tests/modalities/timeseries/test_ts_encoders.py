"""Time-series encoders: registry contract, NaN / padding / time_mask handling, gradients, parity
of ``dilated_conv`` with TS2Vec's TSEncoder, receptive field, ResNet and Transformer wiring."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anyssl.modalities.timeseries.encoders import ResNet1d, TSEncoder, conv_time, time_last
from anyssl.modalities.timeseries.encoders_transformer import (
    SeriesTransformer,
    sinusoidal_encoding,
)
from anyssl.registry import ENCODERS

NAMES = ["dilated_conv", "resnet1d", "transformer"]
DEFAULT_DIM = {"dilated_conv": 320, "resnet1d": 128, "transformer": 128}
SMALL: dict[str, dict[str, object]] = {
    "dilated_conv": {"hidden_dim": 8, "out_dim": 12, "depth": 2},
    "resnet1d": {"widths": (8, 16, 16)},
    "transformer": {"d_model": 16, "nhead": 2, "num_layers": 2, "dim_feedforward": 32},
}


def small(name: str, in_channels: int = 2, length: int = 40, **kw: object) -> Any:
    torch.manual_seed(0)
    return ENCODERS.build(name, "timeseries", in_channels=in_channels, length=length,
                          **{**SMALL[name], **kw})


def batch(n: int = 3, c: int = 2, t: int = 40, seed: int = 1) -> Tensor:
    return torch.randn(n, c, t, generator=torch.Generator().manual_seed(seed))


def with_nan(x: Tensor) -> Tensor:
    """Sample 1 right-padded after step 25, sample 2 with missing entries and a missing step."""
    x = x.clone()
    x[1, :, 25:] = float("nan")
    x[2, 0, 5:9] = float("nan")
    x[2, :, 12] = float("nan")
    return x


# -- contract -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_registered_default_size_shapes(name: str) -> None:
    torch.manual_seed(0)
    enc = ENCODERS.get(name, "timeseries")(in_channels=3, length=50).eval()
    assert isinstance(enc.out_dim, int) and enc.out_dim == DEFAULT_DIM[name]
    x = batch(2, 3, 50)
    h, z = enc.timesteps(x), enc(x)
    assert h.shape == (2, 50, enc.out_dim) and z.shape == (2, enc.out_dim)
    assert torch.isfinite(h).all() and torch.isfinite(z).all()
    torch.testing.assert_close(z, h.amax(dim=1))  # no NaN: pooling is the plain max


@pytest.mark.parametrize("name", NAMES)
def test_out_dim_argument(name: str) -> None:
    enc = small(name, out_dim=7)
    assert enc.out_dim == 7
    assert enc.timesteps(batch()).shape == (3, 40, 7) and enc(batch()).shape == (3, 7)


# -- NaN, padding, time_mask --------------------------------------------------------------------
@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_right_padding_does_not_change_valid_features_in_eval(name: str, grad: bool) -> None:
    enc = small(name).eval()
    x = with_nan(batch())
    padded = torch.cat([x, torch.full((3, 2, 15), float("nan"))], dim=-1)
    with torch.set_grad_enabled(grad):
        h, hp, z, zp = enc.timesteps(x), enc.timesteps(padded), enc(x), enc(padded)
        alone = enc.timesteps(x[1:2, :, :25])  # sample 1 without its padding
    torch.testing.assert_close(hp[:, :40], h, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(zp, z, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h[1, :25], alone[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(z[1], alone[0].amax(dim=0), atol=1e-5, rtol=1e-5)
    assert (hp[:, 40:] == 0).all() and (h[1, 25:] == 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_missing_values_give_finite_features_and_zero_padding_in_train(name: str) -> None:
    enc = small(name).train()
    x = with_nan(batch())
    x[0] = float("nan")  # an empty series
    h, z = enc.timesteps(x), enc(x)
    assert torch.isfinite(h).all() and torch.isfinite(z).all()
    assert (h[0] == 0).all() and (z[0] == 0).all()
    assert (h[1, 25:] == 0).all() and h[1, :25].abs().sum() > 0 and h[2].abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_time_mask_hides_the_masked_steps(name: str) -> None:
    enc = small(name).eval()
    x = with_nan(batch())
    mask = torch.zeros(3, 40, dtype=torch.bool)
    mask[:, 3:30:4] = True
    h, hm = enc.timesteps(x), enc.timesteps(x, mask)
    assert torch.isfinite(hm).all() and not torch.allclose(h, hm, atol=1e-4)
    changed = x.clone()
    changed[..., ~mask[0]] = changed[..., ~mask[0]] * 3 + 1  # only masked steps change
    torch.testing.assert_close(enc.timesteps(changed, mask), hm, atol=1e-5, rtol=1e-5)
    everything = torch.ones(3, 40, dtype=torch.bool)
    torch.testing.assert_close(enc.timesteps(x, everything), h)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_are_finite_with_nan_input(name: str) -> None:
    enc = small(name).train()
    x = with_nan(batch())
    x[0] = float("nan")
    x.requires_grad_(True)
    mask = torch.rand(3, 40, generator=torch.Generator().manual_seed(2)) > 0.5
    loss = enc(x).sum() + enc.timesteps(x, mask).pow(2).mean()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    grads = [p.grad for p in enc.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0
    assert x.grad[1, :, :25].abs().sum() > 0 and (x.grad[1, :, 25:] == 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_raise(name: str) -> None:
    enc = small(name)
    bad: list[Callable[[], object]] = [
        lambda: enc(batch(c=3)),
        lambda: enc(torch.randn(2, 40)),
        lambda: enc(torch.zeros(2, 2, 40, dtype=torch.long)),
        lambda: enc.timesteps(batch(), torch.ones(3, 39, dtype=torch.bool)),
        lambda: enc.timesteps(batch(), torch.ones(3, 40)),
    ]
    for call in bad:
        with pytest.raises(ValueError):
            call()


def test_bad_constructor_arguments_raise() -> None:
    with pytest.raises(ValueError, match="divisible"):
        SeriesTransformer(in_channels=1, d_model=10, nhead=4)
    with pytest.raises(ValueError, match="hidden_dim"):
        TSEncoder(in_channels=1, hidden_dim=0)
    with pytest.raises(ValueError, match="in_channels"):
        ResNet1d(in_channels=0)


# -- dilated_conv: parity with TS2Vec's TSEncoder (Yue et al. 2022, models/) --------------------
class RefSamePadConv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, dilation: int = 1) -> None:
        super().__init__()
        self.receptive_field = (k - 1) * dilation + 1
        self.conv = nn.Conv1d(cin, cout, k, padding=self.receptive_field // 2, dilation=dilation)
        self.remove = 1 if self.receptive_field % 2 == 0 else 0

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        return out[:, :, : -self.remove] if self.remove > 0 else out


class RefConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, dilation: int, final: bool = False) -> None:
        super().__init__()
        self.conv1 = RefSamePadConv(cin, cout, k, dilation=dilation)
        self.conv2 = RefSamePadConv(cout, cout, k, dilation=dilation)
        self.projector = nn.Conv1d(cin, cout, 1) if cin != cout or final else None

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.projector is None else self.projector(x)
        return self.conv2(F.gelu(self.conv1(F.gelu(x)))) + residual


class RefDilatedConvEncoder(nn.Module):
    def __init__(self, cin: int, channels: list[int], k: int) -> None:
        super().__init__()
        self.net = nn.Sequential(*[
            RefConvBlock(channels[i - 1] if i > 0 else cin, channels[i], k, dilation=2**i,
                         final=i == len(channels) - 1) for i in range(len(channels))])

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class RefTSEncoder(nn.Module):
    def __init__(self, input_dims: int, output_dims: int, hidden_dims: int, depth: int,
                 k: int) -> None:
        super().__init__()
        self.input_fc = nn.Linear(input_dims, hidden_dims)
        self.feature_extractor = RefDilatedConvEncoder(hidden_dims,
                                                       [hidden_dims] * depth + [output_dims], k)
        self.repr_dropout = nn.Dropout(p=0.1)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:  # x: B x T x input_dims
        x = x.clone()
        nan_mask = ~x.isnan().any(dim=-1)
        x[~nan_mask] = 0
        x = self.input_fc(x)
        mask = torch.ones_like(nan_mask) if mask is None else mask.clone()
        mask &= nan_mask
        x[~mask] = 0
        x = self.repr_dropout(self.feature_extractor(x.transpose(1, 2)))
        return x.transpose(1, 2)


@pytest.mark.parametrize("kernel_size", [2, 3])
def test_dilated_conv_matches_ts2vec_reference(kernel_size: int) -> None:
    enc = TSEncoder(in_channels=1, hidden_dim=8, out_dim=12, depth=3,
                    kernel_size=kernel_size).eval()
    ref = RefTSEncoder(1, 12, 8, 3, kernel_size).eval()
    ref.load_state_dict(enc.state_dict())  # strict: same parameter names and shapes
    x = batch(3, 1, 33)
    holes = x.clone()
    holes[0, 0, 4:7] = float("nan")  # interior missing steps (one channel: same in both)
    mask = torch.rand(3, 33, generator=torch.Generator().manual_seed(3)) > 0.3
    with torch.no_grad():
        for series, m in [(x, None), (holes, None), (x, mask), (holes, mask)]:
            out = enc.timesteps(series, m)
            assert out.shape == (3, 33, 12)
            torch.testing.assert_close(out, ref(series.transpose(1, 2), m), atol=1e-6,
                                       rtol=1e-5)


@pytest.mark.parametrize("length", [5, 33])  # 5: blocks of dilation >= 8 take the centre tap
def test_dilated_conv_gradients_match_ts2vec_reference(length: int) -> None:
    enc = TSEncoder(in_channels=2, hidden_dim=8, out_dim=12, depth=4).eval()
    ref = RefTSEncoder(2, 12, 8, 4, 3).eval()
    ref.load_state_dict(enc.state_dict())
    x = batch(3, 2, length)
    weight = torch.randn(3, length, 12, generator=torch.Generator().manual_seed(4))
    (enc.timesteps(x) * weight).sum().backward()
    (ref(x.transpose(1, 2)) * weight).sum().backward()
    for (name, p), q in zip(enc.named_parameters(), ref.parameters(), strict=True):
        assert p.grad is not None and q.grad is not None
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("k,dilation,length", [(3, 1, 9), (3, 4, 9), (3, 8, 9), (3, 16, 9),
                                               (2, 4, 9), (1, 1, 9), (5, 2, 4), (5, 4, 4)])
def test_conv_time_is_the_conv1d(k: int, dilation: int, length: int) -> None:
    """``conv_time`` (channels-last conv2d, or the centre tap alone when the dilation reaches
    past the series) gives ``Conv1d``'s values and gradients."""
    torch.manual_seed(0)
    rf = (k - 1) * dilation + 1
    conv = nn.Conv1d(4, 6, k, padding=rf // 2 if k > 1 else 0, dilation=dilation)
    x = torch.randn(2, 4, length, requires_grad=True)
    xl = time_last(x.detach().transpose(1, 2).contiguous()).requires_grad_(True)
    out = conv_time(xl, conv)
    assert out.is_contiguous(memory_format=torch.channels_last)
    want = conv(x)
    grad = torch.randn(want.shape)
    torch.testing.assert_close(out.squeeze(2), want, atol=1e-6, rtol=1e-5)
    (gw,) = torch.autograd.grad(out.squeeze(2), conv.weight, grad, retain_graph=True)
    (gw_ref,) = torch.autograd.grad(want, conv.weight, grad, retain_graph=True)
    out.squeeze(2).backward(grad)
    want.backward(grad)
    assert xl.grad is not None and x.grad is not None
    torch.testing.assert_close(xl.grad.squeeze(2), x.grad, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(gw, gw_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("depth", [0, 2])
def test_dilated_conv_receptive_field_is_local_and_exact(depth: int) -> None:
    torch.manual_seed(0)
    enc = TSEncoder(in_channels=1, hidden_dim=8, out_dim=8, depth=depth).eval()
    assert enc.receptive_field == 1 + 2 * 2 * (2 ** (depth + 1) - 1)
    half = (enc.receptive_field - 1) // 2
    x = batch(1, 1, 64)
    t = 31
    moved = x.clone()
    moved[..., t] += 1.0
    with torch.no_grad():
        diff = (enc.timesteps(x) - enc.timesteps(moved)).abs().amax(dim=-1)[0]  # T
    far = (torch.arange(64) - t).abs() > half
    assert diff[far].max() < 1e-6
    assert diff[t - half] > 1e-6 and diff[t + half] > 1e-6 and diff[t] > 1e-6


# -- resnet1d: the Wang, Yan & Oates 2017 block, in order --------------------------------------
def test_resnet1d_layout_and_reference_forward() -> None:
    torch.manual_seed(0)
    enc = ResNet1d(in_channels=2, widths=(8, 16, 16))
    assert [c.kernel_size[0] for c in enc.blocks[0].convs] == [8, 5, 3]
    assert isinstance(enc.blocks[0].shortcut, nn.Sequential)  # 2 -> 8: 1x1 conv + BN
    assert isinstance(enc.blocks[2].shortcut, nn.BatchNorm1d)  # 16 -> 16: BN only
    for m in enc.modules():  # non-trivial BN statistics for eval mode
        if isinstance(m, nn.BatchNorm1d):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    enc.eval()
    x = batch(2, 2, 30)
    h = x
    with torch.no_grad():
        for block in enc.blocks:
            (c1, c2, c3), (n1, n2, n3) = block.convs, block.norms
            y = F.relu(n1(F.conv1d(F.pad(h, (3, 4)), c1.weight, c1.bias)))  # 'same', kernel 8
            y = F.relu(n2(F.conv1d(F.pad(y, (2, 2)), c2.weight, c2.bias)))
            y = n3(F.conv1d(F.pad(y, (1, 1)), c3.weight, c3.bias))
            h = F.relu(y + block.shortcut(h))
        torch.testing.assert_close(enc.timesteps(x), h.transpose(1, 2), atol=1e-5, rtol=1e-5)


# -- transformer --------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [6, 5])
def test_sinusoidal_encoding_formula(dim: int) -> None:
    pe = sinusoidal_encoding(7, dim)
    assert pe.shape == (7, dim)
    for t in range(7):
        for j in range(dim):
            angle = t / 10000 ** (2 * (j // 2) / dim)
            want = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert math.isclose(pe[t, j], want, abs_tol=1e-6)


def test_transformer_wiring_without_masks() -> None:
    enc = small("transformer", out_dim=5).eval()
    x = batch(2, 2, 70)  # longer than the constructor's length: positions are computed
    with torch.no_grad():
        h = enc.input_proj(x.transpose(1, 2)) + sinusoidal_encoding(70, 16)
        expected = enc.out_proj(enc.encoder(h))
        torch.testing.assert_close(enc.timesteps(x), expected, atol=1e-5, rtol=1e-5)
    layer = enc.encoder.layers[0]
    assert layer.norm_first and layer.self_attn.num_heads == 2


@pytest.mark.parametrize("train", [True, False])
def test_transformer_attention_stays_finite_for_an_empty_series(train: bool) -> None:
    enc = small("transformer").train(train)
    inner: list[Tensor] = []
    enc.encoder.register_forward_hook(lambda m, i, o: inner.append(o))
    x = with_nan(batch())
    x[0] = float("nan")  # every key of series 0 is invalid
    with torch.no_grad():
        z = enc(x)
    assert torch.isfinite(inner[0]).all() and (z[0] == 0).all() and torch.isfinite(z).all()
