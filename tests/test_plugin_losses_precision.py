"""The plugins' contrastive losses (GraphCL, GRACE, TS2Vec) under bfloat16 autocast: their
similarity matmul runs in float32 (``anyssl.objectives.matmul_fp32``), so each loss equals its
float32 value on the same bf16 embeddings; a matmul left to autocast would be cast back to bf16
(the old behaviour, which this test tells apart)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

import anyssl.objectives as objectives

pytest.importorskip("torch_geometric")
from anyssl.modalities.graph import grace as grace_module
from anyssl.modalities.graph import graphcl as graphcl_module
from anyssl.modalities.timeseries import ts2vec_loss as ts2vec_module

CASES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "graphcl": lambda a, b: graphcl_module.graphcl_loss(a, b, 0.2),
    "grace": lambda a, b: grace_module.grace_loss(a, b, 0.4),
    "ts2vec": lambda a, b: ts2vec_module.hierarchical_contrastive_loss(
        a.view(4, 8, -1), b.view(4, 8, -1)),
}


def _inputs() -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        w = torch.randn(16, 64, generator=g)
        z = torch.randn(64, 16, generator=g) @ w  # 64 x 64 bf16 (32 rows per view)
    return z[:32] * 4, z[32:] * 4


def _autocast_matmul(a: Tensor, b: Tensor) -> Tensor:
    return objectives._upcast(a) @ objectives._upcast(b)  # cast back down by autocast


@pytest.mark.parametrize("name", list(CASES))
def test_plugin_loss_is_float32_under_bf16_autocast(name: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _inputs()
    assert a.dtype == torch.bfloat16
    want = CASES[name](a.detach().float(), b.detach().float())  # no autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = CASES[name](a, b)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for module in (grace_module, graphcl_module, ts2vec_module):
        monkeypatch.setattr(module, "matmul_fp32", _autocast_matmul)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        old = CASES[name](a, b)
    assert (old - want).abs() > (got - want).abs()  # the test can tell the two paths apart
