"""MLPHead: layer layout, shapes, last BatchNorm, bad arguments."""

from __future__ import annotations

from typing import cast

import pytest
import torch
from torch import nn

from anyssl.heads import MLPHead


def _kinds(head: MLPHead) -> list[type]:
    return [type(m) for m in head.layers]


def test_two_layer_projector_layout_and_shape() -> None:
    head = MLPHead(12, 32, 8)
    assert _kinds(head) == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert head.out_dim == 8 and head.in_dim == 12
    assert head.layers[0].bias is None and head.layers[3].bias is not None  # BN replaces bias
    assert head(torch.randn(5, 12)).shape == (5, 8)


def test_three_layers_with_last_bn_is_simclr_v2_style() -> None:
    head = MLPHead(12, 32, 8, num_layers=3, last_bn=True)
    assert _kinds(head) == [nn.Linear, nn.BatchNorm1d, nn.ReLU] * 2 + [nn.Linear, nn.BatchNorm1d]
    last = head.layers[-1]
    assert isinstance(last, nn.BatchNorm1d) and not last.affine
    out = head.train()(torch.randn(64, 12))
    torch.testing.assert_close(out.mean(0), torch.zeros(8), atol=1e-5, rtol=0)  # normalized
    torch.testing.assert_close(out.var(0, unbiased=False), torch.ones(8), atol=1e-3, rtol=0)


def test_without_batch_norm_is_moco_v2_mlp() -> None:
    head = MLPHead(12, 32, 8, batch_norm=False)
    assert _kinds(head) == [nn.Linear, nn.ReLU, nn.Linear]
    assert all(m.bias is not None for m in head.layers if isinstance(m, nn.Linear))


def test_one_layer_is_a_linear_map() -> None:
    head = MLPHead(12, 999, 8, num_layers=1)
    assert _kinds(head) == [nn.Linear]
    x = torch.randn(3, 12)
    lin = cast(nn.Linear, head.layers[0])
    torch.testing.assert_close(head(x), x @ lin.weight.T + lin.bias)
    torch.testing.assert_close(head(2 * x) - head(x), head(x) - head(0 * x))  # affine


@pytest.mark.parametrize(
    "kwargs", [{"num_layers": 0}, {"hidden_dim": 0}, {"out_dim": -1}, {"in_dim": 0}]
)
def test_bad_construction_raises(kwargs: dict) -> None:
    args = {"in_dim": 12, "hidden_dim": 32, "out_dim": 8, **kwargs}
    with pytest.raises(ValueError):
        MLPHead(**args)


def test_wrong_input_width_raises_value_error() -> None:
    with pytest.raises(ValueError, match="N x 12"):
        MLPHead(12, 32, 8)(torch.randn(4, 13))


def test_last_bn_scale_is_simclr_reference_last_layer() -> None:
    """SimCLR's reference projector ends with BatchNorm that has a learnable scale and no
    shift (``batch_norm_relu(..., center=False)``)."""
    torch.manual_seed(0)
    head = MLPHead(12, 12, 8, last_bn_scale=True)
    bn = head.layers[-1]
    assert isinstance(bn, torch.nn.BatchNorm1d) and bn.bias is None and bn.weight is not None
    assert head.layers[-2].bias is None  # the linear layer before it has no bias either
    assert "layers.4.bias" not in head.state_dict()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2.0)
    x = torch.randn(16, 12)
    z = head.layers[:-1](x)
    want = (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + bn.eps) * bn.weight
    torch.testing.assert_close(head(x), want)
    assert {n for n, _ in head.named_parameters()} >= {"layers.4.weight"}
