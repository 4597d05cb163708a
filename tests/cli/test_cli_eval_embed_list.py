"""``anyssl eval``, ``anyssl embed`` and ``anyssl list`` on a tiny trained run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli

from anyssl.registry import AUGMENTATIONS, METHODS


@pytest.mark.parametrize("protocol", ["linear", "knn", "svm"])
def test_eval_protocols_report_pretrained_and_random(trained_run: Path, tmp_path: Path,
                                                      protocol: str) -> None:
    out = tmp_path / f"{protocol}.json"
    code, text = run_cli("eval", protocol, str(trained_run / "last.pt"), "--out", str(out))
    assert code == 0, text
    report = json.loads(out.read_text())
    assert set(report) == {"pretrained", "random_init"}
    assert 0.1 < report["pretrained"][protocol]["top1"] <= 1.0
    if protocol == "linear":  # a second report never overwrites the first
        code, text = run_cli("eval", protocol, str(trained_run / "last.pt"), "--out", str(out))
        assert code == 2 and "already exists" in text
        assert json.loads(out.read_text()) == report


def test_eval_knn_fixed_k_and_temperature(trained_run: Path, tmp_path: Path) -> None:
    """``--k 200 --temperature 0.07`` is InstDisc's fixed protocol; without them both are
    chosen on the training split and reported; a bad temperature is a one-line error."""
    fixed, chosen = tmp_path / "fixed.json", tmp_path / "chosen.json"
    code, text = run_cli("eval", "knn", str(trained_run / "last.pt"), "--k", "200",
                         "--temperature", "0.07", "--out", str(fixed))
    assert code == 0, text
    report = json.loads(fixed.read_text())["pretrained"]["knn"]
    assert (report["k"], report["temperature"]) == (200, 0.07) and "cv_folds" not in report
    code, text = run_cli("eval", "knn", str(trained_run / "last.pt"), "--out", str(chosen))
    assert code == 0, text
    report = json.loads(chosen.read_text())["pretrained"]["knn"]
    assert report["k"] in (1, 5, 10, 20, 50, 100, 200) and report["temperature"] > 0
    assert "cv_folds" in report or "holdout" in report
    code, text = run_cli("eval", "knn", str(trained_run / "last.pt"), "--temperature", "0")
    assert code == 2 and "temperature must be > 0" in text and "Traceback" not in text


def test_eval_finetune_fraction(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "ft.json"
    code, text = run_cli("eval", "finetune", str(trained_run / "last.pt"), "--fraction", "0.1",
                         "--out", str(out))
    assert code == 0, text
    report = json.loads(out.read_text())
    # 10% of the 1,347 digits training labels, class balanced
    assert 120 <= report["pretrained"]["finetune"]["n_labels"] <= 150


def test_embed_writes_features_and_labels(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "emb.npy"
    code, text = run_cli("embed", str(trained_run / "last.pt"), "--out", str(out))
    assert code == 0, text
    feats, labels = np.load(out), np.load(tmp_path / "emb.labels.npy")
    assert feats.shape[0] == labels.shape[0] == 1797  # all of sklearn's digits
    assert feats.dtype == np.float32 and np.isfinite(feats).all()
    code, text = run_cli("embed", str(trained_run / "last.pt"), "--out", str(out))
    assert code == 2 and "already exists" in text


def test_list_shows_every_method_with_description() -> None:
    code, text = run_cli("list", "methods")
    assert code == 0, text
    for name in METHODS.names():
        line = next(line for line in text.splitlines() if line.split()[0] == name)
        assert len(line.split()) > 2  # name, scope, a description


def test_list_augmentations_for_image() -> None:
    code, text = run_cli("list", "augmentations", "--modality", "image")
    assert code == 0, text
    names = {line.split()[0] for line in text.splitlines()}
    assert set(AUGMENTATIONS.names("image")) <= names
    assert {"crop", "flip", "jitter", "grayscale", "blur", "solarize"} <= names


def test_list_bad_kind_exit_2() -> None:
    code, _ = run_cli("list", "widgets")
    assert code == 2
