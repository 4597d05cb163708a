"""lightly's side of ``lightly_side_by_side.py``: train one method with lightly as anyssl's run
did, embed both splits with the frozen backbone in eval mode, write the features.

Runs in the peer virtual environment (lightly 1.6.0, no anyssl)::

    .venv-lightly/bin/python benchmarks/peers/_lightly_side.py --recipe R.json \\
        --data benchmarks/data/S.npz --out F.npz [--workers auto|N] [--threads 2]

Images are 28x28 uint8 arrays made PIL images (mode ``L``) in the Dataset, through lightly's
transform, batched by a ``DataLoader`` (shuffled with a seeded generator, ``drop_last``). With
``--workers auto`` a short measurement of full training steps at 0 and 2 workers picks the faster.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _backbone import embed_images, weights_checksum
from _lightly_methods import (
    LightlyMethod,
    build_method,
    build_optimizer,
    build_scheduler,
    build_transform,
    momentum_at,
)
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader, Dataset

#: Worker counts the ``auto`` measurement tries.
WORKER_CHOICES = (0, 2)


class ImageViews(Dataset[tuple[list[Tensor], int]]):
    """``(views, label)`` of each image: the uint8 array as a PIL image through ``transform``."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Any) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[list[Tensor], int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


Run = tuple[LightlyMethod, Optimizer, LambdaLR]


def fresh_run(recipe: dict[str, Any]) -> Run:
    """Seeded method (the same initial backbone as anyssl's run), optimizer and schedule."""
    seed = recipe["seed"]
    torch.manual_seed(seed)
    np.random.seed(seed)  # lightly's blur and solarization draw from numpy
    random.seed(seed)
    model = build_method(recipe)
    model.train()
    optimizer = build_optimizer(model, recipe["optimizer"])
    return model, optimizer, build_scheduler(optimizer, recipe["schedule"])


def make_loader(dataset: ImageViews, recipe: dict[str, Any], workers: int
                ) -> DataLoader[tuple[list[Tensor], int]]:
    return DataLoader(dataset, batch_size=recipe["batch_size"], shuffle=True, drop_last=True,
                      num_workers=workers, persistent_workers=workers > 0,
                      generator=torch.Generator().manual_seed(recipe["seed"]))


def train_step(run: Run, batch: Any, step: int, recipe: dict[str, Any]) -> float:
    """One step as lightly's examples run it: momentum update, loss, backward, step."""
    model, optimizer, scheduler = run
    (x0, x1), _ = batch
    model.update_targets(momentum_at(recipe["method_args"], step,
                                     recipe["schedule"]["total_steps"]))
    loss = model.loss(x0, x1)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()
    return float(loss.detach())


def _forever(loader: DataLoader[Any]) -> Iterator[Any]:
    while True:
        yield from loader


def probe_workers(recipe: dict[str, Any], dataset: ImageViews, steps: int) -> dict[int, float]:
    """Seconds per training step with each of ``WORKER_CHOICES`` DataLoader workers: one
    untimed step (which starts the workers), then ``steps`` timed ones, on a throw-away run."""
    seconds = {}
    for workers in WORKER_CHOICES:
        run = fresh_run(recipe)
        loader = make_loader(dataset, recipe, workers)
        batches = _forever(loader)
        train_step(run, next(batches), 0, recipe)
        t0 = time.perf_counter()
        for k in range(steps):
            train_step(run, next(batches), k + 1, recipe)
        seconds[workers] = (time.perf_counter() - t0) / steps
        del batches, loader, run
        gc.collect()  # persistent workers end with their loader
    return seconds


def train(recipe: dict[str, Any], dataset: ImageViews, workers: int
          ) -> tuple[LightlyMethod, float, int, float, float]:
    """Train for the recipe's epochs; the model, training wall seconds (loader start included),
    steps, last loss and the initial backbone's weight checksum."""
    run = fresh_run(recipe)
    init = weights_checksum(run[0].backbone)
    step, loss = 0, float("nan")
    t0 = time.perf_counter()
    loader = make_loader(dataset, recipe, workers)
    for _ in range(recipe["epochs"]):
        for batch in loader:
            loss = train_step(run, batch, step, recipe)
            step += 1
    seconds = time.perf_counter() - t0
    if step != recipe["schedule"]["total_steps"]:
        raise SystemExit(f"lightly side ran {step} steps, anyssl's run "
                         f"{recipe['schedule']['total_steps']}")
    return run[0], seconds, step, loss, init


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", type=Path, required=True, help="JSON from _recipe.recipe")
    p.add_argument("--data", type=Path, required=True, help="the subset .npz")
    p.add_argument("--out", type=Path, required=True, help=".npz of features to write")
    p.add_argument("--workers", default="auto", help="DataLoader workers: auto, or a count")
    p.add_argument("--probe-steps", type=int, default=10, help="timed steps per worker count")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    recipe = json.loads(args.recipe.read_text())
    with np.load(args.data) as z:
        data = {k: z[k] for k in ("x_train", "y_train", "x_test")}
    dataset = ImageViews(data["x_train"], data["y_train"], build_transform(recipe))
    probe = probe_workers(recipe, dataset, args.probe_steps) if args.workers == "auto" else {}
    workers = min(probe, key=lambda w: probe[w]) if probe else int(args.workers)
    model, seconds, steps, loss, init = train(recipe, dataset, workers)
    feats = {k: embed_images(model.backbone, torch.from_numpy(data[f"x_{k}"]).unsqueeze(1))
             for k in ("train", "test")}  # N x 1 x 28 x 28 uint8 -> N x D
    import lightly

    meta = {"train_s": seconds, "steps": steps, "batch_size": recipe["batch_size"],
            "last_loss": loss, "workers": workers, "probe_s_per_step": probe,
            "init_checksum": init, "heads": model.head_summaries(),
            "lightly": lightly.__version__, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "total_s": time.perf_counter() - t0}
    np.savez(args.out, train_x=feats["train"].numpy(), test_x=feats["test"].numpy(),
             meta=np.array(json.dumps(meta)))
    print(f"lightly {recipe['method']}: {steps} steps in {seconds:.1f} s, workers {workers}, "
          f"last loss {loss:.4f}", flush=True)


if __name__ == "__main__":
    main()
