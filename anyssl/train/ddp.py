"""Data-parallel training with ``torch.distributed``: the process group from torchrun's
environment, the ``DistributedDataParallel`` wrapper, and ``anyssl train --devices N`` through
torch's own launcher. Nothing here is home-made transport: Gloo on CPU, NCCL on CUDA.

How a run of W processes works (``Trainer`` does this when torchrun's variables say W > 1):

- Batches. ``--batch-size`` B is per process; a step sees the global batch of W x B samples, and
  the learning rate's linear scaling rule uses it (``lr = base_lr * W * B / 256``). The sampler
  gives rank ``r`` the ``r``-th block of B of the one-process batch of W x B (``EpochSampler``),
  so the ranks' batches concatenated in rank order are exactly that batch.
- Devices. CUDA: process ``LOCAL_RANK`` uses ``cuda:LOCAL_RANK`` with NCCL; CPU: Gloo.
- State. Every rank builds the method from the same seed, then takes rank 0's parameters and
  buffers (``broadcast_state``), so all ranks start equal; DDP averages the gradients, so
  every rank takes the same optimizer step and the EMA targets stay equal.
- ``broadcast_buffers=False``. DDP's default re-broadcasts rank 0's buffers before every
  forward. Here the buffers are a MoCo queue (filled identically on every rank from the
  all-gathered keys, so a broadcast would copy K x D floats per step for nothing), EMA-target
  statistics and BatchNorm running statistics. In training mode BatchNorm normalizes with the
  batch's statistics, so the running ones never enter the loss; each rank keeps those of its
  own shard, and the ones saved (and evaluated) are rank 0's, which every rank reloads on
  resume. SyncBatchNorm (``--sync-bn``, CUDA only) makes the batch statistics global instead.
- Seeds. Rank ``r``'s views, global RNGs and loader workers use ``rank_seed(seed, r)``: rank 0
  keeps ``seed``, so a one-process run is unchanged. Checkpoints hold every rank's RNG state.
- Files. Rank 0 alone writes ``config.yaml``, ``metrics.jsonl``, ``last.pt`` and progress;
  every checkpoint write ends in a barrier. Rank 0 checks the run folder and every rank raises
  its verdict. On resume every rank loads the same ``last.pt``: with several machines, put
  ``--out`` on a shared file system.
- End. ``fit`` destroys the process group it created (also on an error). Evaluation then runs
  on rank 0 alone, with no process group left for a stray collective to hang on; the other
  ranks exit and torchrun waits for rank 0.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from anyssl.distributed import broadcast_object, broadcast_state, is_distributed, world_size

__all__ = ["LaunchEnv", "LaunchError", "SilentMetrics", "TrainingStep", "convert_sync_bn",
           "launch_env", "launch_local", "process_device", "process_group", "processes_here",
           "share_error", "wrap"]

#: torchrun's variables; ``WORLD_SIZE`` present means "launched by torchrun".
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class LaunchEnv:
    """Where this process sits: global rank, rank on its machine, number of processes."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1


def launch_env() -> LaunchEnv:
    """The current process group's ranks, else torchrun's variables, else one process.

    ``ValueError`` when ``WORLD_SIZE`` is set but the other variables are missing or wrong."""
    if is_distributed():
        rank = dist.get_rank()
        return LaunchEnv(rank, int(os.environ.get("LOCAL_RANK", rank)), dist.get_world_size())
    if "WORLD_SIZE" not in os.environ:
        return LaunchEnv()
    values: dict[str, int] = {}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        text = os.environ.get(name)
        try:
            values[name] = int(text or "")
        except ValueError:
            raise ValueError(f"environment variable {name}={text!r} is not an integer; start "
                             "distributed runs with torchrun (it sets RANK, WORLD_SIZE, "
                             "LOCAL_RANK, MASTER_ADDR, MASTER_PORT)") from None
    env = LaunchEnv(values["RANK"], values["LOCAL_RANK"], values["WORLD_SIZE"])
    if not (0 <= env.rank < env.world_size and env.local_rank >= 0):
        raise ValueError(f"RANK={env.rank}, LOCAL_RANK={env.local_rank}, WORLD_SIZE="
                         f"{env.world_size} do not fit together; start the run with torchrun")
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if env.world_size > 1
               and not os.environ.get(v)]
    if missing:
        raise ValueError(f"WORLD_SIZE={env.world_size} but {' and '.join(missing)} unset; start "
                         "the run with torchrun")
    return env


