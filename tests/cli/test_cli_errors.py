"""Bad input: a one-line message, exit code 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cli_helpers import TINY, run_cli

from anyssl.modality import Modality, register_modality

register_modality(
    Modality(name="simclr_only", description="test modality serving one method",
             default_dataset="digits", default_encoder="smallcnn",
             recipe=lambda m, d: ["flip"] * 2, methods=("simclr",)),
    override=True,
)


def assert_one_line_error(code: int, text: str, *needles: str) -> None:
    assert code == 2, text
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert lines[0].startswith("error: ")
    assert "Traceback" not in text
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--modality", "imag"], ["unknown modality 'imag'", "did you mean 'image'"]),
        (["--method", "simclrr"], ["unknown method 'simclrr'", "byol", "mocov2"]),
        (["--encoder", "resnet99"], ["unknown encoder 'resnet99'", "resnet18"]),
        (["--modality", "simclr_only", "--method", "byol"], ["not available", "simclr"]),
        (["--data", "/no/such/folder"], ["/no/such/folder", "does not exist"]),
        (["--aug", "crop(size=32), blurr"], ["blurr", "did you mean 'blur'", "valid:"]),
        (["--aug", "crop(sise=32)"], ["crop(sise=32)", "size"]),
        (["--views", "1"], ["at least 2"]),
    ],
)
def test_bad_train_input(args: list[str], needles: list[str], tmp_path: Path) -> None:
    code, text = run_cli("train", *TINY, "--out", str(tmp_path / "r"), *args)
    assert_one_line_error(code, text, *needles)


def test_folder_without_images(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    code, text = run_cli("train", *TINY, "--data", str(empty), "--out", str(tmp_path / "r"))
    assert_one_line_error(code, text, "no images")


def test_unknown_config_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"method": "simclr", "epoch": 3}))
    code, text = run_cli("train", "--config", str(cfg), "--out", str(tmp_path / "r"))
    assert_one_line_error(code, text, "epoch", "epochs")


def test_resume_with_checkpoint_of_another_method(trained_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "copy"
    run.mkdir()
    (run / "last.pt").write_bytes((trained_run / "last.pt").read_bytes())
    code, text = run_cli("train", "--method", "simclr", *TINY, "--out", str(run), "--resume")
    assert_one_line_error(code, text, "mocov2", "simclr")


def test_existing_run_is_not_overwritten(trained_run: Path) -> None:
    before = (trained_run / "last.pt").read_bytes()
    code, text = run_cli("train", "--method", "mocov2", *TINY, "--out", str(trained_run))
    assert_one_line_error(code, text, "--resume")
    assert (trained_run / "last.pt").read_bytes() == before


def test_eval_missing_checkpoint(tmp_path: Path) -> None:
    code, text = run_cli("eval", "linear", str(tmp_path / "nope.pt"))
    assert_one_line_error(code, text, "does not exist")
