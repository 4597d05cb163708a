"""The distributed promise for MoCo v3 and NNCLR: 2 processes x batch B under
``DistributedDataParallel`` give the same loss (the mean of the ranks' losses) and the same
parameter gradients as 1 process x batch 2B, to 1e-5, step after step; NNCLR's support set (the
gathered first-view projections, searched for the next step's neighbours) and MoCo v3's momentum
encoder match too and agree across ranks. The same harness as ``test_distributed_methods.py``
(its worker, DDP wrapper and comparisons are imported), with its own 2-process spawn.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.distributed as dist
from test_distributed_methods import (
    _run_case,
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
    vector_inputs,
)

from anyssl.methods import NNCLR, MoCoV3

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="needs torch.distributed with gloo")

CASES: dict[str, Case] = {
    "mocov3": Case(_seeded(lambda: MoCoV3(TinyMLP(), GivenViews(2), hidden_dim=16, out_dim=8,
                                          momentum=0.9, temperature=0.2)), vector_inputs,
                   steps=3),
    # a support set of 4 steps' gathered projections: steps 2 and 3 search a partly written
    # one, the last step a full one that has wrapped
    "nnclr": Case(_seeded(lambda: NNCLR(TinyMLP(), GivenViews(2), hidden_dim=16, out_dim=8,
                                        pred_hidden_dim=16, queue_size=3 * WORLD * B)),
                  vector_inputs, steps=4),
}


def _collect(rank: int) -> dict[str, Any]:
    return {name: _run_case(case, rank) for name, case in CASES.items()}


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Every rank's results, from one 2-process run (killed after ``TIMEOUT_S``)."""
    return spawn_ranks(_collect, tmp_path_factory.mktemp("ddp_mocov3_nnclr"))


def _reference(name: str, init: dict[str, torch.Tensor]) -> dict[str, Any]:
    return reference_run(CASES[name], init)[1]


@pytest.mark.parametrize("name", list(CASES))
def test_two_processes_equal_one_process_with_the_whole_batch(
    ranks: list[dict[str, Any]], name: str
) -> None:
    got = [r[name] for r in ranks]  # the state: support set, momentum encoder
    assert_equal_to_one_process(got, _reference(name, got[0]["init"]), CASES[name].steps)


def test_support_set_holds_every_rank_projections(ranks: list[dict[str, Any]]) -> None:
    init = ranks[0]["nnclr"]["init"]
    want = _reference("nnclr", init)
    assert int(init["support.filled"]) == 0
    for step in range(CASES["nnclr"].steps):
        for r in ranks:
            assert int(r["nnclr"]["state"][step]["support.ptr"]) == (
                (step + 1) * WORLD * B) % (3 * WORLD * B)
    first = want["state"][0]["support.keys"][: WORLD * B]  # the first step's gathered rows
    assert not torch.allclose(first, init["support.keys"][: WORLD * B])
