"""One-process half of the distributed method checks: the per-rank loss shares average to the
whole-batch loss (values and gradients), shuffle-BN is a no-op on one process, SyncBatchNorm
-converted methods train and keep their momentum targets in step. Also the cases and helpers
that ``test_distributed_methods.py`` runs on 2 processes (tiny encoders, views drawn here from
fixed generators and carried in the batch: the views' randomness is not what is tested)."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from anyssl.memory import Queue
from anyssl.methods import BYOL, CLIP, MoCo, SimCLR
from anyssl.modalities.graph.encoders import GIN
from anyssl.modalities.graph.graphcl import GraphCL, graphcl_loss
from anyssl.modalities.timeseries.crops import AlignedView
from anyssl.modalities.timeseries.encoders import TSEncoder
from anyssl.modalities.timeseries.ts2vec import TS2Vec, hierarchical_contrastive_loss
from anyssl.momentum import MomentumTarget
from anyssl.pair import PairEncoder

WORLD, B, IN_DIM, GRAPH_DIM = 2, 4, 16, 4  # processes, per-process batch, input sizes


# ---- tiny parts -----------------------------------------------------------------------------
class TinyMLP(nn.Module):
    """N x 16 -> N x 12 through Linear, BatchNorm, ReLU, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.out_dim = 12
        self.net = nn.Sequential(nn.Linear(IN_DIM, 16), nn.BatchNorm1d(16), nn.ReLU(),
                                 nn.Linear(16, self.out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class GivenViews:
    """The views travel in the batch (a tuple of views, or the one view itself)."""

    def __init__(self, n_views: int) -> None:
        self.n_views = n_views

    def __call__(self, x: Any) -> list[Any]:
        return list(x) if self.n_views > 1 else [x]

    def manual_seed(self, seed: int) -> None:
        """Nothing is drawn."""


def eval_norms(method: nn.Module) -> None:
    """Training mode, except BatchNorm (batch statistics differ per process) and dropout."""
    method.train()
    for m in method.modules():
        if isinstance(m, nn.BatchNorm1d | nn.SyncBatchNorm | nn.Dropout):
            m.eval()


# ---- the 2B batches (views included), one per step ------------------------------------------
def vector_inputs(step: int) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(100 + step)
    x = torch.randn(WORLD * B, IN_DIM, generator=g)
    return x + 0.3 * torch.randn(x.shape, generator=g), x + 0.3 * torch.randn(x.shape, generator=g)


def pair_inputs(step: int) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(200 + step)
    a = torch.randn(WORLD * B, IN_DIM, generator=g)
    return {"a": a, "b": a.flip(1) + 0.5 * torch.randn(a.shape, generator=g)}


def graph_inputs(step: int) -> tuple[list[Data], list[Data]]:
    g = torch.Generator().manual_seed(300 + step)
    views: tuple[list[Data], list[Data]] = ([], [])
    for _ in range(WORLD * B):
        n = int(torch.randint(3, 7, (1,), generator=g))
        a = torch.triu(torch.rand(n, n, generator=g) < 0.5, diagonal=1)
        edges, x = (a | a.T).nonzero().T, torch.randn(n, GRAPH_DIM, generator=g)
        for view in views:
            view.append(Data(x=x + 0.3 * torch.randn(x.shape, generator=g), edge_index=edges))
    return views


def aligned_inputs(step: int) -> tuple[AlignedView, AlignedView]:
    """TS2Vec's crops, fixed: steps [0, 12) and [4, 16) of 16, overlap 8; NaN tails and time
    masks make the anchor counts differ between the ranks."""
    g = torch.Generator().manual_seed(400 + step)
    x = torch.randn(WORLD * B, 1, 16, generator=g)
    x[0, :, 13:], x[WORLD * B - 2, :, 10:] = float("nan"), float("nan")
    masks = [torch.rand(WORLD * B, 12, generator=g) >= 0.3 for _ in range(2)]
    x2 = x[..., 4:] + 0.1 * torch.randn(WORLD * B, 1, 12, generator=g)
    return AlignedView(x[..., :12].clone(), 4, 8, masks[0]), AlignedView(x2, 0, 8, masks[1])


def series_inputs(rank: int) -> tuple[Tensor, Tensor]:
    """One rank's full, time-aligned series; rank ``r`` has 12 - 3r steps."""
    g = torch.Generator().manual_seed(500 + rank)
    x = torch.randn(B, 1, 12 - 3 * rank, generator=g)
    x[1, :, -2:] = float("nan")
    return x, x + 0.1 * torch.randn(x.shape, generator=g)


def take(inputs: Any, rows: slice) -> Any:
    """Rows ``rows`` of a batch of any modality here (a list of graphs becomes a ``Batch``)."""
    if isinstance(inputs, Tensor):
        return inputs[rows]
    if isinstance(inputs, AlignedView):
        mask = None if inputs.time_mask is None else inputs.time_mask[rows]
        return AlignedView(inputs.x[rows], inputs.start, inputs.length, mask)
    if isinstance(inputs, dict):
        return {k: take(v, rows) for k, v in inputs.items()}
    if isinstance(inputs, tuple):
        return tuple(take(v, rows) for v in inputs)
    return Batch.from_data_list(inputs[rows])


# ---- the methods -----------------------------------------------------------------------------
def _seeded(build: Callable[[], Any]) -> Callable[[], Any]:
    """``build`` under a fixed seed: the same initial weights in every process."""

    def seeded() -> Any:
        torch.manual_seed(0)
        return build()

    return seeded


@dataclass(frozen=True)
class Case:
    build: Callable[[], Any]  # a method with fixed initial weights
    inputs: Callable[[int], Any]  # step -> the views of the 2B batch
    steps: int = 2


def _moco(symmetric: bool = False) -> Any:
    # split_bn=0: the promise compares W processes with one process of unsplit BatchNorm (a
    # one-process run splits by default; several processes ignore split_bn, test_moco.py)
    return MoCo(TinyMLP(), GivenViews(2), hidden_dim=16, out_dim=8, queue_size=32,
                momentum=0.9, symmetric=symmetric, split_bn=0)


def _byol() -> Any:
    return BYOL(TinyMLP(), GivenViews(2), hidden_dim=16, out_dim=8, pred_hidden_dim=16,
                momentum=0.9)


def _clip(local_loss: bool) -> Any:
    return CLIP(PairEncoder({"a": TinyMLP(), "b": TinyMLP()}), GivenViews(1), embed_dim=8,
                local_loss=local_loss)


def _graphcl(symmetric: bool) -> Any:
    return GraphCL(GIN(GRAPH_DIM, hidden_dim=8, num_layers=2), GivenViews(2),
                   symmetric=symmetric)


def _ts2vec() -> Any:
    return TS2Vec(TSEncoder(1, hidden_dim=8, out_dim=8, depth=2), GivenViews(2))


CASES: dict[str, Case] = {
    "simclr": Case(_seeded(lambda: SimCLR(TinyMLP(), GivenViews(2), hidden_dim=16, out_dim=8)),
                   vector_inputs),
    "mocov2": Case(_seeded(_moco), vector_inputs),
    "mocov2_symmetric": Case(_seeded(partial(_moco, True)), vector_inputs),
    "byol": Case(_seeded(_byol), vector_inputs, steps=3),
    "clip": Case(_seeded(partial(_clip, False)), pair_inputs),
    "clip_local": Case(_seeded(partial(_clip, True)), pair_inputs),
    "graphcl": Case(_seeded(partial(_graphcl, False)), graph_inputs),
    "graphcl_symmetric": Case(_seeded(partial(_graphcl, True)), graph_inputs),
    "ts2vec": Case(_seeded(_ts2vec), aligned_inputs),
}


def _state(method: nn.Module) -> dict[str, Any]:
    """Queues and momentum targets (their parameters, flattened, and a hash of them)."""
    state: dict[str, Any] = {}
    for name, mod in method.named_modules():
        if isinstance(mod, Queue):
            state[f"{name}.keys"], state[f"{name}.ptr"] = mod.keys.clone(), mod.ptr.clone()
        elif isinstance(mod, MomentumTarget):
            flat = torch.cat([p.detach().flatten() for p in mod.module.parameters()])
            state[name] = flat.clone()
            state[f"{name}.hash"] = hashlib.sha256(flat.numpy().tobytes()).hexdigest()
    return state


def run_steps(method: nn.Module, call: Callable[..., Any], batches: list[Any]) -> dict[str, Any]:
    """SGD steps through ``call`` (the method or its DDP wrapper): each step's loss, gradients
    and queue/target state after ``on_step_end``."""
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.1)
    out: dict[str, list[Any]] = {"loss": [], "grads": [], "state": []}
    for step, inputs in enumerate(batches):
        opt.zero_grad(set_to_none=True)
        loss, _ = call((inputs, None))
        loss.backward()
        out["loss"].append(loss.detach().clone())
        out["grads"].append({n: p.grad.clone() for n, p in method.named_parameters()
                             if p.grad is not None})
        opt.step()
        method.on_step_end(step, len(batches))  # type: ignore[operator]
        out["state"].append(_state(method))
    return out


# ---- one-process tests ----------------------------------------------------------------------
def _shares_match(full: Callable[[], Tensor], share: Callable[[int], Tensor],
                  leaves: list[Tensor]) -> None:
    """mean over ranks of ``share(r)`` == ``full()``, values and gradients w.r.t. ``leaves``."""
    want = full()
    want_grads = torch.autograd.grad(want, leaves)
    got = torch.stack([share(r) for r in range(WORLD)]).mean()
    torch.testing.assert_close(got, want)
    for g, w in zip(torch.autograd.grad(got, leaves), want_grads, strict=True):
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize("symmetric", [False, True])
def test_graphcl_rank_shares_average_to_the_whole_batch(symmetric: bool) -> None:
    g = torch.Generator().manual_seed(0)
    z1, z2 = (torch.randn(WORLD * 3, 5, generator=g).requires_grad_() for _ in range(2))
    _shares_match(
        lambda: graphcl_loss(z1, z2, symmetric=symmetric),
        lambda r: graphcl_loss(z1[3 * r:3 * r + 3], z2[3 * r:3 * r + 3], symmetric=symmetric,
                               z1_all=z1, z2_all=z2, rank=r),
        [z1, z2])
    with pytest.raises(ValueError, match="outside"):
        graphcl_loss(z1[:3], z2[:3], z2_all=z2, rank=2)


@pytest.mark.parametrize(("alpha", "unit"), [(0.5, 0), (0.2, 1), (1.0, 0), (0.0, 0)])
def test_ts2vec_rank_shares_average_to_the_whole_batch(alpha: float, unit: int) -> None:
    g = torch.Generator().manual_seed(1)
    z1, z2 = (torch.randn(WORLD * 3, 9, 4, generator=g).requires_grad_() for _ in range(2))
    valid = torch.rand(WORLD * 3, 9, generator=g) > 0.3
    valid[0, :8] = False  # a series with one valid step: no temporal anchors on rank 0
    _shares_match(
        lambda: hierarchical_contrastive_loss(z1, z2, valid, alpha=alpha, temporal_unit=unit),
        lambda r: hierarchical_contrastive_loss(z1, z2, valid, alpha=alpha, temporal_unit=unit,
                                                rows=slice(3 * r, 3 * r + 3)),
        [z1, z2])


def test_moco_shuffle_bn_is_a_no_op_on_one_process_without_split_bn() -> None:
    batch = (vector_inputs(0), None)
    on, off = _seeded(_moco)(), _seeded(_moco)()
    off.shuffle_bn = False
    assert on.shuffle_bn  # the default, as in the MoCo reference code
    (loss_on, _), (loss_off, _) = on.training_step(batch), off.training_step(batch)
    assert torch.equal(loss_on, loss_off) and torch.equal(on.queue.keys, off.queue.keys)


@pytest.mark.parametrize("build", [_moco, _byol], ids=["mocov2", "byol"])
def test_sync_batchnorm_converted_methods_train_the_same(build: Callable[[], Any]) -> None:
    plain = _seeded(build)()
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(plain))
    kinds = [type(m) for m in synced.modules()]
    assert nn.SyncBatchNorm in kinds and nn.BatchNorm1d not in kinds  # online and target
    for method in (plain, synced):  # training mode: one process uses plain batch statistics
        opt = torch.optim.SGD(method.parameters(), lr=0.5)
        for step in range(2):
            opt.zero_grad()
            method.training_step((vector_inputs(step), None))[0].backward()
            opt.step()
            method.on_step_end(step, 2)
    want, got = _state(plain), _state(synced)
    assert want.keys() == got.keys() and any(k.endswith(".hash") for k in want)
    for key, value in want.items():
        if isinstance(value, Tensor):
            torch.testing.assert_close(got[key], value)
    name = next(k for k in want if f"{k}.hash" in want)  # the momentum target
    assert not torch.allclose(got[name], _state(_seeded(build)())[name])  # the EMA followed
