"""The trainer hook for datasets that order their own epochs (shards): the trainer feeds the
dataset's ``epoch_order(seed, epoch)`` to its sampler, with loader workers, and a run resumed
mid-epoch continues at the exact sample; a dataset order that is no permutation is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from train_toys import ToyMethod, ToySet, make_method, toy_config

from anyssl.train import Trainer


class OrderedSet(ToySet):
    """ToySet whose labels are the sample indices and whose epochs run in its own order."""

    def __init__(self, bad: bool = False) -> None:
        super().__init__(64)
        self.y = torch.arange(64)
        self.bad = bad

    def epoch_order(self, seed: int, epoch: int) -> torch.Tensor:
        if self.bad:
            return torch.zeros(64, dtype=torch.long)
        g = torch.Generator().manual_seed(seed * 100 + epoch)
        return torch.randperm(64, generator=g).flip(0)  # not the sampler's own permutation


class Recorder:
    """A callback that keeps the sample indices of every step (the labels of the batch)."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.seen: list[list[int]] = []
        self.stop_at = stop_at

    def on_step_end(self, trainer: Trainer) -> None:
        method: Any = trainer.method
        self.seen.append(method.last_y)
        if trainer.step == self.stop_at:
            raise KeyboardInterrupt


class Recording(ToyMethod):
    def training_step(self, batch: Any) -> Any:
        self.last_y = batch[1].tolist()
        return super().training_step(batch)


def run(out: Path, rec: Recorder, bad: bool = False, **kw: Any) -> Trainer:
    torch.manual_seed(0)
    method = Recording()
    method.load_state_dict(make_method().state_dict())
    t = Trainer(method, OrderedSet(bad), toy_config(out, num_workers=2, seed=3, **kw), out,
                modality_name="toy", callbacks=(rec,))
    t.fit()
    return t


def test_trainer_follows_the_dataset_order_with_workers(tmp_path: Path) -> None:
    rec = Recorder()
    run(tmp_path / "a", rec, checkpoint_every=3)
    ds = OrderedSet()
    for epoch in (0, 1):  # 8 steps of 8 per epoch, in the dataset's own order
        expected = ds.epoch_order(3, epoch).view(8, 8).tolist()
        assert rec.seen[epoch * 8: (epoch + 1) * 8] == expected
    cut = Recorder(stop_at=5)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", cut, checkpoint_every=3)
    resumed = Recorder()
    run(tmp_path / "b", resumed, checkpoint_every=3, resume=True)
    assert resumed.seen == rec.seen[3:]  # last.pt held step 3: the exact samples from there


def test_a_dataset_order_that_is_no_permutation_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"the dataset's epoch_order .* must return a "
                       r"permutation of range\(64\) for epoch 0"):
        run(tmp_path, Recorder(), bad=True)
