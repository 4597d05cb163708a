"""Crash safety with real processes: ``anyssl train`` is SIGKILLed at random points (mid-step,
mid-checkpoint-write), ``--resume``d after each kill, and must end bit-identical (every tensor of
the method, optimizer and scheduler state, the RNG state and the logged losses) to a run that was
never interrupted. After every kill the latest checkpoint loads, and temp files never pile up.

The kill inside the write window is made deterministic by a wrapper (test-only) around the real
CLI entry point: it replaces ``os.replace`` so that the process SIGKILLs itself on the k-th
``last.pt`` write, after the new checkpoint is complete in its temp file and before the rename.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from anyssl.train.checkpoint import (
    check_format,
    load_checkpoint,
    save_checkpoint,
)

#: Tiny, deterministic CPU settings; a checkpoint after every step so kills land anywhere.
ARGS = ["--modality", "image", "--method", "simclr", "--encoder", "smallcnn", "-e", "width=8",
        "-m", "hidden_dim=32", "-m", "out_dim=16", "--batch-size", "32", "--max-steps", "24",
        "--checkpoint-every", "1", "--no-eval", "--seed", "0", "--device", "cpu"]
STEPS = 24
WRAPPER = '''\
import os, signal, sys

kill_at = int(os.environ.get("CRASH_TEST_KILL_AT_WRITE", "0"))
writes = 0
real_replace = os.replace


def replace(src, dst, *args, **kwargs):
    global writes
    if os.path.basename(os.fspath(dst)) == "last.pt":
        writes += 1
        if writes == kill_at:  # the new checkpoint sits whole in its temp file, not renamed yet
            os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *args, **kwargs)


os.replace = replace
from anyssl.cli.app import main

sys.argv[0] = "anyssl"
main()
'''


@dataclass
class Child:
    """One ``anyssl train`` process and the file its output goes to."""

    proc: subprocess.Popen[bytes]
    log: Path

    def finish(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"anyssl train hung for {timeout} s: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]


class Runner:
    """Starts ``anyssl train`` children (one thread each: deterministic) through the wrapper."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.wrapper = tmp / "crash_wrapper.py"
        self.wrapper.write_text(WRAPPER)
        self.config = tmp / "log_every_step.yaml"
        self.config.write_text("log_every: 1\n")  # a metrics line for every step
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.count = 0

    def start(self, run: Path, *, resume: bool, kill_at_write: int = 0) -> Child:
        self.count += 1
        log = self.tmp / f"child{self.count}.log"
        cmd = [sys.executable, str(self.wrapper), "train", *ARGS, "--config", str(self.config),
               "--out", str(run), *(["--resume"] if resume else [])]
        env = {**self.env, "CRASH_TEST_KILL_AT_WRITE": str(kill_at_write)}
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        return Child(proc, log)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def kill_mid_run(proc: subprocess.Popen[bytes], run: Path, writes: int, fraction: float,
                 timeout: float = 120) -> None:
    """Let the child write ``writes`` (>= 2) new checkpoints, then SIGKILL it ``fraction`` of a
    step later (the step time measured between the last two writes): mid-step or mid-write."""
    last, times = run / "last.pt", list[float]()
    seen = _stamp(last)
    deadline = time.monotonic() + timeout
    while len(times) < writes:
        assert proc.poll() is None, "the child exited before it was killed"
        assert time.monotonic() < deadline, "no checkpoint progress"
        now = _stamp(last)
        if now != seen:
            seen = now
            times.append(time.monotonic())
        time.sleep(0.002)
    time.sleep(fraction * (times[-1] - times[-2]))
    assert proc.poll() is None, "the run ended before the kill: raise STEPS"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def temp_files(run: Path) -> list[str]:
    return sorted(p.name for p in run.iterdir() if p.name.endswith(".tmp"))


def check_after_kill(run: Path, previous_step: int) -> int:
    """The latest checkpoint loads and is complete; at most one temp file (the killed write)."""
    state = load_checkpoint(run / "last.pt")
    check_format(state, run / "last.pt")
    assert previous_step <= state["step"] < STEPS
    assert len(temp_files(run)) <= 1, temp_files(run)
    return int(state["step"])


def flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        return {k: v for key, val in obj.items() for k, v in flat(val, f"{prefix}/{key}").items()}
    if isinstance(obj, (list, tuple)):
        return flat(dict(enumerate(obj)), prefix)
    return {prefix: obj}


