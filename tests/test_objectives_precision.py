"""The contrastive losses under bfloat16 autocast: the embeddings are upcast before they are
normalized and compared, so each loss equals its float32 value on the same (bf16-rounded)
embeddings, where the old path (normalize and matmul in bf16, upcast only the logits) does not;
the loss is float32 and the gradients reach the bf16 inputs."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import anyssl.objectives as objectives
import anyssl.objectives_pair as objectives_pair
from anyssl.objectives import byol_loss, info_nce, nt_xent
from anyssl.objectives_pair import clip_loss

N, D, K = 32, 128, 256  # local batch, embedding size, queue length
Inputs = dict[str, Tensor]


def _embeddings() -> Inputs:
    """bf16 embeddings out of a linear layer under autocast: ``a``, ``b`` (N x D each) are this
    rank's two views, ``*_all`` (2N x D) add another rank's before them (this is rank 1), ``n*``
    are the same L2-normalized in bf16 (as ``CLIP.encode`` gives them), ``z`` (4N x D) the
    layer's output they all come from, ``negatives`` a K x D float32 queue."""
    g = torch.Generator().manual_seed(0)
    layer = nn.Linear(64, D)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(D, 64, generator=g) / 8)
        layer.bias.copy_(torch.randn(D, generator=g) / 8)
    x = torch.randn(4 * N, 64, generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = layer(x)  # 4N x D bf16
        a, b = z[:N], z[N:2 * N]
        t = {"a": a, "b": b, "a_all": torch.cat([z[2 * N:3 * N], a]),
             "b_all": torch.cat([z[3 * N:], b])}
        t |= {"n" + k: F.normalize(v, dim=1) for k, v in t.items()} | {"z": z}
    assert all(v.dtype == torch.bfloat16 for v in t.values())
    return t | {"negatives": F.normalize(torch.randn(K, D, generator=g), dim=1)}


CASES: dict[str, Callable[[Inputs], Tensor]] = {
    "nt_xent": lambda t: nt_xent(t["a"], t["b"], 0.1),
    "nt_xent gathered": lambda t: nt_xent(t["a"], t["b"], 0.1, z_a_all=t["a_all"],
                                          z_b_all=t["b_all"], rank=1),
    "info_nce": lambda t: info_nce(t["a"], t["b"], 0.07),
    "info_nce symmetric gathered": lambda t: info_nce(
        t["a"], t["b"], 0.07, symmetric=True, key_all=t["b_all"], query_all=t["a_all"], rank=1),
    "info_nce queue": lambda t: info_nce(t["a"], t["b"], 0.07, negatives=t["negatives"]),
    "clip": lambda t: clip_loss(t["na"], t["nb"], 1 / 0.07),
    "clip gathered": lambda t: clip_loss(t["na"], t["nb"], torch.tensor(1 / 0.07),
                                         a_all=t["na_all"], b_all=t["nb_all"], rank=1),
    "clip gathered local": lambda t: clip_loss(
        t["na"], t["nb"], torch.tensor(1 / 0.07), a_all=t["na_all"], b_all=t["nb_all"], rank=1,
        local_loss=True),
    "byol": lambda t: byol_loss(t["a"], t["b"]),
}


def _reference(case: Callable[[Inputs], Tensor], t: Inputs) -> Tensor:
    """The loss in float32, no autocast, on the same bf16-rounded embeddings."""
    return case({k: v.detach().float() for k, v in t.items()})


def _bf16_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The old behaviour: no upcast before normalizing, matmul in the autocast dtype and only
    the similarities upcast."""
    def old_similarities(a: Tensor, b: Tensor) -> Tensor:
        return (a @ b.T).float()  # N x M, computed in bf16 under autocast

    monkeypatch.setattr(objectives, "_upcast", lambda x: x)
    monkeypatch.setattr(objectives, "_similarities", old_similarities)
    monkeypatch.setattr(objectives_pair, "_similarities", old_similarities)


@pytest.mark.parametrize("name", list(CASES))
def test_loss_under_bf16_autocast_equals_the_float32_loss(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    t, case = _embeddings(), CASES[name]
    ref = float(_reference(case, t))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = case(t)
    assert loss.dtype == torch.float32
    err = abs(float(loss.detach()) - ref)
    assert err <= 1e-5 * abs(ref)
    (grad,) = torch.autograd.grad(loss, [t["z"]])  # 4N x D
    assert grad.dtype == torch.bfloat16 and bool(grad.isfinite().all())
    assert bool(grad[:N].any(dim=1).all()) and bool(grad[N:2 * N].any(dim=1).all())
    if name == "byol":  # it upcast before the cosine already: there is no bf16 path to compare
        return
    with monkeypatch.context() as patch:
        _bf16_path(patch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            old = float(case(t).detach())
    # the test tells the two paths apart: the bf16 one is off by more than the tolerance
    assert abs(old - ref) > max(1e-5 * abs(ref), 10 * err)


def test_similarities_stay_float32_under_autocast() -> None:
    a, b = torch.randn(4, 8), torch.randn(5, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (a @ b.T).dtype == torch.bfloat16  # what autocast does to a plain matmul
        sims = objectives._similarities(a.bfloat16(), b)
    assert sims.dtype == torch.float32
    torch.testing.assert_close(sims, a.bfloat16().float() @ b.T, atol=0, rtol=0)
    assert objectives._similarities(a.double(), b.double()).dtype == torch.float64
