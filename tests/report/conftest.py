"""Shared runs of the report tests, each trained once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_helpers import IMAGE_RUN, NO_EVAL, run_cli, train


@pytest.fixture(scope="session")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An evaluated image run with a kNN monitor point (eval.json, metrics, last.pt)."""
    return train(tmp_path_factory.mktemp("report") / "digits-simclr", *IMAGE_RUN)


@pytest.fixture(scope="session")
def no_eval_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-step image run trained with --no-eval (no eval.json)."""
    return train(tmp_path_factory.mktemp("report") / "digits-byol", "--modality", "image",
                 "--method", "byol", *NO_EVAL)


@pytest.fixture(scope="session")
def image_report(image_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full report page of ``image_run`` (every section, t-SNE included)."""
    out = tmp_path_factory.mktemp("pages") / "report.html"
    code, text = run_cli("report", image_run, "--out", out)
    assert code == 0, text
    return out
