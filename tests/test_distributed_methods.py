"""The distributed promise, method by method: 2 processes x batch B under
``DistributedDataParallel`` give the same loss (the mean of the ranks' losses) and the same
parameter gradients (DDP's average) as 1 process x batch 2B, to 1e-5, step after step; MoCo's
queue and the momentum targets match too, and the targets are bit-identical across ranks.

How: one ``spawn`` of 2 Gloo processes (CPU) runs every case of ``CASES`` and writes what it
saw to a file; the tests compare it with a one-process reference built here from rank 0's
initial weights. Rank ``r`` takes rows ``r*B:(r+1)*B`` of each 2B batch. The views are part of
the batch, drawn here from fixed generators (``GivenViews``): the views' randomness is not
what is tested. BatchNorm (and dropout) run in eval mode, except in the shuffle-BN check, whose
reference encodes each rank's shuffled slice in training mode. The spawn has a hard timeout
and the process group a collective timeout, so a hang fails fast. Helpers shared with the
one-process checks are in ``test_distributed_methods_local.py``.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from test_distributed_methods_local import (
    CASES,
    WORLD,
    B,
    Case,
    GivenViews,
    eval_norms,
    run_steps,
    series_inputs,
    take,
    vector_inputs,
)
from torch.nn.parallel import DistributedDataParallel

from anyssl.modalities.graph.encoders import GCN
from anyssl.modalities.graph.grace import GRACE
from anyssl.modalities.timeseries.series import valid_steps
from anyssl.modalities.timeseries.ts2vec import hierarchical_contrastive_loss
from anyssl.objectives import info_nce

TIMEOUT_S = 150  # the whole 2-process run; it takes ~10-20 s on 2 busy cores
pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="needs torch.distributed with gloo")


# ---- the worker (one per rank) ------------------------------------------------------------------
def _ddp(method: torch.nn.Module) -> DistributedDataParallel:
    # no buffer sync in forward: each rank's queue and statistics are its own, so a rank that
    # enqueued the wrong keys is caught instead of being overwritten by rank 0's buffers
    params = inspect.signature(DistributedDataParallel).parameters
    flag = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
    kwargs: dict[str, Any] = {flag: False}
    return DistributedDataParallel(method, **kwargs)


def _run_case(case: Case, rank: int) -> dict[str, Any]:
    method = case.build()
    init = {k: v.clone() for k, v in method.state_dict().items()}
    eval_norms(method)
    rows = slice(rank * B, (rank + 1) * B)
    batches = [take(case.inputs(step), rows) for step in range(case.steps)]
    return {"init": init, **run_steps(method, _ddp(method), batches)}


def _shuffle_bn_case(rank: int) -> dict[str, Any]:
    """MoCo with BatchNorm in training mode and shuffle_bn: what the key encoder saw."""
    method = CASES["mocov2"].build()  # BatchNorm left in training mode
    seen: list[torch.Tensor] = []
    method.key_encoder.module.register_forward_pre_hook(lambda m, a: seen.append(a[0].clone()))
    ddp = _ddp(method)  # held until after backward: its hooks average the gradients
    loss, _ = ddp((take(vector_inputs(7), slice(rank * B, (rank + 1) * B)), None))
    loss.backward()
    return {"seen": seen[0], "loss": loss.detach(), "queue": method.queue.keys.clone()}


def _ragged_ts2vec_case(rank: int) -> dict[str, Any]:
    """TS2Vec with a different series length on each rank: padded to the longest one."""
    method = CASES["ts2vec"].build()
    eval_norms(method)
    x1, x2 = series_inputs(rank)
    ddp = _ddp(method)  # held until after backward: its hooks average the gradients
    loss, _ = ddp(((x1, x2), None))
    loss.backward()
    grads = {n: p.grad.clone() for n, p in method.named_parameters() if p.grad is not None}
    return {"loss": loss.detach(), "grads": grads}


def _grace_case() -> str:
    try:
        GRACE(GCN(4, level="node", out_dim=4), GivenViews(2), proj_dim=4).training_step(
            (None, None))
    except ValueError as e:
        return str(e)
    return "no error"


def gloo_worker(rank: int, init_file: str, out_dir: str,
                collect: Callable[[int], dict[str, Any]]) -> None:
    """One rank of a spawned Gloo group: ``collect(rank)`` (a module-level function, so that
    spawn can pickle it) saved as ``rank{rank}.pt`` in ``out_dir``."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD, timeout=timedelta(seconds=TIMEOUT_S // 2))
    try:
        torch.save(collect(rank), Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def spawn_ranks(collect: Callable[[int], dict[str, Any]], tmp: Path) -> list[dict[str, Any]]:
    """Every rank's ``collect(rank)`` from one ``WORLD``-process run (killed after
    ``TIMEOUT_S``)."""
    # spawn, not fork: a forked child can hang in OpenMP after the parent ran parallel ops
    ctx = mp.start_processes(gloo_worker, args=(str(tmp / "init"), str(tmp), collect),
                             nprocs=WORLD, join=False, start_method="spawn")
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not ctx.join(timeout=max(deadline - time.monotonic(), 0.1)):
            if time.monotonic() >= deadline:
                pytest.fail(f"the {WORLD}-process run did not end within {TIMEOUT_S} s (a hang)")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    return [torch.load(tmp / f"rank{r}.pt") for r in range(WORLD)]


def _collect(rank: int) -> dict[str, Any]:
    out: dict[str, Any] = {name: _run_case(case, rank) for name, case in CASES.items()}
    out["shuffle_bn"] = _shuffle_bn_case(rank)
    out["ts2vec_ragged"] = _ragged_ts2vec_case(rank)
    out["grace"] = _grace_case()
    return out


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Every rank's results, from one 2-process run."""
    return spawn_ranks(_collect, tmp_path_factory.mktemp("ddp_methods"))


# ---- the comparisons -------------------------------------------------------------------------
def _close(got: Any, want: Any, what: str = "") -> None:
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5, msg=what or None)


