"""Training metrics: JSON lines in ``metrics.jsonl``, the run's loggers (TensorBoard, wandb,
mlflow: ``anyssl.train.loggers``), and a progress
bar on a terminal (off a TTY the trainer prints plain lines instead: ``anyssl.train.progress``).

Values may be tensors; they are turned into floats (``.item()``, one device sync) only here, at
log time, never every step.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from anyssl.train.loggers import TensorBoardLogger, TrainLogger

__all__ = ["MetricsLogger", "to_float"]

METRICS_FILE = "metrics.jsonl"


def to_float(value: Any) -> float:
    """A float from a Python number or a one-element tensor."""
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().item())
    return float(value)


def _json_float(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)  # JSON has no nan/inf


class MetricsLogger:
    """Appends one JSON object per ``log`` call to ``run_dir/metrics.jsonl``.

    Each line has ``step`` (0-based index of the optimizer step logged), ``epoch``, ``loss``,
    ``lr``, ``samples_per_s`` and the method's logs; a monitor line (``log_monitor``) has
    ``step``, ``epoch`` and its values (``knn_top1`` ...) instead. ``progress=None`` shows a rich
    progress bar only when stdout is a TTY. Every record also goes to each of ``loggers``
    (``train/<key>`` and ``monitor/<key>`` scalars); ``tensorboard=True`` adds a
    ``TensorBoardLogger`` (the older spelling of ``loggers=[TensorBoardLogger(run_dir)]``).
    """

    def __init__(self, run_dir: str | Path, tensorboard: bool = False,
                 progress: bool | None = None, loggers: Sequence[TrainLogger] = ()) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / METRICS_FILE
        self._loggers: list[TrainLogger] = list(loggers)
        if tensorboard and not any(isinstance(lg, TensorBoardLogger) for lg in self._loggers):
            self._loggers.append(TensorBoardLogger(self.run_dir))
        self._file = self.path.open("a", encoding="utf-8")
        self._show = sys.stdout.isatty() if progress is None else progress
        self._bar: Any = None
        self._task: Any = None

    def log(self, step: int, epoch: int, loss: Any, lr: float, samples_per_s: float,
            logs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Write one record (tensors converted here) and return it."""
        record: dict[str, Any] = {"step": step, "epoch": epoch, "loss": to_float(loss),
                                  "lr": float(lr), "samples_per_s": float(samples_per_s)}
        for key, value in (logs or {}).items():
            record.setdefault(key, to_float(value))
        line = {k: _json_float(v) if isinstance(v, float) else v for k, v in record.items()}
        self._file.write(json.dumps(line) + "\n")
        self._file.flush()
        scalars = {f"train/{k}": v for k, v in record.items() if k not in ("step", "epoch")}
        for logger in self._loggers:
            logger.log_metrics(step, scalars)
        if self._task is not None:
            self._bar.update(self._task, loss=record["loss"], lr=record["lr"],
                             sps=record["samples_per_s"])
        return record

    def log_monitor(self, step: int, epoch: int, values: Mapping[str, float]) -> None:
        """Write one monitor record (e.g. the online kNN's ``knn_top1``) after step ``step``,
        and show its top-1 in the progress bar."""
        record = {"step": step, "epoch": epoch, **{k: float(v) for k, v in values.items()}}
        self._file.write(json.dumps({k: _json_float(v) if isinstance(v, float) else v
                                     for k, v in record.items()}) + "\n")
        self._file.flush()
        for logger in self._loggers:
            logger.log_metrics(step, {f"monitor/{k}": float(v) for k, v in values.items()})
        if self._task is not None and "knn_top1" in values:
            self._bar.update(self._task, knn=f"knn {100 * float(values['knn_top1']):.1f}%")

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Give the run's resolved config (``TrainConfig.to_dict()``) to every logger."""
        for logger in self._loggers:
            logger.log_config(dict(config))

    def truncate(self, step: int) -> None:
        """Drop records with ``step >= step`` (a resumed run rewrites what came after its
        checkpoint) and any line that is not a whole record (a write cut short by a full disk
        or a power loss); the rewrite is atomic."""
        self._file.close()
        keep = [ln for ln in self.path.read_text(encoding="utf-8", errors="replace").splitlines()
                if (found := _step_of(ln)) is not None and found < step]
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(ln + "\n" for ln in keep), encoding="utf-8")
        os.replace(tmp, self.path)
        self._file = self.path.open("a", encoding="utf-8")

    # ---- progress bar ---------------------------------------------------------------------------
    def start_progress(self, total_steps: int, done: int = 0) -> None:
        """Show a bar of ``total_steps`` steps, ``done`` of them already done (TTY only)."""
        if not self._show or self._bar is not None:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.3g}  "
                       "{task.fields[sps]:.0f} samples/s  {task.fields[knn]}"),
            TimeRemainingColumn(),
        )
        self._task = self._bar.add_task("train", total=total_steps, completed=done,
                                        loss=float("nan"), lr=0.0, sps=0.0, knn="")
        self._bar.start()

    def advance(self, done: int) -> None:
        """Move the bar to ``done`` steps (no device sync)."""
        if self._task is not None:
            self._bar.update(self._task, completed=done)

    def close(self) -> None:
        """Stop the bar and close the file and the TensorBoard writer."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = self._task = None
        loggers, self._loggers = self._loggers, []
        for logger in loggers:
            logger.close()
        self._file.close()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _step_of(line: str) -> int | None:
    """The ``step`` of a metrics line, or None for a blank, cut-short or foreign line."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    step = record.get("step") if isinstance(record, dict) else None
    return step if isinstance(step, int) else None
