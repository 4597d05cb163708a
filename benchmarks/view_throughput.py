"""View throughput: images/s turned into 2 views by a method's image recipe (default ``simclr``).

Ours: ``anyssl.views.ViewGenerator`` on a whole uint8 batch (``B x 3 x S x S``, collated as
``default_collate`` does, moved to ``--device``) with ``--threads`` torch threads. Baseline: the
same recipe as a per-sample ``torchvision.transforms.v2`` pipeline in a ``DataLoader`` with
``--workers`` processes (default: the usable cores) that returns 2 views per image, on uint8
tensors and on PIL images (what lightly and solo-learn feed it), both ending in float32 [0, 1].

Images are synthetic uint8 noise stored at the view size below 64 px and at ``size * 256/224``
above (256 px for 224 px views, the usual resize-256-then-crop-224 storage); the crop's box
sampling is the same on both sides, so the stored size only sets how much is resampled.

    .venv/bin/python benchmarks/view_throughput.py              # 32 and 224 px, CPU
    .venv/bin/python benchmarks/view_throughput.py --quick      # 32 px, small batch, < 1 min
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from _common import (
    autocast,
    clean_run,
    common_parser,
    contention_limit,
    contention_note,
    int_list,
    markdown_table,
    median,
    save,
    setup,
    str_list,
    timed,
)
from _runs import recipe_views, stored_size
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

import anyssl.modalities.image  # noqa: F401  (registers the image augmentations)
from anyssl.modalities.image.blur import GaussianBlur, default_kernel_size
from anyssl.modalities.image.color import ColorJitter, Grayscale, Solarize
from anyssl.modalities.image.geometry import Flip, RandomResizedCrop
from anyssl.views import Compose, RandomApply, ViewGenerator

TARGET = 5.0  # ours / best baseline


# ---- the torchvision baseline -------------------------------------------------------------------
def to_torchvision(aug: Any, side: int) -> tuple[list[v2.Transform], int]:
    """Our pipeline as per-sample ``transforms.v2`` steps (and the side after them)."""
    if isinstance(aug, Compose):
        steps: list[v2.Transform] = []
        for a in aug.augmentations:
            more, side = to_torchvision(a, side)
            steps += more
        return steps, side
    if isinstance(aug, RandomApply):
        if isinstance(aug.augmentation, Grayscale):
            return [v2.RandomGrayscale(aug.p)], side
        inner, side = to_torchvision(aug.augmentation, side)
        return [v2.RandomApply(inner, p=aug.p)], side
    if isinstance(aug, RandomResizedCrop):
        crop = v2.RandomResizedCrop(aug.size, scale=aug.scale, ratio=aug.ratio)
        return [crop, v2.RandomHorizontalFlip(aug.flip)] if aug.flip else [crop], aug.size[0]
    if isinstance(aug, Flip):
        return [v2.RandomHorizontalFlip(aug.p)], side
    if isinstance(aug, ColorJitter):
        return [v2.ColorJitter(aug.brightness, aug.contrast, aug.saturation, aug.hue)], side
    if isinstance(aug, Grayscale):
        return [v2.Grayscale(3)], side
    if isinstance(aug, GaussianBlur):
        k = aug.kernel_size or default_kernel_size(side)
        return [v2.GaussianBlur(k, sigma=aug.sigma)], side
    if isinstance(aug, Solarize):  # uint8 / PIL threshold in pixel units
        return [v2.RandomSolarize(aug.threshold * 255, p=1.0)], side
    raise ValueError(f"no torchvision equivalent for {aug!r}; extend to_torchvision()")


class TwoViews(Dataset[tuple[Tensor, Tensor]]):
    """``length`` items cycling over ``images``; each is 2 views through ``transform``.

    Shape: images ``N x 3 x S x S`` uint8; each view ``3 x s x s`` float32.
    """

    def __init__(self, images: Tensor, transform: Callable[[Any], Tensor], length: int,
                 as_pil: bool) -> None:
        self.images, self.transform, self.length = images, transform, length
        self.arrays = images.permute(0, 2, 3, 1).contiguous().numpy() if as_pil else None

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        from PIL import Image

        j = i % len(self.images)
        img = self.images[j] if self.arrays is None else Image.fromarray(self.arrays[j])
        return self.transform(img), self.transform(img)


def baseline(images: Tensor, views: ViewGenerator, as_pil: bool, args: argparse.Namespace,
             contention: list[float | None]) -> float:
    """Images/s of the per-sample torchvision pipeline in a DataLoader (median over epochs)."""
    steps, _ = to_torchvision(views.pipelines[0], images.shape[-1])
    head = [v2.ToImage()] if as_pil else []
    transform = v2.Compose([*head, *steps, v2.ToDtype(torch.float32, scale=True)])
    n = args.batch_size * args.baseline_batches
    loader = DataLoader(TwoViews(images, transform, n, as_pil), batch_size=args.batch_size,
                        num_workers=args.workers, persistent_workers=args.workers > 0)

    def epoch() -> None:
        for _ in loader:
            pass

    for _ in range(args.warmup):  # the first epoch also starts the workers
        epoch()
    cpu = torch.device("cpu")
    times = [clean_run(lambda: timed(epoch, cpu), args, contention, cores=max(1, args.workers))
             for _ in range(args.repeats)]
    return n / median(times)


# ---- ours ---------------------------------------------------------------------------------------
def collate(images: Tensor, batch: int, device: torch.device) -> Tensor:
    """A random batch as ``default_collate`` makes it (stack of samples), on ``device``."""
    idx = torch.randint(len(images), (batch,)).tolist()
    return torch.stack([images[i] for i in idx]).to(device, non_blocking=True)


def ours(images: Tensor, views: ViewGenerator, device: torch.device, args: argparse.Namespace,
         contention: list[float | None]) -> float:
    """Images/s of collate + ``views`` on the device (median over repeats)."""
    def run() -> None:
        with autocast(device, args.precision):
            views(collate(images, args.batch_size, device))

    for _ in range(args.warmup):
        run()
    times = [clean_run(lambda: timed(run, device), args, contention)
             for _ in range(args.repeats)]
    return args.batch_size / median(times)


def breakdown(images: Tensor, views: ViewGenerator, device: torch.device,
              args: argparse.Namespace) -> list[dict[str, Any]]:
    """Median ms of each step of view 1's pipeline on one batch, fed the previous step's output."""
    pipe = views.pipelines[0]
    steps: Sequence[Any] = pipe.augmentations if isinstance(pipe, Compose) else [pipe]
    y: Any = collate(images, args.batch_size, device)
    rows: list[dict[str, Any]] = []
    for step in steps:
        x = y
        ts = []
        with autocast(device, args.precision):
            for _ in range(args.warmup + args.repeats):
                ts.append(timed(functools.partial(step, x), device))
            y = step(x)
        rows.append({"step": repr(step), "ms": 1000 * median(ts[args.warmup:])})
    total = sum(float(r["ms"]) for r in rows)
    for r in rows:
        r["share"] = float(r["ms"]) / total
    return rows


def profile_top(images: Tensor, views: ViewGenerator, device: torch.device,
                args: argparse.Namespace, top: int = 12) -> str:
    """torch.profiler's table of the ops that take the most self time in one views call."""
    from torch.profiler import ProfilerActivity, profile

    x = collate(images, args.batch_size, device)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof, autocast(device, args.precision):
        views(x)
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return str(prof.key_averages().table(sort_by=key, row_limit=top))


