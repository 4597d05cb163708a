"""metrics.jsonl lines, quiet output off a TTY, TensorBoard on and missing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from anyssl.train import MetricsLogger


def test_lines_parse_with_tensor_logs(tmp_path: Path, capsys: Any) -> None:
    with MetricsLogger(tmp_path) as m:
        m.start_progress(10)  # stdout is not a TTY under pytest: no bar
        m.advance(1)
        rec = m.log(0, 0, torch.tensor(1.5), 0.1, 64.0, {"acc": torch.tensor(0.25), "n": 3})
        m.log(1, 0, 1.25, 0.2, 32.0, {"inf": float("inf")})
    assert rec == {"step": 0, "epoch": 0, "loss": 1.5, "lr": 0.1, "samples_per_s": 64.0,
                   "acc": 0.25, "n": 3.0}
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(ln) for ln in lines]
    assert rows[0] == rec and rows[1]["inf"] == "inf"
    out = capsys.readouterr()
    assert out.out == "" and "\x1b" not in out.err


def test_appends_and_truncates(tmp_path: Path) -> None:
    with MetricsLogger(tmp_path) as m:
        for s in range(5):
            m.log(s, 0, 1.0, 0.1, 1.0)
    with MetricsLogger(tmp_path) as m:
        m.truncate(3)
        m.log(3, 0, 2.0, 0.1, 1.0)
    rows = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3] and rows[-1]["loss"] == 2.0


def test_truncate_drops_a_line_cut_short(tmp_path: Path) -> None:
    """A write cut short by a full disk leaves half a record: resume drops it, not the run."""
    with MetricsLogger(tmp_path) as m:
        for s in range(3):
            m.log(s, 0, 1.0, 0.1, 1.0)
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 3, "loss": 0.')
    with MetricsLogger(tmp_path) as m:
        m.truncate(5)
        m.log(3, 0, 2.0, 0.1, 1.0)
    rows = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3] and rows[-1]["loss"] == 2.0


def test_progress_bar_when_asked(tmp_path: Path) -> None:
    m = MetricsLogger(tmp_path, progress=True)
    m.start_progress(4, done=1)
    m.advance(2)
    m.log(1, 0, 0.5, 0.1, 10.0)
    task = m._bar.tasks[0]
    assert (task.completed, task.total, task.fields["loss"]) == (2, 4, 0.5)
    m.close()


def test_tensorboard_writes_events(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    with MetricsLogger(tmp_path, tensorboard=True) as m:
        m.log(0, 0, 1.0, 0.1, 1.0)
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_tensorboard_missing_is_a_clear_error(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match="--tensorboard needs the tensorboard package"):
        MetricsLogger(tmp_path, tensorboard=True)