def processes_here(env: LaunchEnv) -> int:
    """How many of the run's processes share this machine (torchrun's ``LOCAL_WORLD_SIZE``;
    the whole world when it is not set)."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE") or env.world_size))
    except ValueError:
        return env.world_size


def process_device(device: torch.device, env: LaunchEnv) -> torch.device:
    """This process's device: ``cuda:LOCAL_RANK`` for a CUDA run of several processes, else
    ``device`` unchanged."""
    if env.world_size == 1 or device.type != "cuda":
        return device
    if device.index is not None:
        raise ValueError(f"--device {device} picks one GPU, but under torchrun process "
                         "LOCAL_RANK uses cuda:LOCAL_RANK; pass --device cuda (or auto)")
    if env.local_rank >= torch.cuda.device_count():
        raise ValueError(f"LOCAL_RANK {env.local_rank} needs GPU {env.local_rank}, but only "
                         f"{torch.cuda.device_count()} are visible; start at most that many "
                         "processes per machine (--nproc-per-node / --devices)")
    return torch.device("cuda", env.local_rank)


@contextlib.contextmanager
def process_group(device: torch.device, env: LaunchEnv) -> Iterator[bool]:
    """Create the default process group from torchrun's variables (NCCL for a CUDA ``device``,
    else Gloo) and destroy it on exit, also on an error; yields whether it created one. Nothing
    happens for one process or when a group already exists (its owner destroys it)."""
    if env.world_size == 1 or is_distributed():
        yield False
        return
    cuda = device.type == "cuda"
    bind: dict[str, Any] = {}
    if cuda:
        torch.cuda.set_device(device)
        if "device_id" in inspect.signature(dist.init_process_group).parameters:
            bind["device_id"] = device  # NCCL: bind the group to this GPU (torch >= 2.3)
    dist.init_process_group("nccl" if cuda else "gloo", init_method="env://", rank=env.rank,
                            world_size=env.world_size, **bind)
    try:
        yield True
    finally:
        dist.destroy_process_group()


class TrainingStep(nn.Module):
    """``forward(batch)`` is ``method.training_step(batch)``: what DDP wraps, so its gradient
    hooks fire for any method, whether or not it defines ``forward``."""

    def __init__(self, method: nn.Module) -> None:
        super().__init__()
        self.method = method

    def forward(self, batch: Any) -> Any:
        return self.method.training_step(batch)  # type: ignore[operator]


def wrap(method: nn.Module, device: torch.device) -> DistributedDataParallel:
    """Give every rank rank 0's parameters and buffers, then wrap ``method`` (as a
    ``TrainingStep``) in DDP without the buffer broadcast before each forward
    (``broadcast_buffers=False``; see the module docstring).

    ``find_unused_parameters`` is off: every built-in method uses all its trainable parameters
    in every step. A method that does not sets ``find_unused_parameters = True`` (a class
    attribute) and the trainer passes it on."""
    broadcast_state(method)
    options: dict[str, Any] = {_NO_FORWARD_SYNC: False}
    return DistributedDataParallel(
        TrainingStep(method), device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=bool(getattr(method, "find_unused_parameters", False)),
        **options,
    )


#: DDP's switch for the buffer broadcast before each forward: ``forward_sync_buffers`` in
#: recent torch (``broadcast_buffers``, which also skipped the sync at construction, before).
_NO_FORWARD_SYNC = ("forward_sync_buffers" if "forward_sync_buffers" in
                    inspect.signature(DistributedDataParallel.__init__).parameters
                    else "broadcast_buffers")


def convert_sync_bn(method: nn.Module, device: torch.device,
                    n_processes: int) -> tuple[nn.Module, str | None]:
    """``method`` with its BatchNorm layers turned into ``SyncBatchNorm`` (batch statistics over
    all ranks' samples, as one process with the global batch computes them), and a note when
    there is nothing to do. Checkpoint keys do not change.

    It converts whenever a process group is initialised, even one of a single process (a
    one-GPU run inside a group, where torch's SyncBatchNorm falls back to plain BatchNorm: the
    same layers and checkpoints as a run on more GPUs). Without a group, one process gets
    ``method`` unchanged and the note. ``ValueError`` on CPU with several processes or a
    group: torch's SyncBatchNorm runs on GPUs only."""
    if n_processes == 1 and not is_distributed():
        return method, ("--sync-bn has no effect on one process without a process group "
                        "(BatchNorm already sees the whole batch)")
    if device.type != "cuda":
        raise ValueError("--sync-bn needs CUDA devices (torch's SyncBatchNorm is GPU-only); on "
                         "CPU drop --sync-bn")
    return nn.SyncBatchNorm.convert_sync_batchnorm(method), None


def share_error(err: Exception | None, kinds: Sequence[type[Exception]] = ()) -> None:
    """Raise rank 0's ``err`` on every rank (rank 0 checks the run folder; the others receive
    its verdict, as the class named in ``kinds`` or ``ValueError``, so all fail alike).
    On one process: raise ``err`` if there is one."""
    if world_size() == 1:
        if err is not None:
            raise err
        return
    verdict = broadcast_object(None if err is None else (type(err).__name__, str(err)))
    if err is not None:
        raise err
    if verdict is not None:
        name, message = verdict
        raise next((k for k in kinds if k.__name__ == name), ValueError)(message)


class SilentMetrics:
    """The metrics logger of the ranks other than 0 (``MetricsLogger``'s methods, doing
    nothing): rank 0 alone writes ``metrics.jsonl`` and shows progress."""

    def __enter__(self) -> SilentMetrics:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def truncate(self, step: int) -> None:
        return None

    def start_progress(self, total_steps: int, done: int = 0) -> None:
        return None

    def advance(self, done: int) -> None:
        return None

    def log(self, step: int, epoch: int, loss: Any, lr: float, samples_per_s: float,
            logs: Any = None) -> dict[str, Any]:
        return {"loss": float(loss)}

    def log_monitor(self, step: int, epoch: int, values: Any) -> None:
        return None


class LaunchError(RuntimeError):
    """A process started by ``launch_local`` failed: its rank and exit code (negative: the
    signal that killed it)."""

    def __init__(self, rank: int, exitcode: int) -> None:
        how = f"was killed by signal {-exitcode}" if exitcode < 0 else f"exited with {exitcode}"
        super().__init__(f"training process of rank {rank} {how}")
        self.rank, self.exitcode = rank, exitcode


def launch_local(n_processes: int, args: Sequence[str], module: str = "anyssl") -> None:
    """Run ``python -m <module> <args>`` in ``n_processes`` processes on this machine with
    torch's launcher: ``torchrun --standalone --nproc-per-node N -m <module> <args>`` (a local
    c10d rendezvous on a free port). Unless ``OMP_NUM_THREADS`` is set, each process gets an
    equal share of this process's cores (torchrun alone would give each one thread). Waits for
    all; ``LaunchError`` names the first process that failed."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (cores or 1) // n_processes)))
    parsed = get_args_parser().parse_args(
        ["--standalone", f"--nproc-per-node={n_processes}", "--module", module, *args])
    try:
        run(parsed)
    except ChildFailedError as err:
        rank, failure = err.get_first_failure()
        raise LaunchError(rank, failure.exitcode) from None