def main() -> None:
    p = common_parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", "--size", type=int_list, default=None,
                   help="view sizes in px (default: 32,224)")
    p.add_argument("--batch-size", type=int, default=None, help="images per batch (default 256)")
    p.add_argument("--method", default="simclr", help="whose image recipe (default: simclr)")
    p.add_argument("--workers", type=int, default=None,
                   help="baseline DataLoader workers (default: --threads)")
    p.add_argument("--baselines", type=str_list, default=None,
                   help="tensor, pil or both (default: tensor,pil)")
    p.add_argument("--baseline-batches", type=int, default=None,
                   help="batches per timed baseline epoch (default: 2 per worker)")
    p.add_argument("--stored", type=int, default=512, help="distinct synthetic images")
    p.add_argument("--profile", action="store_true", help="print torch.profiler's top ops too")
    args = p.parse_args()
    quick = args.quick
    args.sizes = args.sizes or ([32] if quick else [32, 224])
    args.batch_size = args.batch_size or (64 if quick else 256)
    args.repeats = args.repeats or (2 if quick else 3)
    args.workers = args.threads if args.workers is None else args.workers
    args.baselines = args.baselines or (["tensor"] if quick else ["tensor", "pil"])
    args.baseline_batches = args.baseline_batches or 2 * max(1, args.workers)
    if not set(args.baselines) <= {"tensor", "pil"}:
        raise SystemExit(f"--baselines takes tensor and/or pil, got {args.baselines}")
    device = setup(args)
    gen = torch.Generator().manual_seed(0)

    rows, results, notes = [], [], []
    contention: list[float | None] = []
    for size in args.sizes:
        side = stored_size(size)
        images = torch.randint(0, 256, (args.stored, 3, side, side), dtype=torch.uint8,
                               generator=gen)
        views = recipe_views(args.method, size)
        print(f"{size} px: {views}", flush=True)
        mine = ours(images, views, device, args, contention)
        base = {kind: baseline(images, views, kind == "pil", args, contention)
                for kind in args.baselines}
        best = max(base.values())
        ratio = mine / best
        steps = breakdown(images, views, device, args)
        results.append({"size": size, "stored": side, "ours": mine, "baselines": base,
                        "ratio": ratio, "breakdown": steps})
        rows.append([size, side, args.batch_size, round(mine), *(round(base.get(k, 0.0)) or "-"
                     for k in ("tensor", "pil")), f"{ratio:.1f}x",
                     "yes" if ratio >= TARGET else "no"])
        top = max(steps, key=lambda r: r["share"])
        notes.append(f"{size} px, view 1 steps: " + "; ".join(
            f"{r['step']} {r['ms']:.1f} ms ({100 * r['share']:.0f}%)" for r in steps)
            + f" -> dominant: {top['step']}")
        if args.profile:
            print(profile_top(images, views, device, args))
    headers = ["size", "stored", "batch", "ours img/s", "tv tensor img/s", "tv PIL img/s",
               "ours / best tv", f">= {TARGET:g}x"]
    notes.append(contention_note(contention, contention_limit(args)))
    results_all = {"method": args.method, "rows": results, "contention": contention}
    save("view_throughput", args, device, markdown_table(headers, rows), results_all, notes)


if __name__ == "__main__":
    main()
