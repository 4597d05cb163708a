"""The end-to-end part of ``gpu_bench.py``: a folder of ImageNet-sized JPEGs, the real trainer's
images/s on it, the same loader alone, and which of decode and the GPU step bounds the trainer.

Not a test module and not part of the package: ``gpu_bench.py`` imports it as
``_gpu_end_to_end`` (``python benchmarks/gpu_bench.py`` puts this folder on ``sys.path``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import Contention, cpu_count

JPEG_SIZE = (500, 375)  # width x height of a typical ImageNet photo


def _jpeg(path: Path, seed: int) -> int:
    """Write one JPEG: a 16 x 12 grid of random colours upsampled, plus grain; its bytes."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = JPEG_SIZE
    grid = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    smooth = np.asarray(grid.resize((w, h), Image.Resampling.BICUBIC), dtype=np.int16)
    grain = rng.integers(-16, 17, (h, w, 1), dtype=np.int16)
    Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8)).save(path, quality=90)
    return path.stat().st_size


def make_jpegs(folder: Path, n: int) -> dict[str, Any]:
    """``n`` JPEGs in ``folder`` (kept when already there), written by one thread per core."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:05d}.jpg" for i in range(n)]
    t0 = time.perf_counter()
    if all(p.is_file() for p in paths):
        sizes = [p.stat().st_size for p in paths]
    else:
        with concurrent.futures.ThreadPoolExecutor(cpu_count()) as pool:
            sizes = list(pool.map(_jpeg, paths, range(n)))
    return {"folder": str(folder), "images": n, "width_height": list(JPEG_SIZE),
            "mean_kib": sum(sizes) / n / 1024, "seconds": time.perf_counter() - t0}


class StepClock:
    """Trainer callback: when each step ended, and the dataset the trainer trained on."""

    def __init__(self) -> None:
        self.ends: list[float] = []
        self.train_set: Any = None
        self.collate: Any = None

    def on_fit_start(self, trainer: Any) -> None:
        self.train_set, self.collate = trainer.train_set, trainer.collate

    def on_step_end(self, trainer: Any) -> None:
        self.ends.append(time.perf_counter())  # the step has synced: its loss was checked


def trainer_rate(folder: Path, args: argparse.Namespace, device: torch.device,
                 workdir: Path) -> tuple[dict[str, Any], StepClock]:
    """Images/s of ``anyssl.api.train`` (SimCLR) on ``folder`` after ``args.warm_steps`` steps:
    from the median step (steady state) and from the mean (with epoch-end checkpoints)."""
    from anyssl.api import train

    clock = StepClock()
    train(modality="image", method="simclr", data=str(folder), encoder=args.encoder,
          batch_size=args.batch_size, max_steps=args.warm_steps + args.steps, eval=False,
          device=str(device), precision=args.precision, data_args={"crop_size": args.size},
          log_every=10, seed=0, out=str(workdir / "run"), callbacks=[clock])
    gaps = np.diff(clock.ends[args.warm_steps - 1:])  # the steps after the warm-up
    return {"images_per_s": args.batch_size / float(np.median(gaps)),
            "images_per_s_mean": args.batch_size * len(gaps) / float(gaps.sum()),
            "steps_timed": len(gaps), "train_images": len(clock.train_set)}, clock


def loader_rate(dataset: Any, collate: Any, workers: int, args: argparse.Namespace,
                device: torch.device) -> dict[str, Any]:
    """Images/s of the trainer's loader settings alone (decode, collate, pin), sampling without
    epoch ends; the clock starts when the first batch of every worker has arrived."""
    from torch.utils.data import DataLoader, RandomSampler

    from anyssl.train.data import PREFETCH_FACTOR

    skip, waves = max(1, workers), max(2, math.ceil(args.steps / max(1, workers)))
    n = skip + max(1, workers) * waves
    sampler = RandomSampler(dataset, num_samples=n * args.batch_size,
                            generator=torch.Generator().manual_seed(0))
    extra: dict[str, Any] = {"prefetch_factor": PREFETCH_FACTOR} if workers else {}
    loader = DataLoader(dataset, batch_size=args.batch_size, sampler=sampler, drop_last=True,
                        collate_fn=collate, num_workers=workers,
                        pin_memory=device.type == "cuda", **extra)
    arrived = []
    with Contention() as c:
        for _ in loader:
            arrived.append(time.perf_counter())
    rate = args.batch_size * (len(arrived) - skip) / (arrived[-1] - arrived[skip - 1])
    return {"images_per_s": rate, "workers": workers, "batches_timed": len(arrived) - skip,
            "contention": c.other}


def end_to_end(args: argparse.Namespace, device: torch.device,
               gpu_step: dict[str, Any] | None) -> dict[str, Any]:
    """Trainer, loader alone and GPU step alone on the same images, and which bounds which."""
    from anyssl.train.data import resolve_workers

    workdir = Path(tempfile.mkdtemp(prefix="gpu_bench_"))
    try:
        folder = Path(args.jpeg_dir) if args.jpeg_dir else workdir / "jpegs"
        jpegs = make_jpegs(folder, args.images)
        trainer, clock = trainer_rate(folder, args, device, workdir)
        workers, note = resolve_workers(None, clock.train_set)
        loader = loader_rate(clock.train_set, clock.collate, workers, args, device)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    step = gpu_step["images_per_s"] if gpu_step else float("nan")
    bound = "decode (loader)" if loader["images_per_s"] < step else "compute (GPU step)"
    return {"jpegs": jpegs, "trainer": trainer, "loader": loader, "workers_note": note,
            "gpu_step_images_per_s": step, "bound": bound,
            "trainer_over_bound": trainer["images_per_s"] / min(loader["images_per_s"], step)}
