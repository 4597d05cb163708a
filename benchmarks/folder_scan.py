"""Folder scan at start-up: seconds to list an image folder and check every file's header.

On ``--files`` small images (default 100,000 16 x 16 px, half PNG and half JPEG, in 100 class
folders) written once under ``benchmarks/data/folder_scan/`` (git-ignored) and reused, with the
OS's file cache warm: the listing (``scan_folder``) alone; the old check (``probe_image`` in a
loop, one process); ``probe_files`` in one process and in ``--workers`` processes without the
cache, in threads (for comparison: Pillow parses headers holding the GIL), with an empty cache
(a first run: reads, then writes the cache) and with the cache written (a second run). Then the
crossover behind ``scan_headers.PARALLEL_MIN``: one process against the pool on short lists.

    .venv/bin/python benchmarks/folder_scan.py            # 100,000 files, < 5 min
    .venv/bin/python benchmarks/folder_scan.py --quick    # 5,000 files, < 1 min
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
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

from anyssl.modalities.image import scan_headers
from anyssl.modalities.image.datasets import DataPathError
from anyssl.modalities.image.datasets_scan import (
    ScanStats,
    probe_files,
    probe_image,
    scan_folder,
)

DATA = Path(__file__).resolve().parent / "data" / "folder_scan"
IMAGENET = 1_281_167  # ImageNet-1k's training images
CLASSES = 100


# ---- the folder ---------------------------------------------------------------------------------
def make_folder(n: int) -> Path:
    """``DATA/n<n>``: ``n`` 16 x 16 noise images in ``CLASSES`` class folders, written once (a
    hidden marker file says the folder is complete; the scan ignores hidden files)."""
    from PIL import Image

    root = DATA / f"n{n}"
    done = root / ".complete"
    if done.exists():
        return root
    print(f"writing {n:,} images to {root} (once) ...", flush=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / f"class_{i % CLASSES:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
        image.save(folder / f"{i:07d}.{'png' if i % 2 == 0 else 'jpg'}")
    done.write_text(f"{n}\n")
    return root


# ---- what is timed ------------------------------------------------------------------------------
def old_probe(files: Sequence[Path]) -> list[int]:
    """The check before the pool and the cache: ``probe_image`` file by file, as the old
    ``probe_files`` did (with ``skip``)."""
    kept = []
    for i, f in enumerate(files):
        try:
            probe_image(f)
        except DataPathError:
            continue
        kept.append(i)
    return kept


def threaded(files: Sequence[Path], workers: int) -> None:
    """``read_header`` over chunks in a thread pool (comparison only: the warnings filter it
    sets is not thread-safe, which does not matter for timing)."""
    names = [str(f) for f in files]
    chunks = [names[k:k + scan_headers.CHUNK] for k in range(0, len(names), scan_headers.CHUNK)]
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(lambda c: [scan_headers.read_header(f) for f in c], chunks):
            pass


def fresh_cache(root: Path) -> Path:
    """An empty ``ANYSSL_CACHE`` folder, ``DATA/cache``, set in the environment."""
    cache = DATA / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    os.environ["ANYSSL_CACHE"] = str(cache)
    return cache


def time_it(fn: Callable[[], Any], args: argparse.Namespace, contention: list[float | None],
            cores: int, before: Callable[[], Any] = lambda: None) -> float:
    """Median seconds of ``fn()`` over ``args.repeats`` clean runs, ``before()`` untimed."""
    def run() -> float:
        before()
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    return median([clean_run(run, args, contention, cores=cores) for _ in range(args.repeats)])


def rows_for(files: list[Path], root: Path, args: argparse.Namespace,
             contention: list[float | None]) -> tuple[list[dict[str, Any]], ScanStats]:
    """Seconds of each way of checking ``files`` (see the module docstring)."""
    w, n = args.workers, len(files)
    stats = ScanStats()
    cases: list[tuple[str, int, Callable[[], Any], Callable[[], Any]]] = [
        ("listing (scan_folder)", 1, lambda: scan_folder(root), lambda: None),
        ("old: probe_image in a loop", 1, lambda: old_probe(files), lambda: None),
        ("probe_files, 1 process, cache off", 1,
         lambda: probe_files(files, workers=1, cache=False), lambda: None),
        (f"threads x{w}, cache off (comparison)", w, lambda: threaded(files, w), lambda: None),
        (f"probe_files, {w} processes, cache off", w,
         lambda: probe_files(files, workers=w, cache=False), lambda: None),
        (f"probe_files, {w} processes, empty cache (1st run)", w,
         lambda: probe_files(files, workers=w, cache=True, stats=stats),
         lambda: fresh_cache(root)),
        ("probe_files, cache written (next runs)", 1,
         lambda: probe_files(files, workers=w, cache=True, stats=stats), lambda: None),
    ]
    rows = []
    for label, cores, fn, before in cases:
        seconds = time_it(fn, args, contention, cores, before)
        rows.append({"step": label, "files": n, "cores": cores, "seconds": seconds,
                     "us_per_file": 1e6 * seconds / n, "imagenet_s": seconds / n * IMAGENET})
        print(f"  {label}: {seconds:.2f} s", flush=True)
    return rows, stats


def crossover(files: list[Path], args: argparse.Namespace,
              contention: list[float | None]) -> list[dict[str, Any]]:
    """One process against the pool (forced: threshold 0) on the first n files, cache off."""
    saved, out = scan_headers.PARALLEL_MIN, []
    try:
        for n in args.crossover:
            part = files[:n]
            one = time_it(partial(probe_files, part, workers=1, cache=False), args,
                          contention, 1)
            scan_headers.PARALLEL_MIN = 0
            pool = time_it(partial(probe_files, part, workers=args.workers, cache=False),
                           args, contention, args.workers)
            scan_headers.PARALLEL_MIN = saved
            out.append({"files": n, "one_process_s": one, "pool_s": pool})
    finally:
        scan_headers.PARALLEL_MIN = saved
    return out


def main() -> None:
    p = common_parser(__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=None, help="images (default 100,000)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes of the pool (default: --threads, the usable cores)")
    p.add_argument("--crossover", type=lambda t: [int(v) for v in t.split(",")], default=None,
                   help="list lengths of the one-process-against-pool runs "
                        "(default 1000,2000,4000,8000,16000)")
    args = p.parse_args()
    args.files = args.files or (5_000 if args.quick else 100_000)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.workers = args.workers or args.threads
    args.crossover = args.crossover or ([500, 2000] if args.quick else
                                        [1000, 2000, 4000, 8000, 16000])
    device = setup(args)
    fresh_cache(DATA)  # never the home folder
    root = make_folder(args.files)
    files = scan_folder(root).files
    contention: list[float | None] = []
    rows, stats = rows_for(files, root, args, contention)
    short: list[float | None] = []  # runs of 30-600 ms: /proc counts CPU time in 10 ms ticks
    cross = crossover(files, args, short)
    table = markdown_table(
        ["step", "files", "cores", "s", "us / file", f"projected s for {IMAGENET:,}"],
        [[r["step"], f"{r['files']:,}", r["cores"], round(r["seconds"], 2),
          round(r["us_per_file"], 1), round(r["imagenet_s"], 1)] for r in rows])
    size = stats.cache_file.stat().st_size if stats.cache_file else 0
    notes = [
        "crossover (cache off): " + "; ".join(
            f"{c['files']:,} files: 1 process {1000 * c['one_process_s']:.0f} ms, "
            f"{args.workers} processes {1000 * c['pool_s']:.0f} ms" for c in cross),
        f"cache file: {size / 1e6:.1f} MB for {len(files):,} files ({size / len(files):.0f} "
        f"bytes each); last note: {stats.note(0.0)}",
        "table " + contention_note(contention, contention_limit(args)),
        "crossover (short runs, coarse) " + contention_note(short, contention_limit(args)),
    ]
    save("folder_scan", args, device, table,
         {"rows": rows, "crossover": cross, "cache_bytes": size, "contention": contention,
          "crossover_contention": short},
         notes)


if __name__ == "__main__":
    main()
