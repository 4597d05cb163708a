"""anyssl's side of the lightly comparison, run in the parent process (``.venv``).

``anyssl.api.train`` trains the ``peer_cnn`` encoder (``_peer_plugin``) on the subset's IDX
folder with anyssl's own defaults for everything but epochs, batch size and seed (views made
batched in the training process, data in memory, ``num_workers=0``); a trainer callback times
the training loop alone. The run's ``last.pt`` is reloaded with ``anyssl.api.load_run`` and both
splits embedded with ``anyssl.eval.embed``; ``_recipe.recipe`` reads what the run used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _peer_data import Subset
from _recipe import recipe


@dataclass
class SideRun:
    """One library's trained backbone as frozen features, and what its training cost."""

    library: str
    train_x: np.ndarray  # N x D features of the training subset
    test_x: np.ndarray  # M x D features of the test images
    train_s: float  # wall seconds of the training loop alone
    total_s: float  # wall seconds of building, training and embedding
    steps: int  # optimizer steps
    batch_size: int
    last_loss: float | None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        """Training images (each seen as two views) per second of the training loop."""
        return self.steps * self.batch_size / self.train_s if self.train_s > 0 else 0.0


class _Clock:
    """Trainer callback: times ``fit``'s loop (after set-up, up to and with the last checkpoint)
    and keeps the trainer's resolved hyper-parameters."""

    def __init__(self) -> None:
        self.start = self.end = 0.0
        self.hparams: dict[str, Any] = {}
        self.steps_per_epoch = self.steps = 0
        self.last_loss: float | None = None

    def on_fit_start(self, trainer: Any) -> None:
        self.start = time.perf_counter()

    def on_fit_end(self, trainer: Any) -> None:
        self.end = time.perf_counter()
        self.hparams = dict(trainer.hparams)
        self.steps_per_epoch, self.steps = trainer.steps_per_epoch, trainer.step
        self.last_loss = trainer.last_loss


def _embed(run: Any, split: str) -> tuple[np.ndarray, np.ndarray]:
    from anyssl.eval import embed

    dataset = run.parts.train_set if split == "train" else run.parts.test_set
    return embed(run.encoder, dataset, batch_size=512, device="cpu",
                 collate=run.parts.modality.collate, to_device=run.parts.modality.to_device)


def run_anyssl(method: str, subset: Subset, args: Any, work: Path
               ) -> tuple[SideRun, dict[str, Any]]:
    """Train ``method`` with anyssl, embed both splits; return the run and its ``recipe``."""
    from anyssl.api import load_run, train

    t0 = time.perf_counter()
    clock = _Clock()
    out = work / f"anyssl-{method}"
    result = train(modality="image", method=method, data=str(subset.idx_dir),
                   encoder="peer_cnn", plugins=["_peer_plugin"], epochs=args.epochs,
                   batch_size=args.batch_size, seed=args.seed, eval=False, out=str(out),
                   device="cpu", num_workers=0, callbacks=[clock])
    run = load_run(result.checkpoint)
    train_x, train_y = _embed(run, "train")
    test_x, test_y = _embed(run, "test")
    if not (np.array_equal(train_y, subset.y_train) and np.array_equal(test_y, subset.y_test)):
        raise SystemExit("anyssl read the subset's labels in another order than the .npz holds")
    rec = recipe(method, result.run_dir, run.parts.method, clock.hparams, clock.steps_per_epoch)
    side = SideRun("anyssl", train_x, test_x, clock.end - clock.start,
                   time.perf_counter() - t0, clock.steps, args.batch_size, clock.last_loss,
                   {"notes": list(result.notes), "data_loading": "in memory, num_workers 0"})
    return side, rec
