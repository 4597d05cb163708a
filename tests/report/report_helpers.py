"""Helpers of the report tests: the in-process CLI runner and the tiny run settings."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from anyssl.cli.app import app

#: Digits, small CNN, batches of 512: an epoch is 2 steps, so --monitor-every 1 logs a kNN
#: point, and kNN alone is a quick evaluation.
IMAGE_RUN = ["--modality", "image", "--method", "simclr", "--epochs", "1", "--batch-size", "512",
             "--monitor-every", "1", "--eval-protocol", "knn", "--seed", "0"]
#: One step, no evaluation: the quickest real run folder.
NO_EVAL = ["--epochs", "1", "--max-steps", "1", "--batch-size", "32", "--no-eval", "--seed", "0"]


def run_cli(*args: str | Path) -> tuple[int, str]:
    """Invoke the app in this process; return (exit code, stdout + stderr)."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def train(out: Path, *args: str) -> Path:
    """Train a run into ``out`` (asserting it worked) and return the folder."""
    code, text = run_cli("train", *args, "--out", out)
    assert code == 0, text
    return out