def reference_run(case: Case, init: dict[str, torch.Tensor], rows: slice = slice(None)
                  ) -> tuple[torch.nn.Module, dict[str, Any]]:
    """One process, from the ranks' initial weights, on the rows ``rows`` of every step's
    batch (default: the whole 2B batch): the method and its ``run_steps`` record."""
    method = case.build()
    method.load_state_dict(init)
    eval_norms(method)
    batches = [take(case.inputs(step), rows) for step in range(case.steps)]
    return method, run_steps(method, method.training_step, batches)


def assert_equal_to_one_process(got: list[dict[str, Any]], want: dict[str, Any], steps: int,
                                *, state: bool = True) -> None:
    """Every rank's record ``got`` against the one-process ``want``: the ranks' mean loss, each
    rank's (DDP-averaged) gradients and, with ``state``, the buffers (queues, momentum targets,
    support sets; a target's hash must be identical on every rank)."""
    for step in range(steps):
        _close(sum(g["loss"][step] for g in got) / WORLD, want["loss"][step], f"loss {step}")
        assert set(got[0]["grads"][step]) == set(want["grads"][step])
        for param, grad in want["grads"][step].items():
            for g in got:  # DDP's averaged gradient, on every rank
                _close(g["grads"][step][param], grad, f"{param} at step {step}")
        for key, value in want["state"][step].items() if state else ():
            for g in got:
                if isinstance(value, str):
                    assert g["state"][step][key] == got[0]["state"][step][key], key
                else:
                    _close(g["state"][step][key], value, key)


def _reference(name: str, init: dict[str, torch.Tensor]) -> dict[str, Any]:
    return reference_run(CASES[name], init)[1]


@pytest.mark.parametrize("name", list(CASES))
def test_two_processes_equal_one_process_with_the_whole_batch(
    ranks: list[dict[str, Any]], name: str
) -> None:
    got = [r[name] for r in ranks]
    assert_equal_to_one_process(got, _reference(name, got[0]["init"]), CASES[name].steps)


def test_moco_queue_holds_every_rank_keys_in_rank_order(ranks: list[dict[str, Any]]) -> None:
    want = _reference("mocov2", ranks[0]["mocov2"]["init"])
    for step in range(CASES["mocov2"].steps):
        assert int(want["state"][step]["queue.ptr"]) == (step + 1) * WORLD * B
        for r in ranks:
            assert int(r["mocov2"]["state"][step]["queue.ptr"]) == (step + 1) * WORLD * B
    first = want["state"][0]["queue.keys"][: WORLD * B]  # the first step's gathered keys
    assert not torch.allclose(first, ranks[0]["mocov2"]["init"]["queue.keys"][: WORLD * B])


