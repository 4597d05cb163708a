"""The CLI on time series: TS2Vec on the shipped GunPoint, core methods on user files, the SVM
protocol for every checkpoint, and bad input (one-line error, exit code 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli

#: A small dilated-conv encoder so the runs take seconds.
SMALL = ["-e", "depth=2", "-e", "hidden_dim=16", "-e", "out_dim=32"]


@pytest.fixture(scope="module")
def ts2vec_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ts") / "ts2vec"
    code, text = run_cli("train", "--modality", "timeseries", "--method", "ts2vec",
                         "--max-steps", "4", *SMALL, "--out", str(out))
    assert code == 0, text
    return out


def test_ts2vec_on_the_default_data_reports_the_modalitys_protocols(ts2vec_run: Path):
    report = json.loads((ts2vec_run / "eval.json").read_text())
    assert set(report["pretrained"]) == {"svm", "linear", "knn"}
    assert 0.5 <= report["pretrained"]["svm"]["top1"] <= 1.0
    cfg = (ts2vec_run / "config.yaml").read_text()
    assert "batch_size: 8" in cfg and "data: null" in cfg  # TS2Vec's batch, gunpoint default


def test_eval_svm_on_a_checkpoint_split_and_cross_validated(ts2vec_run: Path, tmp_path: Path):
    out = tmp_path / "svm.json"
    code, text = run_cli("eval", "svm", str(ts2vec_run / "last.pt"), "--out", str(out))
    assert code == 0, text
    split = json.loads(out.read_text())
    assert "C" in split["pretrained"]["svm"]
    train_report = json.loads((ts2vec_run / "eval.json").read_text())
    assert split["pretrained"]["svm"]["top1"] == train_report["pretrained"]["svm"]["top1"]
    cv = tmp_path / "svm-cv.json"
    code, text = run_cli("eval", "svm", str(ts2vec_run / "last.pt"), "--folds", "3",
                         "--kernel", "linear", "--out", str(cv))
    assert code == 0, text
    assert "std" in json.loads(cv.read_text())["pretrained"]["svm"]


def _npz(path: Path, n: int = 40, t: int = 30, c: int = 2) -> Path:
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, t, c)) + y[:, None, None]  # time-major, as the format says
    np.savez(path, X=x.astype(np.float32), y=y)
    return path


@pytest.mark.parametrize("method", ["simclr", "mocov2", "byol", "tstcc"])
def test_core_methods_train_on_a_users_npz_file(method: str, tmp_path: Path):
    data = _npz(tmp_path / "toy.npz")
    algo = "simclr" if method == "tstcc" else method
    args = ["--views", "recipe:tstcc"] if method == "tstcc" else []
    code, text = run_cli("train", "--modality", "timeseries", "--method", algo, "--data",
                         str(data), "--max-steps", "2", *SMALL, *args, "--eval-protocol", "knn",
                         "--out", str(tmp_path / "run"))
    assert code == 0, text
    assert "batch_size 256 lowered to 16" in text  # 32 training series after the 80/20 split


def test_data_args_reach_the_dataset_and_bad_ones_are_named(tmp_path: Path):
    data = _npz(tmp_path / "toy.npz")
    code, text = run_cli("train", "--modality", "timeseries", "--method", "ts2vec", "--data",
                         str(data), "-d", "normalize=none", "--max-steps", "1", *SMALL,
                         "--no-eval", "--out", str(tmp_path / "ok"))
    assert code == 0, text
    code, text = run_cli("train", "--modality", "timeseries", "--method", "ts2vec", "--data",
                         str(data), "-d", "bogus=1", "--out", str(tmp_path / "bad"))
    assert code == 2 and "no argument 'bogus'" in text and "Traceback" not in text


@pytest.mark.parametrize("content,expect", [
    ("@problemName X\n@classLabel true 1 2\n@data\n", "no data"),
    ("1\t0.1\t0.2\n2\tnan\tnan\n", "NaN"),
    ("1\ta\t0.2\n", "line 1"),
])
def test_bad_series_files_exit_2_with_one_line(tmp_path: Path, content: str, expect: str):
    suffix = ".ts" if content.startswith("@") else ".tsv"
    root = tmp_path / "Bad"
    root.mkdir()
    for split in ("TRAIN", "TEST"):
        (root / f"Bad_{split}{suffix}").write_text(content)
    code, text = run_cli("train", "--modality", "timeseries", "--method", "ts2vec", "--data",
                         str(root), "--out", str(tmp_path / "run"))
    assert code == 2, text
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and expect in lines[0], text


def test_ts2vec_is_a_time_series_method_only(tmp_path: Path):
    code, text = run_cli("train", "--modality", "image", "--method", "ts2vec",
                         "--out", str(tmp_path / "x"))
    assert code == 2 and "unknown method 'ts2vec' for modality 'image'" in text


def test_a_crop_longer_than_the_series_fails_before_the_run_folder_exists(tmp_path: Path):
    out = tmp_path / "run"
    code, text = run_cli("train", "--modality", "timeseries", "--method", "simclr", "--aug",
                         "crop(length=500)", *SMALL, "--out", str(out))
    assert code == 2 and "crop(length=500) needs series of at least 500" in text, text
    assert not out.exists()  # nothing half-started to trip over on the next try


@pytest.mark.parametrize("train,test,expect", [
    ("@classLabel true 1 2\n@data\n1,2,3:4,5,6:1\n1,2,3:1\n", None, "channel"),
    ("@univariate true\n@classLabel true 1 2\n@data\n1,2,3:4,5,6:1\n", None, "@univariate"),
    ("@classLabel true 1 2\n@data\n1,2,3:1\n4,5,6:2\n", "@classLabel false\n@data\n1,2,3\n",
     "label"),
    ("@classLabel true 1 a\n@data\n1,2,3:1\n4,5,6:a\n", None, "label"),
])
def test_more_bad_ts_files_exit_2(tmp_path: Path, train: str, test: str | None, expect: str):
    root = tmp_path / "Bad"
    root.mkdir()
    (root / "Bad_TRAIN.ts").write_text(train)
    (root / "Bad_TEST.ts").write_text(test or train)
    code, text = run_cli("train", "--modality", "timeseries", "--method", "ts2vec", "--data",
                         str(root), "--out", str(tmp_path / "run"))
    assert code == 2 and text.startswith("error:") and expect in text, text
    assert "Bad_T" in text and "Traceback" not in text
