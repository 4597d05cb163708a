"""Read what a run folder holds for a report: ``config.yaml``, ``metrics.jsonl`` and
``eval.json`` (written by ``anyssl train``), plus where its checkpoint is.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anyssl.train.metrics import METRICS_FILE
from anyssl.train.safe_yaml import load_yaml_text, read_config_text

__all__ = ["RunRecord", "finite", "read_run", "run_names", "series"]

CONFIG_FILE, EVAL_FILE, CHECKPOINT_FILE = "config.yaml", "eval.json", "last.pt"


@dataclass
class RunRecord:
    """One run folder, read.

    Attributes:
        path: the folder.
        config: its ``config.yaml`` as a dict (``modality``, ``method`` ...).
        train: the training records of ``metrics.jsonl`` (``step``, ``loss``, ``lr`` ...).
        monitor: its monitor records (``step``, ``knn_top1`` ...), from ``--monitor-every``.
        eval: ``eval.json`` (``{"pretrained": {protocol: metrics}, "random_init": ...}``), or
            None when the run was trained with ``--no-eval``.
        skipped: lines of ``metrics.jsonl`` that were not whole records (a write cut short).
    """

    path: Path
    config: dict[str, Any]
    train: list[dict[str, Any]] = field(default_factory=list)
    monitor: list[dict[str, Any]] = field(default_factory=list)
    eval: dict[str, Any] | None = None
    skipped: int = 0

    @property
    def checkpoint(self) -> Path:
        """``last.pt`` in the folder (it may be missing)."""
        return self.path / CHECKPOINT_FILE

    @property
    def modality(self) -> str:
        """The run's modality name (``?`` when its config names none)."""
        return str(self.config.get("modality") or "?")

    @property
    def method(self) -> str:
        """The run's method name (``?`` when its config names none)."""
        return str(self.config.get("method") or "?")


def _number(value: Any) -> Any:
    """JSON numbers as they are; ``"nan"``/``"inf"`` strings (metrics.py writes non-finite
    floats so) back to floats."""
    if isinstance(value, str) and value.lower() in ("nan", "inf", "-inf"):
        return float(value)
    return value


def _records(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """(training records, monitor records, unreadable lines) of a metrics.jsonl."""
    train: list[dict[str, Any]] = []
    monitor: list[dict[str, Any]] = []
    skipped = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("step"), int):
            skipped += 1
            continue
        rec = {k: _number(v) for k, v in rec.items()}
        (train if "loss" in rec else monitor).append(rec)
    return train, monitor, skipped


def _eval(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); re-run anyssl eval on the "
                         "checkpoint, or delete the file to report without a table") from None
    if not isinstance(data, dict) or not isinstance(data.get("pretrained"), dict):
        raise ValueError(f"{path} is not an anyssl evaluation (no 'pretrained' results); "
                         "delete it to report without a table")
    return data


def read_run(folder: str | Path) -> RunRecord:
    """Read a run folder; ``FileNotFoundError`` / ``ValueError`` (one line) when it is not one."""
    path = Path(folder)
    if not path.is_dir():
        raise FileNotFoundError(f"run folder {path} does not exist; give a folder written by "
                                "anyssl train --out")
    cfg_path, metrics = path / CONFIG_FILE, path / METRICS_FILE
    if not cfg_path.is_file() or not metrics.is_file():
        missing = CONFIG_FILE if not cfg_path.is_file() else METRICS_FILE
        raise ValueError(f"{path} is not a run folder (no {missing}); give a folder written by "
                         "anyssl train --out")
    config = load_yaml_text(read_config_text(cfg_path), f"config file {cfg_path}")
    if not isinstance(config, dict):
        raise ValueError(f"config file {cfg_path} does not hold a mapping of config keys")
    train, monitor, skipped = _records(metrics)
    return RunRecord(path, config, train, monitor, _eval(path / EVAL_FILE), skipped)


def series(records: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """``(steps, values)`` of ``key`` over ``records``, in step order, where it is a number
    (non-finite values kept: a diverged run shows its gap)."""
    pairs = sorted((int(r["step"]), float(r[key])) for r in records
                   if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool))
    return [s for s, _ in pairs], [v for _, v in pairs]


def run_names(runs: list[RunRecord]) -> list[str]:
    """A short, distinct label per run: the folder name, or more of its path when two runs
    share a name."""
    names = [r.path.name or str(r.path) for r in runs]
    if len(set(names)) == len(names):
        return names
    return [str(r.path) for r in runs]


def finite(values: list[float]) -> bool:
    """True when any value is finite (something to plot)."""
    return any(math.isfinite(v) for v in values)
