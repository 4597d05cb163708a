"""Helpers for the CLI tests: tiny settings and an in-process runner."""

from __future__ import annotations

from typer.testing import CliRunner

from anyssl.cli.app import app

#: Tiny but real settings: digits, small CNN, two steps.
TINY = ["--epochs", "1", "--max-steps", "2", "--batch-size", "64", "--seed", "0"]


def run_cli(*args: str) -> tuple[int, str]:
    """Invoke the app; return (exit code, stdout+stderr)."""
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