def assert_same_run(a: Path, b: Path) -> None:
    """Bit-identical checkpoints (all but the run folder and the resume flag) and losses."""
    sa, sb = load_checkpoint(a / "last.pt"), load_checkpoint(b / "last.pt")
    for s in (sa, sb):
        del s["config"]["out"], s["config"]["resume"]
    fa, fb = flat(sa), flat(sb)
    assert fa.keys() == fb.keys()
    assert any(k.startswith("/method/") for k in fa) and any("/optimizer/" in k for k in fa)
    for key in fa:
        va, vb = fa[key], fb[key]
        assert torch.equal(va, vb) if isinstance(va, torch.Tensor) else va == vb, key

    def losses(run: Path) -> list[tuple[int, float, float]]:
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [(r["step"], r["loss"], r["lr"]) for r in map(json.loads, lines)]

    assert losses(a) == losses(b)
    assert [s for s, _, _ in losses(b)] == list(range(STEPS))


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    return Runner(tmp_path_factory.mktemp("crash"))


@pytest.fixture(scope="module")
def reference(runner: Runner) -> Iterator[Callable[[], Path]]:
    """An uninterrupted run, started at once in the background (it runs beside the first
    interrupted one); calling the fixture waits for it and returns its folder."""
    run = runner.tmp / "straight"
    child = runner.start(run, resume=False)

    def finished() -> Path:
        assert child.finish() == 0, child.output()
        return run

    yield finished
    if child.proc.poll() is None:
        child.proc.kill()
        child.proc.wait()


@pytest.mark.parametrize("random_kills", [2, pytest.param(6, marks=pytest.mark.slow)])
def test_sigkill_anywhere_then_resume_matches_an_uninterrupted_run(
    runner: Runner, reference: Callable[[], Path], random_kills: int, tmp_path: Path
) -> None:
    run, rng = tmp_path / "killed", random.Random(random_kills)

    # 1: killed inside the 4th checkpoint write: last.pt is step 3, the temp file holds step 4
    child = runner.start(run, resume=False, kill_at_write=4)
    assert child.finish() == -signal.SIGKILL, child.output()
    step = check_after_kill(run, 0)
    assert step == 3 and len(temp_files(run)) == 1
    assert load_checkpoint(run / temp_files(run)[0])["step"] == 4  # complete, never renamed

    # 2..: resumed, then killed after a few more checkpoints, at a random point of a step; a
    # life moves on by at most writes + 1 steps, so the run cannot end before its last kill
    most = max(2, (STEPS - 2 - step) // random_kills - 1)
    for _ in range(random_kills):
        child = runner.start(run, resume=True)
        kill_mid_run(child.proc, run, writes=rng.randint(2, most), fraction=rng.random())
        step = check_after_kill(run, step + 2)  # it saw two or more new checkpoints land

    child = runner.start(run, resume=True)
    assert child.finish() == 0, child.output()
    assert temp_files(run) == []  # the successful saves cleaned up after the killed writes
    assert load_checkpoint(run / "last.pt")["step"] == STEPS
    assert_same_run(reference(), run)


def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(
    runner: Runner, reference: Callable[[], Path], tmp_path: Path
) -> None:
    """What a kill before the first checkpoint leaves (config.yaml, a metrics line, a temp file
    and no last.pt): ``--resume`` starts from step 0 and ends as the uninterrupted run."""
    run = tmp_path / "early"
    run.mkdir()
    (run / "config.yaml").write_text("modality: image\nmethod: simclr\n")
    (run / "metrics.jsonl").write_text('{"step": 0, "epoch": 0, "loss": 9.0, "lr": 0.1}\n')
    (run / ".last.pt.killed01.tmp").write_bytes(b"half a checkpoint")
    child = runner.start(run, resume=True)
    assert child.finish() == 0, child.output()
    assert temp_files(run) == []
    assert_same_run(reference(), run)


# ---- the write window, in process ----------------------------------------------------------------
def test_stale_temp_files_are_ignored_on_load_and_removed_by_the_next_save(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "last.pt", {"step": 1, "w": torch.ones(3)})
    stale = [tmp_path / ".last.pt.dead0001.tmp", tmp_path / ".last.pt.dead0002.tmp"]
    for p in stale:
        p.write_bytes(b"half a checkpoint")  # what killed writes leave
    other = tmp_path / ".other.pt.dead0003.tmp"  # another checkpoint's temp file: not ours
    other.write_bytes(b"x")
    assert load_checkpoint(path)["step"] == 1
    save_checkpoint(path, {"step": 2, "w": torch.zeros(3)})
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "last.pt"]
    assert load_checkpoint(path)["step"] == 2


def test_checkpoint_gets_the_mode_of_any_new_file(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "last.pt", {"w": torch.ones(1)})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's owner-only 0o600
