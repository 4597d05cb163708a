"""The distributed promise for DINO and SwAV: 2 Gloo processes x batch B under DDP give the same
loss (the mean of the ranks') and gradients as 1 process x 2B, step after step; DINO's
all-reduced center, SwAV's all-reduced Sinkhorn (with and without the queue) and the momentum
teacher and queues match too. Same harness as ``test_distributed_methods.py`` (its helpers are
imported): one spawn runs every case and writes what it saw; the reference is built here."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import torch
import torch.distributed as dist
from test_distributed_methods import (
    _close,
    _ddp,
    assert_equal_to_one_process,
    reference_run,
    spawn_ranks,
)
from test_distributed_methods_local import (
    WORLD,
    B,
    Case,
    GivenViews,
    TinyMLP,
    _seeded,
    eval_norms,
    run_steps,
    take,
)
from torch import Tensor

from anyssl.methods import DINO, SwAV

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="needs torch.distributed with gloo")


def crop_inputs(step: int) -> tuple[Tensor, Tensor, Tensor]:
    """2 global views and 1 local view of the 2B batch (all 16-d: TinyMLP's input)."""
    g = torch.Generator().manual_seed(600 + step)
    x = torch.randn(WORLD * B, 16, generator=g)
    return tuple(x + 0.3 * torch.randn(x.shape, generator=g) for _ in range(3))  # type: ignore


def _views() -> GivenViews:
    views = GivenViews(3)
    views.n_global = 2  # type: ignore[attr-defined]
    return views


def _dino() -> Any:
    return DINO(TinyMLP(), _views(), out_dim=16, hidden_dim=16, bottleneck_dim=8, momentum=0.9,
                norm_last_layer=False)


def _swav(queue_size: int = 0) -> Any:
    return SwAV(TinyMLP(), _views(), hidden_dim=16, out_dim=8, num_prototypes=6,
                queue_size=queue_size, queue_start_epoch=0)


# SwAV with a queue of 16: 2 steps of 2B = 8 rows fill it, the 3rd and 4th use it
CASES: dict[str, Case] = {
    "dino": Case(_seeded(_dino), crop_inputs, steps=3),
    "swav": Case(_seeded(_swav), crop_inputs),
    "swav_queue": Case(_seeded(partial(_swav, 16)), crop_inputs, steps=4),
}


def _extra(method: Any) -> dict[str, Tensor]:
    """What ``run_steps`` does not record: DINO's center."""
    return {"center": method.loss.center.center.clone()} if isinstance(method, DINO) else {}


def _run_case(case: Case, rank: int) -> dict[str, Any]:
    method = case.build()
    init = {k: v.clone() for k, v in method.state_dict().items()}
    eval_norms(method)
    rows = slice(rank * B, (rank + 1) * B)
    batches = [take(case.inputs(step), rows) for step in range(case.steps)]
    return {"init": init, **run_steps(method, _ddp(method), batches), **_extra(method)}


def _collect(rank: int) -> dict[str, Any]:
    return {name: _run_case(case, rank) for name, case in CASES.items()}


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Every rank's results, from one 2-process run (killed after ``TIMEOUT_S``)."""
    return spawn_ranks(_collect, tmp_path_factory.mktemp("ddp_cluster"))


def _reference(name: str, init: dict[str, Tensor]) -> tuple[Any, dict[str, Any]]:
    return reference_run(CASES[name], init)


@pytest.mark.parametrize("name", list(CASES))
def test_two_processes_equal_one_process_with_the_whole_batch(
    ranks: list[dict[str, Any]], name: str
) -> None:
    got = [r[name] for r in ranks]
    method, want = _reference(name, got[0]["init"])  # the state: queues and the teacher
    assert_equal_to_one_process(got, want, CASES[name].steps)
    for key, value in _extra(method).items():  # DINO's center, all-reduced
        for g in got:
            _close(g[key], value, key)
            assert value.abs().sum() > 0


def test_swav_queue_was_used(ranks: list[dict[str, Any]]) -> None:
    """The queue case differs from a queue-free run from its 3rd step on (the queue is full)."""
    method, want = _reference("swav_queue", ranks[0]["swav_queue"]["init"])
    assert method.queued == 4 * WORLD * B
    plain = _seeded(_swav)()
    plain.load_state_dict(ranks[0]["swav_queue"]["init"], strict=False)
    eval_norms(plain)
    batches = [take(crop_inputs(step), slice(None)) for step in range(4)]
    free = run_steps(plain, plain.training_step, batches)
    _close(free["loss"][1], want["loss"][1])  # filling only
    assert not torch.allclose(free["loss"][2], want["loss"][2])
