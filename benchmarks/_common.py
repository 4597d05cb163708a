"""Shared helpers for the benchmark scripts: flags, timing, contention, machine facts, tables, JSON.

Not a test module and not part of the package: each script puts this folder on ``sys.path``
(``python benchmarks/X.py`` does) and imports it as ``_common``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "results"
#: Share of the machine's CPU time used by other processes above which a result is flagged.
CONTENTION_LIMIT = 0.10


# ---- flags --------------------------------------------------------------------------------------
def int_list(text: str) -> list[int]:
    """``"32,224"`` -> ``[32, 224]`` (an argparse type)."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive ints, got {text!r}")
    return values


def str_list(text: str) -> list[str]:
    """``"simclr,mocov2"`` -> ``["simclr", "mocov2"]`` (an argparse type)."""
    return [v.strip() for v in text.split(",") if v.strip()]


def common_parser(description: str) -> argparse.ArgumentParser:
    """A parser with the flags every script shares; the scripts add their own."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16 = autocast to bfloat16, as the trainer does; CUDA only")
    p.add_argument("--threads", type=int, default=cpu_count(),
                   help="torch intra-op threads of this process (default: the usable cores)")
    p.add_argument("--repeats", type=int, default=None, help="timed repetitions (median kept)")
    p.add_argument("--warmup", type=int, default=1, help="untimed repetitions first")
    p.add_argument("--quick", action="store_true", help="a small, fast configuration (smoke run)")
    p.add_argument("--max-contention", type=float, default=CONTENTION_LIMIT,
                   help="rerun a measurement when other processes used more than this share "
                        f"of the cores it leaves free (default {CONTENTION_LIMIT})")
    p.add_argument("--retries", type=int, default=2, help="reruns per measurement (default 2)")
    p.add_argument("--max-wait", type=float, default=120.0,
                   help="seconds to wait for a quiet machine before each try (default 120)")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON file to write (default: benchmarks/results/<script>-<device>.json)")
    return p


def setup(args: argparse.Namespace) -> torch.device:
    """Validate the shared flags, set the thread count and seeds; return the device."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible; use --device cpu")
    if args.precision == "bf16" and device.type != "cuda":
        raise SystemExit("--precision bf16 is autocast on CUDA only (as in the trainer); "
                         "use --precision fp32 on CPU")
    if args.threads < 1:
        raise SystemExit(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    return device


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """bfloat16 autocast on CUDA for ``precision == "bf16"``, else nothing (the trainer's rule)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


# ---- timing -------------------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    """Wait for queued device work (CUDA); nothing on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds one call of ``fn`` takes, device work included."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


# ---- contention ---------------------------------------------------------------------------------
def cpu_count() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0))


def _busy_seconds() -> float:
    """CPU seconds all processes have spent busy since boot (/proc/stat, all cores)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _tree_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its live descendants (DataLoader workers, subprocesses)."""
    total = 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # utime, stime, and cutime, cstime of children already waited for
        total = sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                total += sum(_tree_seconds(int(c)) for c in f.read().split())
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


class Contention:
    """Share of the machine's CPU time used by *other* processes while a block ran.

    ``with Contention() as c: ...`` then ``c.other`` in [0, 1]: 0 on an idle machine, 0.5 when
    others kept one of two cores busy. Reads /proc only (Linux); ``None`` elsewhere.
    """

    other: float | None = None

    def __enter__(self) -> Contention:
        self._t = (time.perf_counter(), _busy_seconds(), _tree_seconds(os.getpid()))
        return self

    def __exit__(self, *exc: object) -> None:
        wall, busy, mine = time.perf_counter(), _busy_seconds(), _tree_seconds(os.getpid())
        span = (wall - self._t[0]) * (os.cpu_count() or 1)
        others = (busy - self._t[1]) - (mine - self._t[2])
        self.other = round(min(1.0, max(0.0, others / span)), 3) if span > 0 else None


def others_share(seconds: float = 1.0) -> float:
    """Share of the CPU that other processes use over the next ``seconds`` (we sit idle)."""
    with Contention() as c:
        time.sleep(seconds)
    return c.other or 0.0


