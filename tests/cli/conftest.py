"""Shared CLI fixtures: one tiny trained run reused by the eval/embed/resume tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import TINY, run_cli


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished mocov2 run folder (image digits), made once per session."""
    out = tmp_path_factory.mktemp("runs") / "mocov2"
    code, text = run_cli("train", "--modality", "image", "--method", "mocov2", *TINY,
                         "--out", str(out))
    assert code == 0, text
    return out
