"""Shards against a folder of files against memory: image-caption pairs fed to the trainer.

Synthetic 64 px JPEG pairs with a caption each (``_synthetic_pairs``; written once per size
under ``--work``, default ``$TMPDIR/anyssl-shards-bench``, never in the repository) at each of
``--sizes``, read three ways, each in a fresh child process (so each peak is its own):

* ``shards``: the image-text ``shards`` dataset over WebDataset tars (``anyssl.shards``), in the
  shard-local order of its ``epoch_order`` (``EpochSampler(order_fn=...)``), decoded in
  ``--workers`` loader workers;
* ``folder``: the same bytes as one ``.jpg`` + ``.txt`` per pair, read by the image-text
  ``path`` dataset decoding on access (``-d cache=none``) in the same workers; every header is
  checked at start-up (a first run: the scan cache starts empty);
* ``memory``: the same folder decoded up front into memory (``-d cache=memory``, today's path
  for small sets), read in the training process (0 workers, as the trainer does for data in
  memory); sizes whose decoded images exceed ``--max-memory-gib`` are skipped, and the row
  says so.

Each child builds the train split (1% held out), then iterates it through the trainer's loader
(``EpochSampler`` + ``make_loader``, batches of ``--batch-size``) with no model. Measured:
start-up (seconds from before building the dataset to the first batch: listing, header checks,
tokenizing, decoding up front, workers starting), samples/s over ``--batches`` batches after
``--warmup-batches``, the peak resident size of the training process (``VmHWM``) and the sum
of the loader workers' (each worker's ``VmHWM``, read before they stop; forked workers share
the parent's pages copy-on-write and each counts them, so the sum is an upper bound), and the
bytes on disk (file sizes / allocated blocks). A tokenizer trained once is given to
every path, so no path trains one. The OS file cache is warm (the data was just written).

    .venv/bin/python benchmarks/shards.py                      # 10^4 and 10^5 pairs
    .venv/bin/python benchmarks/shards.py --sizes 10000 100000 1000000   # GBs of disk
    .venv/bin/python benchmarks/shards.py --quick              # 2,000 pairs, a smoke run
"""

from __future__ import annotations

import argparse
import inspect
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _child import emit, proc_status, spawn
from _common import (
    clean_run,
    common_parser,
    contention_limit,
    contention_note,
    cpu_count,
    markdown_table,
    save,
    setup,
)
from _synthetic_pairs import SIZE, Pairs, disk_bytes, make_pairs

PATHS = ("shards", "folder", "memory")
GIB = 2**30
TEST_FRACTION = 0.01


# ---- the child: one path at one size ---------------------------------------------------------
def build(kind: str, pairs: Pairs) -> Any:
    """The train split of ``pairs`` read the ``kind`` way."""
    from anyssl.registry import DATASETS

    common = {"split": "train", "image_size": SIZE, "tokenizer": str(pairs.tokenizer),
              "test_fraction": TEST_FRACTION}
    if kind == "shards":
        factory = DATASETS.get("shards", "image-text")
        accepted = inspect.signature(factory).parameters
        return factory(root=str(pairs.shards), **{k: v for k, v in common.items()
                                                 if k in accepted})
    cache = "none" if kind == "folder" else "memory"
    return DATASETS.build("path", "image-text", root=str(pairs.folder), cache=cache, **common)


def _batches(loader: Any, sampler: Any) -> Iterator[Any]:
    """The loader's batches, epoch after epoch."""
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def _worker_peaks() -> list[int]:
    """``VmHWM`` in bytes of each live child process (the loader workers)."""
    peaks = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as f:
            pids = f.read().split()
        for pid in pids:
            try:
                with open(f"/proc/{pid}/status") as f:
                    line = next(ln for ln in f if ln.startswith("VmHWM:"))
                peaks.append(int(line.split()[1]) * 1024)
            except (OSError, StopIteration):
                pass
    return peaks


