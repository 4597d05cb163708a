"""The distributed promise for SimSiam, Barlow Twins and VICReg: 2 Gloo processes x batch B under
``DistributedDataParallel`` give the same loss (the mean of the ranks' losses) and the same
parameter gradients (DDP's average) as 1 process x batch 2B, to 1e-5, step after step.

Barlow Twins' batch normalization and cross-correlation and VICReg's variance and covariance
span the batch: a rank that used only its own rows would fail here (the losses are checked to
differ from the per-rank ones). The helpers (tiny encoder, views carried in the batch, eval-mode
BatchNorm in the encoder and heads, the SGD steps) are those of
``test_distributed_methods.py`` and ``test_distributed_methods_local.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.distributed as dist
from test_distributed_methods import (
    _close,
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

from anyssl.methods import BarlowTwins, SimSiam, VICReg

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="needs torch.distributed with gloo")

CASES: dict[str, Case] = {
    "simsiam": Case(_seeded(lambda: SimSiam(TinyMLP(), GivenViews(2), out_dim=8,
                                            pred_hidden_dim=4)), vector_inputs),
    "barlowtwins": Case(_seeded(lambda: BarlowTwins(TinyMLP(), GivenViews(2), hidden_dim=16,
                                                    out_dim=8)), vector_inputs),
    "vicreg": Case(_seeded(lambda: VICReg(TinyMLP(), GivenViews(2), hidden_dim=16, out_dim=8)),
                   vector_inputs),
}


def _collect(rank: int) -> dict[str, Any]:
    return {name: _run_case(case, rank) for name, case in CASES.items()}


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Every rank's results, from one 2-process run (killed after ``TIMEOUT_S``)."""
    return spawn_ranks(_collect, tmp_path_factory.mktemp("ddp_redundancy"))


def _reference(name: str, init: dict[str, torch.Tensor], rows: slice = slice(None)
               ) -> dict[str, Any]:
    return reference_run(CASES[name], init, rows)[1]


@pytest.mark.parametrize("name", list(CASES))
def test_two_processes_equal_one_process_with_the_whole_batch(
    ranks: list[dict[str, Any]], name: str
) -> None:
    got = [r[name] for r in ranks]
    assert_equal_to_one_process(got, _reference(name, got[0]["init"]), CASES[name].steps,
                                state=False)


@pytest.mark.parametrize("name", ["barlowtwins", "vicreg"])
def test_batch_statistics_span_the_ranks(ranks: list[dict[str, Any]], name: str) -> None:
    """The whole batch's loss is not the mean of what each half alone would give."""
    init = ranks[0][name]["init"]
    halves = [_reference(name, init, slice(r * B, (r + 1) * B))["loss"][0] for r in range(WORLD)]
    assert not torch.allclose(sum(halves) / WORLD, _reference(name, init)["loss"][0], atol=1e-4)
    if name == "barlowtwins":  # every rank computes the global loss itself
        _close(ranks[0][name]["loss"][0], ranks[1][name]["loss"][0])
