"""Plain progress lines off a terminal: the format, when they are printed (a fake clock), and
that a trainer prints them when stdout is not a TTY."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

import pytest

from anyssl.train.progress import ProgressLines, format_duration, progress_line


def test_line_format_and_eta() -> None:
    assert format_duration(3723) == "1:02:03" and format_duration(float("inf")) == "-"
    line = progress_line(1200, 40000, 400, 4.8123, 0.03, 12.3)
    assert line == "epoch 3/100 step 1200/40000 loss 4.812 lr 0.03 12.3 it/s eta 0:52:34"
    assert progress_line(1, 10, 3, None, 0.1, 0.0) == (
        "epoch 1/4 step 1/10 loss - lr 0.1 0.0 it/s eta -")


class FakeTrainer(SimpleNamespace):
    """What ``ProgressLines`` reads of a trainer."""


def _trainer(total: int = 100, per_epoch: int = 10) -> Any:
    return FakeTrainer(is_main=True, step=0, total_steps=total, steps_per_epoch=per_epoch,
                       last_loss=2.0, optimizer=SimpleNamespace(param_groups=[{"lr": 0.5}]))


def _run(printer: ProgressLines, trainer: Any, clock: list[float], seconds_per_step: float
         ) -> None:
    printer.on_fit_start(trainer)
    while trainer.step < trainer.total_steps:
        clock[0] += seconds_per_step
        trainer.step += 1
        printer.on_step_end(trainer)
        if trainer.step % trainer.steps_per_epoch == 0:
            printer.on_epoch_end(trainer)


def test_first_step_every_30s_epoch_ends_and_last_step() -> None:
    clock, out = [0.0], io.StringIO()
    printer = ProgressLines(file=out, show=True, clock=lambda: clock[0])
    _run(printer, _trainer(), clock, 2.0)  # 20 s epochs, 200 s in all
    steps = [int(line.split()[3].split("/")[0]) for line in out.getvalue().splitlines()]
    # step 1; then epoch ends (20 s apart, >= 10 s since the last line) up to step 100
    assert steps == [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert out.getvalue().splitlines()[1] == (
        "epoch 1/10 step 10/100 loss 2 lr 0.5 0.5 it/s eta 0:03:00")


def test_fast_epochs_and_long_epochs_are_rate_limited() -> None:
    clock, out = [0.0], io.StringIO()
    _run(ProgressLines(file=out, show=True, clock=lambda: clock[0]), _trainer(200, 2), clock, 0.5)
    steps = [int(line.split()[3].split("/")[0]) for line in out.getvalue().splitlines()]
    assert steps == [1, *range(22, 200, 20), 200]  # 1 s epochs: one line per 10 s
    clock, out = [0.0], io.StringIO()
    _run(ProgressLines(file=out, show=True, clock=lambda: clock[0]), _trainer(100, 100), clock,
         1.0)
    steps = [int(line.split()[3].split("/")[0]) for line in out.getvalue().splitlines()]
    assert steps == [1, 31, 61, 91, 100]  # one long epoch: a line every 30 s


@pytest.mark.parametrize("show, main", [(False, True), (True, False)])
def test_silent_on_a_terminal_and_on_other_ranks(show: bool, main: bool) -> None:
    clock, out = [0.0], io.StringIO()
    trainer = _trainer(20, 10)
    trainer.is_main = main
    _run(ProgressLines(file=out, show=show, clock=lambda: clock[0]), trainer, clock, 5.0)
    assert out.getvalue() == ""


def test_a_tty_file_shows_nothing_by_default() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    clock, out = [0.0], Tty()
    _run(ProgressLines(file=out, clock=lambda: clock[0]), _trainer(5, 5), clock, 1.0)
    assert out.getvalue() == ""
    plain = io.StringIO()
    _run(ProgressLines(file=plain, clock=lambda: clock[0]), _trainer(5, 5), clock, 1.0)
    assert plain.getvalue().count("\n") == 2  # first and last step


def test_trainer_prints_progress_lines_off_a_tty(tmp_path: Any,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from train_toys import ToySet, make_method, toy_config

    from anyssl.train import Trainer

    cfg = toy_config(tmp_path / "run")
    Trainer(make_method(), ToySet(64), cfg, cfg.out).fit()
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch ")]
    assert lines[0].startswith("epoch 1/2 step 1/16 loss ")
    assert lines[-1].startswith("epoch 2/2 step 16/16 loss ")