def child(kind: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Build, iterate and measure one path (see the module docstring)."""
    import anyssl.modalities.image_text  # noqa: F401  (registers the datasets)
    from anyssl.modality import get_modality
    from anyssl.train.data import EpochSampler, make_loader, resolve_workers

    pairs = make_pairs(args.work, n, args.shard_size)
    os.environ["ANYSSL_CACHE"] = tempfile.mkdtemp(prefix="scan-cache-", dir=args.work)
    base = proc_status("VmRSS")
    t0 = time.perf_counter()
    ds = build(kind, pairs)
    order = getattr(ds, "epoch_order", None)
    sampler = EpochSampler(len(ds), 0, batch_size=args.batch_size,
                           order_fn=(lambda e: order(0, e)) if callable(order) else None)
    workers, _ = resolve_workers(args.workers if getattr(ds, "file_backed", False) else None,
                                 ds)
    loader = make_loader(ds, args.batch_size, sampler, get_modality("image-text").collate,
                         workers, False, 0)
    batches = _batches(loader, sampler)
    next(batches)
    first = time.perf_counter() - t0
    for _ in range(args.warmup_batches):
        next(batches)
    t1 = time.perf_counter()
    for _ in range(args.batches):
        next(batches)
    rate = args.batches * args.batch_size / (time.perf_counter() - t1)
    peaks = _worker_peaks()
    return {"path": kind, "pairs": n, "train_pairs": len(ds), "workers": workers,
            "startup_s": first, "samples_per_s": rate, "rss_after_imports": base,
            "peak_rss_main": proc_status("VmHWM"), "peak_rss_workers": sum(peaks),
            "worker_peaks": peaks, "type": type(ds).__name__,
            "largest_finished_child_maxrss": resource.getrusage(
                resource.RUSAGE_CHILDREN).ru_maxrss * 1024}


# ---- the parent --------------------------------------------------------------------------------
def _child_cmd(kind: str, n: int, args: argparse.Namespace) -> list[str]:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", f"{kind}:{n}", "--work",
           str(args.work), "--shard-size", str(args.shard_size), "--batch-size",
           str(args.batch_size), "--batches", str(args.batches), "--warmup-batches",
           str(args.warmup_batches)]
    return cmd + (["--workers", str(args.workers)] if args.workers is not None else [])


def measure(kind: str, pairs: Pairs, args: argparse.Namespace,
            contention: list[float | None]) -> dict[str, Any]:
    """One row: the child's numbers, or why the path was skipped."""
    disk = disk_bytes(pairs.shards if kind == "shards" else pairs.folder)
    row: dict[str, Any] = {"path": kind, "pairs": pairs.n, "disk_bytes": disk[0],
                           "disk_allocated": disk[1]}
    decoded = pairs.n * 3 * SIZE * SIZE
    if kind == "memory" and decoded > args.max_memory_gib * GIB:
        row["skipped"] = (f"skipped: the decoded images would take {decoded / GIB:.1f} GiB, "
                          f"over --max-memory-gib {args.max_memory_gib:g}")
        return row
    cores = 1 + (args.workers if args.workers is not None else max(1, cpu_count() - 1))
    result = clean_run(lambda: spawn(_child_cmd(kind, pairs.n, args), f"{kind} at {pairs.n}"),
                       args, contention, cores=cores)
    row.update(result)
    print(f"  {kind} at {pairs.n:,}: {result['samples_per_s']:.0f} samples/s, start-up "
          f"{result['startup_s']:.1f} s, peak {result['peak_rss_main'] / GIB:.2f} GiB",
          flush=True)
    return row


def _cells(r: dict[str, Any]) -> list[Any]:
    disk = f"{r['disk_bytes'] / 1e6:.0f} / {r['disk_allocated'] / 1e6:.0f}"
    if "skipped" in r:
        return [f"{r['pairs']:,}", r["path"], disk, "-", "-", "-", "-", "-", r["skipped"]]
    return [f"{r['pairs']:,}", r["path"], disk, round(r["startup_s"], 1),
            round(r["samples_per_s"]), round(r["peak_rss_main"] / GIB, 2), r["workers"],
            round(r["peak_rss_workers"] / GIB, 2), r["type"]]


def parse() -> argparse.Namespace:
    p = common_parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=None,
                   help="numbers of pairs (default 10000 100000; 1000000 costs GBs of disk)")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) /
                   "anyssl-shards-bench", help="where the generated pairs are kept")
    p.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    p.add_argument("--shard-size", type=int, default=10_000, help="pairs per shard")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--batches", type=int, default=None, help="timed batches (default 40)")
    p.add_argument("--warmup-batches", type=int, default=5)
    p.add_argument("--workers", type=int, default=None,
                   help="loader workers of the file paths (default: cores - 1, the trainer's)")
    p.add_argument("--max-memory-gib", type=float, default=8.0,
                   help="skip the in-memory path above this much decoded image data")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    args.sizes = args.sizes or ([2000] if args.quick else [10_000, 100_000])
    args.batches = args.batches or (10 if args.quick else 40)
    return args


def main() -> None:
    args = parse()
    if args.child:
        kind, n = args.child.split(":")
        emit(child(kind, int(n), args))
        return
    device = setup(args)
    args.work.mkdir(parents=True, exist_ok=True)
    contention: list[float | None] = []
    rows = []
    for n in args.sizes:
        pairs = make_pairs(args.work, n, args.shard_size)
        rows += [measure(kind, pairs, args, contention) for kind in args.paths]
    table = markdown_table(
        ["pairs", "path", "disk MB (files / allocated)", "start-up s", "samples/s",
         "peak RSS GiB", "workers", "workers' peak RSS GiB (sum)", "dataset"],
        [_cells(r) for r in rows])
    notes = [f"64 px JPEG pairs, batches of {args.batch_size}, {args.batches} timed after "
             f"{args.warmup_batches}; OS file cache warm; peak RSS = VmHWM of the training "
             "process, workers' = sum of each loader worker's VmHWM (shared pages counted in "
             "each)", contention_note(contention, contention_limit(args))]
    save("shards", args, device, table, {"rows": rows, "contention": contention}, notes)


if __name__ == "__main__":
    main()