def contention_limit(args: argparse.Namespace, cores: int | None = None) -> float:
    """Others' CPU share tolerated: ``args.max_contention`` plus the share of the machine's
    cores that a measurement on ``cores`` cores (default ``args.threads``) leaves free."""
    spare = max(0.0, 1.0 - (cores or args.threads) / (os.cpu_count() or 1))
    return float(args.max_contention) + spare


def clean_run(fn: Callable[[], Any], args: argparse.Namespace,
              contention: list[float | None], cores: int | None = None) -> Any:
    """``fn()`` run when the machine is quiet, rerun while other processes took more than
    ``args.max_contention`` of the cores ``fn`` does not use (``cores``, default
    ``args.threads``) during it, at most ``args.retries`` times.

    Before each try, waits up to ``args.max_wait`` seconds for others' share of the CPU to drop
    below that limit. The contention of the kept run is appended to ``contention``.
    """
    limit = contention_limit(args, cores)
    for attempt in range(args.retries + 1):
        deadline = time.monotonic() + args.max_wait
        while others_share() > limit and time.monotonic() < deadline:
            time.sleep(4.0)
        with Contention() as c:
            out = fn()
        if c.other is None or c.other <= limit or attempt == args.retries:
            break
        print(f"  (other processes used {c.other:.0%} of the CPU; measuring again)", flush=True)
    contention.append(c.other)
    return out


def contention_note(values: Sequence[float | None], limit: float) -> str:
    """A one-line verdict on the contention seen during a run (``limit``: the tolerated share)."""
    seen = [v for v in values if v is not None]
    if not seen:
        return "contention: not measured"
    worst = max(seen)
    verdict = "OK" if worst <= limit else "HIGH: rerun on an idle machine"
    return (f"contention (other processes' share of the CPU): max {worst:.2f}, "
            f"limit {limit:.2f}, {verdict}")


# ---- machine and output -------------------------------------------------------------------------
def _cpu_model() -> str:
    info: dict[str, str] = {}
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    name = info.get("model name", platform.processor() or "unknown")
    if "cpu family" in info:
        name += f" (family {info['cpu family']}, model {info.get('model', '?')})"
    return name


def _mem_gib() -> float | None:
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None


def code_version() -> str:
    """The repository's commit, ``+dirty`` when the library code has uncommitted changes."""
    import subprocess

    root = Path(__file__).resolve().parents[1]

    def git(*a: str) -> str:
        out = subprocess.run(["git", "-C", str(root), *a], capture_output=True, text=True,
                             check=False)
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "anyssl", "modalities", "cli")
    return commit + ("+dirty" if dirty else "")


def machine_info(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on."""
    import torchvision

    info: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(), "cores": cpu_count(), "memory_gib": _mem_gib(),
        "torch": torch.__version__, "torchvision": torchvision.__version__,
        "python": platform.python_version(), "threads": torch.get_num_threads(),
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2), "code": code_version(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def command() -> str:
    """The command line that ran this script, repo-relative."""
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        script = script.relative_to(Path(__file__).resolve().parents[1])
    return " ".join([".venv/bin/python", str(script), *sys.argv[1:]])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table (floats with 3 significant digits)."""
    def cell(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def save(name: str, args: argparse.Namespace, device: torch.device, table: str,
         results: Any, notes: Sequence[str] = ()) -> Path:
    """Print the table and notes, and write them with the command and machine as JSON."""
    print(table)
    for note in notes:
        print(note)
    suffix = f"-{device.type}" + ("-quick" if args.quick else "")
    path: Path = args.out or RESULTS / f"{name}{suffix}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "command": command(), "machine": machine_info(device),
               "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "table": table, "notes": list(notes), "results": results}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"saved {path}")
    return path


def per_second(fn: Callable[[], Any], n: int, device: torch.device, args: argparse.Namespace,
               contention: list[float | None]) -> float:
    """``n`` x calls / seconds of a block of back-to-back ``fn()`` calls lasting about
    ``args.block`` s (a single call of a millisecond would mostly time a cold start after
    ``clean_run``'s idle wait); the median over ``args.repeats`` blocks after warm-up."""
    for _ in range(args.warmup):
        fn()
    calls = max(1, math.ceil(args.block / max(timed(fn, device), 1e-6)))

    def block() -> None:
        for _ in range(calls):
            fn()

    times = [clean_run(lambda: timed(block, device), args, contention)
             for _ in range(args.repeats)]
    return n * calls / median(times)
