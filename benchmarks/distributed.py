"""Data-parallel scaling on CPU with Gloo: samples/s of SimCLR (smallcnn, the default digits
data at 32 px) on 1 process vs 2 processes at the same global batch, and the share of a
2-process step that communication takes.

Every configuration runs the real ``Trainer`` (sampler shards, ``DistributedDataParallel``,
NT-Xent over the all-gathered batch, the per-step health all-reduce) in freshly spawned
processes, started as torchrun starts them (RANK, WORLD_SIZE, ... in the environment). A step's
time is the time between two ``on_step_end`` callbacks (data, views, forward, backward,
all-reduce, optimizer); the first steps and each epoch's first step (after a checkpoint) are
left out; the median is kept (the slowest rank's, with 2 processes).

- Threads: 1 process uses 2 threads; 2 processes use 1 thread each (all cores either way).
- Communication share: the 2-process step is also timed with its communication removed (DDP's
  gradient all-reduce bypassed, the loss's all-gathers off, the health check local), so each
  rank computes alone on its half: share = 1 - (step without) / (step with). It counts exposed
  communication and the waiting for the slower rank, not the all-reduce hidden behind backward.
- Also timed alone: one all-reduce of a flat tensor the size of all gradients.

    .venv/bin/python benchmarks/distributed.py           # global batch 128, 20 timed steps: ~1 min
    .venv/bin/python benchmarks/distributed.py --quick   # global batch 64, 8 timed steps
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from _common import (
    clean_run,
    common_parser,
    contention_limit,
    contention_note,
    markdown_table,
    median,
    save,
    setup,
)

WARMUP_STEPS = 3


class StepClock:
    """Trainer callback: the time of every ``on_step_end``."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_fit_start(self, trainer: Any) -> None:
        self.times.append(time.perf_counter())

    def on_step_end(self, trainer: Any) -> None:
        self.times.append(time.perf_counter())

    def step_seconds(self, steps_per_epoch: int) -> float:
        """Median step time, without the warm-up steps and each epoch's first step."""
        d = [b - a for a, b in zip(self.times, self.times[1:], strict=False)]
        kept = [t for k, t in enumerate(d) if k >= WARMUP_STEPS and k % steps_per_epoch]
        return median(kept)


class NoCommunication:
    """Trainer callback: bypass DDP's gradient all-reduce and the loss's all-gathers."""

    def on_fit_start(self, trainer: Any) -> None:
        trainer._forward = getattr(trainer._forward, "module", trainer._forward)
        for module in trainer.method.modules():
            if hasattr(module, "gather"):
                module.gather = False


def _local_health(loss: torch.Tensor, params: Any) -> tuple[float, float]:
    from anyssl.train.nonfinite import grad_max

    return float(loss.detach()), float(grad_max(params))


def _fit(mode: str, rank: int, batch: int, steps: int, out: Path) -> dict[str, float]:
    """One ``Trainer.fit`` of SimCLR; ``mode`` ``"ddp"`` or ``"local"`` (no communication)."""
    import anyssl.train.nonfinite as nonfinite
    from anyssl.build import build_parts
    from anyssl.train import TrainConfig, Trainer

    torch.manual_seed(0)
    parts = build_parts("image", "simclr", data=None, data_args={}, encoder="smallcnn",
                        encoder_args={}, aug=None, views=None, method_args={},
                        batch_size=batch, seed=0, need_test=False)
    cfg = TrainConfig(modality="image", method="simclr", encoder="smallcnn", batch_size=batch,
                      max_steps=WARMUP_STEPS + steps, device="cpu", out=str(out), eval=False,
                      log_every=1000)
    clock = StepClock()
    callbacks: list[Any] = [clock] + ([NoCommunication()] if mode == "local" else [])
    trainer = Trainer(parts.method, parts.train_set, cfg, out, collate=parts.modality.collate,
                      to_device=parts.modality.to_device, modality_name="image",
                      callbacks=callbacks)
    real = nonfinite.step_health
    nonfinite.step_health = _local_health if mode == "local" else real
    try:
        trainer.fit()
    finally:
        nonfinite.step_health = real
    n_params = sum(p.numel() for p in parts.method.parameters() if p.requires_grad)
    return {"step_s": clock.step_seconds(trainer.steps_per_epoch), "params": n_params}


