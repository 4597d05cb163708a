"""``anyssl train`` on several processes: ``torchrun --nproc-per-node 2 -m anyssl train`` and
``anyssl train --devices 2`` (Gloo, CPU) write one run (one checkpoint, one metrics file, no
per-rank copies or temp files), print its report once, and resume; the options pass through
the launcher unchanged; ``--overwrite`` and ``--resume`` on the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import TINY, run_cli

from anyssl.train import load_checkpoint

#: A tiny SimCLR on the default digits data.
ARGS = ["--modality", "image", "--method", "simclr", "--encoder", "smallcnn", "-e", "width=8",
        "-m", "hidden_dim=32", "-m", "out_dim=16", "--batch-size", "16", "--no-eval",
        "--device", "cpu", "--seed", "1"]
TIMEOUT = 240  # a hang fails the test instead of the suite


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          timeout=TIMEOUT, check=False)


def torchrun(*args: str) -> subprocess.CompletedProcess[str]:
    return run("-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "anyssl", "train", *args)


def steps(out: Path) -> list[int]:
    return [json.loads(ln)["step"] for ln in (out / "metrics.jsonl").read_text().splitlines()]


def test_torchrun_writes_one_run_and_devices_resumes_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = torchrun(*ARGS, "--max-steps", "4", "--out", str(out))
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("run folder:") == 1  # rank 1 prints nothing
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "last.pt", "metrics.jsonl"]
    state = load_checkpoint(out / "last.pt")
    assert (state["step"], state["world_size"]) == (4, 2)
    assert steps(out) == [0, 3]
    again = run("-m", "anyssl", "train", "--devices", "2", *ARGS, "--max-steps", "6",
                "--resume", "--out", str(out))
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("run folder:") == 1
    assert load_checkpoint(out / "last.pt")["step"] == 6
    assert steps(out) == [0, 3, 5]  # continued from step 4, no line twice
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "last.pt", "metrics.jsonl"]


@pytest.mark.slow
def test_devices_error_is_one_line_and_the_run_stays(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run("-m", "anyssl", "train", *ARGS, "--max-steps", "1", "--out",
               str(out)).returncode == 0
    before = (out / "last.pt").read_bytes()
    res = run("-m", "anyssl", "train", "--devices", "2", *ARGS, "--max-steps", "2", "--out",
              str(out))
    assert res.returncode == 2
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [f"error: run folder {out} already holds a run; pass --resume to continue "
                      "it, --overwrite to move it aside and start again, or choose another --out"]
    assert (out / "last.pt").read_bytes() == before


def test_devices_passes_the_given_options_through(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    calls: list[Any] = []
    monkeypatch.setattr("anyssl.train.ddp.launch_local", lambda n, a: calls.append((n, a)))
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    code, text = run_cli("train", "--devices", "3", "--method", "simclr", "-e", "width=8",
                         "-m", "a=1", "-m", "b=2", "--no-eval", "--out", str(tmp_path / "x"),
                         "--device", "cpu", "--skip-nonfinite")
    assert code == 0, text
    assert calls == [(3, ["train", "--method", "simclr", "--encoder-arg", "width=8",
                          "--method-arg", "a=1", "--method-arg", "b=2", "--out",
                          str(tmp_path / "x"), "--device", "cpu", "--no-eval",
                          "--skip-nonfinite"])]


def test_devices_under_torchrun_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    code, text = run_cli("train", "--devices", "2", "--device", "cpu")
    assert code == 2 and "started by torchrun; drop --devices" in text


def test_cli_overwrite_and_resume_rules(tmp_path: Path) -> None:
    out = tmp_path / "run"
    base = ("train", "--method", "simclr", *TINY, "--no-eval", "--out", str(out))
    assert run_cli(*base, "--devices", "1")[0] == 0  # one device: trains in this process
    assert "world_size" not in load_checkpoint(out / "last.pt")
    code, text = run_cli(*base)
    assert code == 2 and text.strip().splitlines() == [
        f"error: run folder {out} already holds a run; pass --resume to continue it, "
        "--overwrite to move it aside and start again, or choose another --out"]
    code, text = run_cli(*base, "--resume", "--overwrite")
    assert code == 2 and len(text.strip().splitlines()) == 1
    assert text.startswith("error: --resume and --overwrite contradict each other")
    code, text = run_cli(*base, "--overwrite")
    assert code == 0, text
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("run.replaced-")]
    assert len(moved) == 1 and (moved[0] / "last.pt").is_file() and (out / "last.pt").is_file()
    assert f"was moved to {moved[0]}" in text
