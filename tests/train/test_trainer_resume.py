"""The key property: an interrupted run resumed from last.pt ends bit-identical to a straight run
(weights, BN statistics, queue, EMA target, optimizer momentum, scheduler)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from train_toys import ToySet, make_method, toy_config

from anyssl.train import Trainer, load_checkpoint


class Interrupt(Exception):
    pass


class StopAt:
    """A callback that 'kills' the run right after step ``n`` (or epoch ``epoch``) ended."""

    def __init__(self, step: int | None = None, epoch: int | None = None) -> None:
        self.step, self.epoch = step, epoch

    def on_step_end(self, trainer: Trainer) -> None:
        if trainer.step == self.step:
            raise Interrupt

    def on_epoch_end(self, trainer: Trainer) -> None:
        if trainer.step // trainer.steps_per_epoch == self.epoch:
            raise Interrupt


def run(out: Path, callbacks: tuple[Any, ...] = (), **kw: Any) -> Trainer:
    trainer = Trainer(make_method(), ToySet(64), toy_config(out, **kw), out,
                      modality_name="toy", callbacks=callbacks)
    trainer.fit()
    return trainer


def interrupted_then_resumed(out: Path, stop: StopAt, **kw: Any) -> Trainer:
    with pytest.raises(Interrupt):
        run(out, (stop,), **kw)
    return run(out, resume=True, **kw)


def assert_same_state(a: Trainer, b: Trainer) -> None:
    sa, sb = a.method.state_dict(), b.method.state_dict()
    assert sa.keys() == sb.keys() and {"queue", "ptr", "target.0.weight"} <= sa.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    oa, ob = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert oa["param_groups"] == ob["param_groups"]
    assert oa["state"].keys() == ob["state"].keys() and oa["state"]
    for i in oa["state"]:
        for name, value in oa["state"][i].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(ob["state"][i][name]))
    assert a.scheduler.state_dict() == b.scheduler.state_dict()
    assert a.step == b.step == a.total_steps


@pytest.mark.parametrize("optimizer", ["sgd", "lars", "adamw"])
def test_resume_after_epoch_is_bit_identical(tmp_path: Path, optimizer: str) -> None:
    straight = run(tmp_path / "a", optimizer=optimizer)
    resumed = interrupted_then_resumed(tmp_path / "b", StopAt(epoch=1), optimizer=optimizer)
    assert_same_state(straight, resumed)
    # the trained state really moved away from the initial one
    init, final = make_method().state_dict(), straight.method.state_dict()
    for key in ("encoder.0.weight", "target.0.weight", "queue"):
        assert not torch.equal(init[key], final[key]), key


def test_resume_mid_epoch_from_step_checkpoint(tmp_path: Path) -> None:
    straight = run(tmp_path / "a", checkpoint_every=3)
    # killed after step 5 (index 4); last.pt holds step 3, so steps 3 and 4 are redone
    resumed = interrupted_then_resumed(tmp_path / "b", StopAt(step=5), checkpoint_every=3)
    assert_same_state(straight, resumed)
    assert resumed.method.step_ends[0] == (3, 16)  # type: ignore[index]  # the resumed half started at step index 3


def test_mid_epoch_checkpoint_records_position(tmp_path: Path) -> None:
    with pytest.raises(Interrupt):
        run(tmp_path, (StopAt(step=11),), checkpoint_every=5)
    state = load_checkpoint(tmp_path / "last.pt")
    assert (state["step"], state["epoch"]) == (10, 1)
    assert state["modality"] == "toy" and state["method_name"] == "toymoco"
    assert state["encoder"]["out_dim"] == 4 and state["encoder"]["kwargs"] == {"in_dim": 6}
    assert state["config"]["optimizer"] == "sgd"  # resolved from the method's defaults


def test_metrics_after_resume_have_no_duplicate_steps(tmp_path: Path) -> None:
    import json

    interrupted_then_resumed(tmp_path, StopAt(step=7), checkpoint_every=4, log_every=1)
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(16))


def test_resume_finished_run_is_a_no_op(tmp_path: Path) -> None:
    first = run(tmp_path)
    before = (tmp_path / "last.pt").stat().st_mtime_ns
    again = run(tmp_path, resume=True)
    assert (tmp_path / "last.pt").stat().st_mtime_ns == before
    assert_same_state(first, again)


def test_resume_extends_a_run(tmp_path: Path) -> None:
    run(tmp_path, epochs=1)
    longer = run(tmp_path, epochs=2, resume=True)
    assert longer.step == 16 and load_checkpoint(tmp_path / "last.pt")["step"] == 16
