"""The trainer on 2 Gloo processes, started as torchrun starts them (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR/PORT in the environment; the trainer creates and destroys the process group).

A BatchNorm-free toy with deterministic views, NT-Xent over the gathered batch and a queue of
all-gathered keys makes the equality exact up to float rounding: 2 processes x batch B train
the same weights and fill the same queue as 1 process x batch 2B (sampler blocks, DDP gradient
averaging, learning rate scaled by the global batch). Then: rank 0 alone writes one checkpoint
and one metrics file, an interrupted 2-process run resumes bit-identical, a loss that goes
nan on rank 1 alone stops both ranks at the same step with the same error, and rank 0's
verdict on a run folder that holds a run is raised on both ranks.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn
from train_toys import ToySet

from anyssl.distributed import gather_no_grad
from anyssl.memory import Queue
from anyssl.objectives import NTXentLoss
from anyssl.train import (
    NonFiniteLossError,
    RunExistsError,
    TrainConfig,
    Trainer,
    load_checkpoint,
)
from anyssl.views import ViewGenerator

WORLD, BATCH, SIZE = 2, 4, 32  # 4 steps per epoch of 2 x 4 samples
TIMEOUT = 120.0

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="no gloo")


class Shift:
    """A deterministic view: ``x + delta``."""

    def __init__(self, delta: float) -> None:
        self.delta = delta

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return x + self.delta


class GatherToy(nn.Module):
    """NT-Xent of two deterministic views (negatives gathered from every rank) and a queue of
    all-gathered keys; optionally a nan loss on one rank from step ``nan_at`` on."""

    train_defaults: ClassVar[dict[str, Any]] = {"optimizer": "sgd", "lr": 2.0,
                                                "weight_decay": 1e-4, "schedule": "cosine",
                                                "warmup_epochs": 0}

    def __init__(self, nan_rank: int | None = None, nan_at: int = 0) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4))
        self.views = ViewGenerator([Shift(0.0), Shift(0.3)])
        self.loss = NTXentLoss(temperature=0.5)
        self.queue = Queue(12, 4)
        self.nan_rank, self.nan_at, self.steps = nan_rank, nan_at, 0

    def training_step(self, batch: Any) -> tuple[Tensor, dict[str, Any]]:
        x, _ = batch
        a, b = self.views(x)
        z_a, z_b = self.encoder(a), self.encoder(b)  # B x 4 each
        loss = self.loss(z_a, z_b)
        self.queue.enqueue(gather_no_grad(z_b))  # (B * W) x 4
        if self.nan_rank == int(os.environ.get("RANK", 0)) and self.steps >= self.nan_at:
            loss = loss * float("nan")
        self.steps += 1
        return loss, {}

    def on_step_end(self, step: int, max_steps: int) -> None:
        pass


class Interrupt(Exception):
    pass


class StopAt:
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer: Trainer) -> None:
        if trainer.step == self.step:
            raise Interrupt


def config(out: Path, batch: int, **kw: Any) -> TrainConfig:
    return TrainConfig.from_dict({"modality": "toy", "method": "gathertoy", "epochs": 2,
                                  "batch_size": batch, "device": "cpu", "out": str(out),
                                  "log_every": 1, "eval": False, "checkpoint_every": 3, **kw})


def fit(out: Path, batch: int, method: nn.Module | None = None, callbacks: Any = (),
        **kw: Any) -> Trainer:
    torch.manual_seed(0)
    trainer = Trainer(method or GatherToy(), ToySet(SIZE), config(out, batch, **kw), out,
                      modality_name="toy", callbacks=callbacks)
    trainer.fit()
    return trainer


def _worker(rank: int, ports: list[int], tmp: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD))
    root, res = Path(tmp), {}
    os.environ["MASTER_PORT"] = str(ports[0])
    t = fit(root / "straight", BATCH)
    res["straight"] = t.method.state_dict()
    res["seed"], res["group_left"] = t.seed, dist.is_initialized()
    os.environ["MASTER_PORT"] = str(ports[1])
    try:
        fit(root / "resumed", BATCH, callbacks=[StopAt(5)])
    except Interrupt:
        res["group_left_on_error"] = dist.is_initialized()
    os.environ["MASTER_PORT"] = str(ports[2])
    res["resumed"] = fit(root / "resumed", BATCH, resume=True).method.state_dict()
    os.environ["MASTER_PORT"] = str(ports[3])
    try:
        fit(root / "nan", BATCH, GatherToy(nan_rank=1, nan_at=5))
    except NonFiniteLossError as err:
        res["nan_error"] = str(err)
    os.environ["MASTER_PORT"] = str(ports[4])
    try:  # rank 0 judges the folder, rank 1 raises its verdict
        fit(root / "straight", BATCH)
    except RunExistsError as err:
        res["exists_error"] = str(err)
    torch.save(res, root / f"rank{rank}.pt")


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def spawn(tmp: Path) -> list[dict[str, Any]]:
    """Run ``_worker`` on WORLD processes; fail (killing them) after TIMEOUT seconds."""
    ctx = mp.start_processes(_worker, args=(free_ports(5), str(tmp)), nprocs=WORLD, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + TIMEOUT
    while not ctx.join(timeout=1.0):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"the 2-process trainer hung for {TIMEOUT:.0f} s")
    return [torch.load(tmp / f"rank{r}.pt") for r in range(WORLD)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("ddp")
    return tmp, spawn(tmp)


def test_two_processes_train_like_one_with_the_global_batch(runs: Any, tmp_path: Path) -> None:
    tmp, res = runs
    single = fit(tmp_path / "single", WORLD * BATCH)
    a, b = res[0]["straight"], res[1]["straight"]
    for key, value in single.method.state_dict().items():
        assert torch.equal(a[key], b[key]), key  # every rank holds the same state
        torch.testing.assert_close(a[key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert not torch.equal(a["encoder.0.weight"], GatherToy().state_dict()["encoder.0.weight"])
    rows = [ln for ln in (tmp / "straight" / "metrics.jsonl").read_text().splitlines()]
    ref = (tmp_path / "single" / "metrics.jsonl").read_text().splitlines()
    for mine, theirs in zip(map(json.loads, rows), map(json.loads, ref), strict=True):
        assert mine["step"] == theirs["step"] and mine["lr"] == pytest.approx(theirs["lr"])
        assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-5)  # the global loss


def test_rank_zero_writes_one_run(runs: Any) -> None:
    tmp, res = runs
    folder = tmp / "straight"
    assert {p.name for p in folder.iterdir()} == {"config.yaml", "metrics.jsonl", "last.pt"}
    state = load_checkpoint(folder / "last.pt")
    assert (state["step"], state["world_size"], len(state["rng_by_rank"])) == (8, 2, 2)
    assert TrainConfig.from_yaml(folder / "config.yaml").batch_size == BATCH  # per process
    assert res[0]["exists_error"] == res[1]["exists_error"]  # the second run: one verdict
    assert res[1]["exists_error"].startswith(f"run folder {folder} already holds a run")
    assert res[0]["seed"] == 0 and res[1]["seed"] != 0  # rank 0 keeps the config's seed
    assert not res[0]["group_left"] and not res[1]["group_left"]  # the trainer's group is gone


def test_interrupted_two_process_run_resumes_bit_identical(runs: Any) -> None:
    tmp, res = runs
    for r in range(WORLD):
        assert not res[r]["group_left_on_error"]  # destroyed on the error too
        for key, value in res[r]["straight"].items():
            assert torch.equal(res[r]["resumed"][key], value), key
    lines = (tmp / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in lines] == list(range(8))


def test_nan_on_one_rank_stops_every_rank_alike(runs: Any) -> None:
    tmp, res = runs
    assert res[0]["nan_error"] == res[1]["nan_error"]
    assert res[0]["nan_error"].startswith("loss became nan at step 5;")
    assert "(step 4) is kept" in res[0]["nan_error"]  # the epoch-end checkpoint
    state = load_checkpoint(tmp / "nan" / "last.pt")
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["method"].values() if v.is_floating_point())