def _allreduce_seconds(numel: int, world: int, port: int) -> float:
    """Median time of one all-reduce of ``numel`` floats (its own short-lived group)."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}",
                            rank=int(os.environ["RANK"]), world_size=world)
    try:
        x = torch.ones(numel)
        times = []
        for _ in range(12):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(x)
            times.append(time.perf_counter() - t0)
        return median(times[2:])
    finally:
        dist.destroy_process_group()


def _worker(rank: int, world: int, ports: list[int], batch: int, steps: int,
            modes: list[str], tmp: str) -> None:
    torch.set_num_threads(2 // world if world <= 2 else 1)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", RANK=str(rank), LOCAL_RANK=str(rank),
                          WORLD_SIZE=str(world))
    res: dict[str, Any] = {}
    for i, mode in enumerate(modes):
        os.environ["MASTER_PORT"] = str(ports[i])
        res[mode] = _fit(mode, rank, batch, steps, Path(tmp) / f"{mode}-{world}")
    if world > 1:
        res["allreduce_s"] = _allreduce_seconds(res[modes[0]]["params"], world, ports[-1])
    torch.save(res, Path(tmp) / f"rank{rank}.pt")


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def run_config(world: int, modes: list[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Spawn ``world`` processes training SimCLR in each mode; every rank's results."""
    with tempfile.TemporaryDirectory() as tmp:
        mp.start_processes(_worker, nprocs=world, start_method="spawn", join=True,
                           args=(world, _free_ports(len(modes) + 1), args.global_batch // world,
                                 args.steps, modes, tmp))
        return [torch.load(Path(tmp) / f"rank{r}.pt") for r in range(world)]


def main() -> None:
    p = common_parser(__doc__.splitlines()[0])
    p.add_argument("--global-batch", type=int, default=None,
                   help="samples per step over all processes (default 128; quick: 64)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 20; quick 8)")
    args = p.parse_args()
    args.global_batch = args.global_batch or (64 if args.quick else 128)
    args.steps = args.steps or (8 if args.quick else 20)
    args.threads = 2  # both configurations use the machine's 2 cores
    device = setup(args)
    if device.type != "cpu":
        raise SystemExit("this benchmark measures Gloo on CPU; use --device cpu")

    contention: list[float | None] = []
    one = clean_run(lambda: run_config(1, ["ddp"], args), args, contention, cores=2)
    two = clean_run(lambda: run_config(2, ["ddp", "local"], args), args, contention, cores=2)
    t1 = one[0]["ddp"]["step_s"]
    t2 = max(r["ddp"]["step_s"] for r in two)
    t2_local = max(r["local"]["step_s"] for r in two)
    g = args.global_batch
    share = max(0.0, 1.0 - t2_local / t2)
    rows = [
        [1, 2, g, g, round(t1, 4), round(g / t1, 1), "1.00", "-"],
        [2, 1, g // 2, g, round(t2, 4), round(g / t2, 1), f"{t1 / t2:.2f}", f"{share:.0%}"],
        [2, 1, g // 2, g, round(t2_local, 4), round(g / t2_local, 1), f"{t1 / t2_local:.2f}",
         "0% (communication removed)"],
    ]
    headers = ["processes", "threads each", "batch per process", "global batch", "step s",
               "samples/s", "speed-up", "communication share"]
    allreduce = max(r["allreduce_s"] for r in two)
    notes = [f"one all-reduce of all {two[0]['ddp']['params']:,} gradient floats alone: "
             f"{allreduce * 1e3:.2f} ms",
             contention_note(contention, contention_limit(args, 2))]
    results = {"one_process": one, "two_processes": two, "step_s": {"1": t1, "2": t2,
               "2_no_communication": t2_local}, "communication_share": share,
               "allreduce_s": allreduce}
    save("distributed", args, device, markdown_table(headers, rows), results, notes)


if __name__ == "__main__":
    main()