def test_clip_local_loss_equals_global_loss_on_every_rank(ranks: list[dict[str, Any]]) -> None:
    for step in range(CASES["clip"].steps):  # local_loss=False: every rank has the global loss
        torch.testing.assert_close(ranks[0]["clip"]["loss"][step], ranks[1]["clip"]["loss"][step])
    for name in ("clip", "clip_local"):  # DDP's average is the same gradient both ways
        grads = ranks[0][name]["grads"][0]
        assert grads["logit_scale"].abs() > 0
    for param, g in ranks[0]["clip"]["grads"][0].items():
        _close(ranks[0]["clip_local"]["grads"][0][param], g)


def test_byol_target_hashes_agree_across_ranks_and_move(ranks: list[dict[str, Any]]) -> None:
    states = [r["byol"]["state"] for r in ranks]
    for step in range(CASES["byol"].steps):
        assert states[0][step]["target.hash"] == states[1][step]["target.hash"]
    assert states[0][0]["target.hash"] != states[0][-1]["target.hash"]  # the EMA moved it


def test_shuffle_bn_shuffles_across_ranks_and_restores_the_order(
    ranks: list[dict[str, Any]],
) -> None:
    v1, v2 = vector_inputs(7)  # the query and key views of the 2B batch
    seen = [r["shuffle_bn"]["seen"] for r in ranks]  # each rank's key-encoder input, B rows
    where = [(s[:, None] == v2[None]).all(-1).nonzero()[:, 1] for s in seen]  # rows of v2
    assert sorted(torch.cat(where).tolist()) == list(range(WORLD * B))  # a permutation
    assert set(where[0].tolist()) != set(range(B))  # rows moved across ranks
    ref: Any = CASES["mocov2"].build()  # training mode: per-slice BatchNorm statistics
    ref.load_state_dict(ranks[0]["mocov2"]["init"])
    queue0 = ref.queue.keys.clone()
    with torch.no_grad():
        keys = torch.empty(WORLD * B, ref.queue.dim)
        for s, w in zip(seen, where, strict=True):
            keys[w] = ref.key_encoder.module(s)  # the key of v2[w], as the shuffled slice saw it
    for rank, r in enumerate(ranks):
        _close(r["shuffle_bn"]["queue"][: WORLD * B], F.normalize(keys, dim=1))
        rows = slice(rank * B, (rank + 1) * B)
        q = ref.head(ref.encoder(v1[rows]))
        want = info_nce(q, keys[rows], ref.loss.temperature, negatives=queue0)
        _close(r["shuffle_bn"]["loss"], want)


def test_ts2vec_pads_ragged_ranks_to_the_longest(ranks: list[dict[str, Any]]) -> None:
    ref: Any = CASES["ts2vec"].build()
    ref.load_state_dict(ranks[0]["ts2vec"]["init"])
    eval_norms(ref)
    feats = []
    for rank in range(WORLD):
        x1, x2 = series_inputs(rank)
        z1, z2 = ref.encoder.timesteps(x1), ref.encoder.timesteps(x2)  # B x T_r x D
        pad = series_inputs(0)[0].shape[-1] - x1.shape[-1]
        valid = F.pad(valid_steps(x1) & valid_steps(x2), (0, pad), value=False)
        feats.append((F.pad(z1, (0, 0, 0, pad)), F.pad(z2, (0, 0, 0, pad)), valid))
    z1, z2, valid = (torch.cat(parts) for parts in zip(*feats, strict=True))
    want = hierarchical_contrastive_loss(z1, z2, valid)
    want.backward()
    got = [r["ts2vec_ragged"] for r in ranks]
    _close(sum(g["loss"] for g in got) / WORLD, want.detach())
    for name, p in ref.named_parameters():
        if p.grad is not None:
            _close(got[0]["grads"][name], p.grad, name)


def test_grace_refuses_several_processes(ranks: list[dict[str, Any]]) -> None:
    for r in ranks:
        assert "one process" in r["grace"] and "2 processes" in r["grace"]
