"""Progress lines for logs: when stdout is not a terminal (a batch job, ``nohup``, CI), the rich
progress bar is off, so the trainer prints plain lines instead, e.g.::

    epoch 3/100 step 1200/40000 loss 4.812 lr 0.03 12.3 it/s eta 1:02:03

When: after the first step (the run is alive), then at most one line every ``every_s`` seconds
(30) within an epoch, at an epoch's end when the last line is at least ``epoch_every_s`` seconds
(10) old, and after the last step. Time-based rather than every N steps, so that a log gets a
line about every half minute whether a step takes 5 ms or 5 s, and a run of sub-second epochs
on a tiny data set does not print a line per epoch. ``loss`` is the last logged one
(``log_every``), ``it/s`` the optimizer steps per second since the previous line, ``eta`` the
remaining steps at that rate. Rank 0 alone prints; on a terminal the progress bar shows instead.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["ProgressLines", "format_duration", "progress_line"]


def format_duration(seconds: float) -> str:
    """``h:mm:ss`` of a number of seconds (``-`` for an unknown or infinite time)."""
    if not seconds >= 0 or seconds == float("inf"):
        return "-"
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def progress_line(step: int, total_steps: int, steps_per_epoch: int, loss: float | None,
                  lr: float, rate: float) -> str:
    """One progress line after ``step`` of ``total_steps`` optimizer steps (``rate``: steps
    per second, for the ETA)."""
    spe = max(1, steps_per_epoch)
    epoch, epochs = (max(step, 1) - 1) // spe + 1, -(-total_steps // spe)
    eta = format_duration((total_steps - step) / rate) if rate > 0 else "-"
    shown = "-" if loss is None else f"{loss:.4g}"
    return (f"epoch {epoch}/{epochs} step {step}/{total_steps} loss {shown} lr {lr:.3g} "
            f"{rate:.1f} it/s eta {eta}")


class ProgressLines:
    """A trainer callback printing ``progress_line``s off a terminal (module docstring).

    ``show=None`` prints only when ``file`` (default stdout) is not a TTY; ``clock`` is the
    time source (tests pass a fake one).
    """

    def __init__(self, every_s: float = 30.0, epoch_every_s: float = 10.0,
                 file: TextIO | None = None, show: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s, self.epoch_every_s = every_s, epoch_every_s
        self.file, self.show, self.clock = file, show, clock
        self._on = False
        self._mark: tuple[float, int] | None = None  # (time, step) of the last line or start
        self._printed = False

    def _out(self) -> TextIO:
        return self.file or sys.stdout

    def on_fit_start(self, trainer: Any) -> None:
        tty = bool(getattr(self._out(), "isatty", lambda: False)())
        self._on = bool(trainer.is_main) and (not tty if self.show is None else self.show)
        self._mark, self._printed = (self.clock(), int(trainer.step)), False

    def on_step_end(self, trainer: Any) -> None:
        if not self._on or self._mark is None:
            return
        last = trainer.step >= trainer.total_steps
        if not self._printed or last or self.clock() - self._mark[0] >= self.every_s:
            self._print(trainer)

    def on_epoch_end(self, trainer: Any) -> None:
        if self._on and self._mark is not None and (
                self.clock() - self._mark[0] >= self.epoch_every_s):
            self._print(trainer)

    def _print(self, trainer: Any) -> None:
        assert self._mark is not None
        now, step = self.clock(), int(trainer.step)
        t0, s0 = self._mark
        rate = (step - s0) / (now - t0) if now > t0 and step > s0 else 0.0
        lr = float(trainer.optimizer.param_groups[0]["lr"])
        print(progress_line(step, int(trainer.total_steps), int(trainer.steps_per_epoch),
                            trainer.last_loss, lr, rate), file=self._out(), flush=True)
        self._mark, self._printed = (now, step), True
