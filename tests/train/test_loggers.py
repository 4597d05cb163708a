"""Pluggable loggers (``--logger none|tensorboard|wandb|mlflow``): what each one receives,
the ``--tensorboard`` alias, one-line errors before anything is written, and the wandb /
MLflow offline stores for real where those packages are installed."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from cli_helpers import run_cli

from anyssl.api import train
from anyssl.train import TrainConfig
from anyssl.train.loggers import (
    LOGGERS,
    LoggerUnavailableError,
    NoLogger,
    TrainLogger,
    build_loggers,
    check_loggers,
    logger_names,
)
from anyssl.train.loggers_ext import flat_params
from anyssl.train.metrics import MetricsLogger

TINY: dict[str, Any] = {"modality": "image", "method": "simclr", "data": "digits",
                        "encoder": "smallcnn", "batch_size": 16, "max_steps": 3, "epochs": 1,
                        "log_every": 1, "eval": False}


class Recorder:
    """A plugin logger that keeps every call."""

    instances: ClassVar[list[Recorder]] = []

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.metrics: list[tuple[int, dict[str, float]]] = []
        self.configs: list[dict[str, Any]] = []
        self.closed = False
        Recorder.instances.append(self)

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self.metrics.append((step, dict(metrics)))

    def log_config(self, config: dict[str, Any]) -> None:
        self.configs.append(config)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> type[Recorder]:
    monkeypatch.setattr(LOGGERS, "_entries", dict(LOGGERS._entries))
    LOGGERS.add("recorder", Recorder)
    Recorder.instances = []
    return Recorder


def _jsonl(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_logger_names_alias_lists_and_none() -> None:
    assert logger_names(TrainConfig()) == []
    assert logger_names(TrainConfig(tensorboard=True)) == ["tensorboard"]
    assert logger_names(TrainConfig(logger="tensorboard", tensorboard=True)) == ["tensorboard"]
    assert logger_names(TrainConfig(logger="wandb, mlflow")) == ["wandb", "mlflow"]
    assert logger_names(TrainConfig(logger="none,mlflow", tensorboard=True)) == [
        "mlflow", "tensorboard"]
    assert isinstance(NoLogger(), TrainLogger) and isinstance(Recorder(Path()), TrainLogger)


def test_unknown_logger_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown logger 'wandbb' \(did you mean 'wandb'\?\); "
                                         r"valid: .*mlflow, none, tensorboard, wandb"):
        check_loggers(["wandbb"])


def test_missing_package_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("wandb", "mlflow") else real(name, *a))
    with pytest.raises(LoggerUnavailableError, match=r"--logger wandb needs the wandb package, "
                                                     r"which is not installed; pip install "
                                                     r"'anyssl\[wandb\]'"):
        check_loggers(["wandb"])
    out = tmp_path / "run"
    code, text = run_cli("train", "--method", "simclr", "--max-steps", "1", "--batch-size", "16",
                         "--logger", "mlflow", "--no-eval", "--out", str(out))
    assert code == 2 and text.strip().splitlines()[-1] == (
        "error: --logger mlflow needs the mlflow package, which is not installed; pip install "
        "'anyssl[mlflow]', or choose another --logger")
    assert not out.exists()  # refused before the run folder was made


def test_cli_unknown_logger_exits_2_without_writing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, text = run_cli("train", "--method", "simclr", "--max-steps", "1", "--logger", "nope",
                         "--out", str(out))
    assert code == 2 and "error: unknown logger 'nope'" in text and "Traceback" not in text
    assert not out.exists()


def test_a_logger_that_cannot_start_is_one_line(recorder: type[Recorder],
                                                tmp_path: Path) -> None:
    def broken(run_dir: Path) -> TrainLogger:
        raise ConnectionError("server\nunreachable")

    LOGGERS.add("broken", broken)
    with pytest.raises(LoggerUnavailableError, match=r"^--logger broken could not start: "
                                                     r"server unreachable$"):
        build_loggers(["recorder", "broken"], tmp_path)
    assert recorder.instances[0].closed  # the one already started was closed


def test_metrics_logger_feeds_every_logger(recorder: type[Recorder], tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    with MetricsLogger(tmp_path, loggers=[rec], progress=False) as m:
        m.log_config({"method": "simclr"})
        m.log(0, 0, 1.5, 0.1, 10.0, {"pos_sim": 0.25})
        m.log_monitor(0, 0, {"knn_top1": 0.5})
    assert rec.configs == [{"method": "simclr"}] and rec.closed
    assert rec.metrics == [(0, {"train/loss": 1.5, "train/lr": 0.1, "train/samples_per_s": 10.0,
                                "train/pos_sim": 0.25}), (0, {"monitor/knn_top1": 0.5})]


def test_trainer_logs_config_and_every_metrics_line(recorder: type[Recorder],
                                                    tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(**TINY, out=str(run), logger="recorder")
    (rec,) = recorder.instances
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert rec.configs == [saved] and saved["logger"] == "recorder" and rec.closed
    lines = _jsonl(run)
    assert [s for s, _ in rec.metrics] == [r["step"] for r in lines] == [0, 1, 2]
    assert [m["train/loss"] for _, m in rec.metrics] == pytest.approx([r["loss"] for r in lines])


def test_tensorboard_alias_and_logger_write_events(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for flag in (["--tensorboard"], ["--logger", "tensorboard"]):
        run = tmp_path / flag[-1]
        code, text = run_cli("train", "--method", "simclr", "--data", "digits", "--encoder",
                             "smallcnn", "--batch-size", "16", "--max-steps", "2", "--no-eval",
                             *flag, "--out", str(run))
        assert code == 0, text
        events = EventAccumulator(str(run / "tensorboard"))
        events.Reload()
        loss = events.Scalars("train/loss")
        assert [e.step for e in loss] == [r["step"] for r in _jsonl(run)]
        assert [e.value for e in loss] == pytest.approx([r["loss"] for r in _jsonl(run)])


def test_flat_params_flattens_and_bounds() -> None:
    params = dict(flat_params({"method": "mocov2", "method_args": {"queue_size": 64},
                               "data_args": {}, "aug": "x" * 900}))
    assert params["method"] == "mocov2" and params["method_args.queue_size"] == "64"
    assert params["data_args"] == "{}" and len(params["aug"]) == 500


def test_mlflow_file_store_offline_and_resume(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mlflow", reason="mlflow not installed (pip install 'anyssl[mlflow]')")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run = tmp_path / "run"
    train(**TINY, out=str(run), logger="mlflow")
    run_id = (run / "mlflow-run-id").read_text().strip()
    client = MlflowClient(tracking_uri=(run / "mlruns").absolute().as_uri())
    history = client.get_metric_history(run_id, "train/loss")
    assert [(m.step, m.value) for m in history] == [
        (r["step"], pytest.approx(r["loss"])) for r in _jsonl(run)]
    info = client.get_run(run_id)
    assert info.data.params["method"] == "simclr" and info.info.run_name == "run"
    assert info.info.status == "FINISHED"
    train(**{**TINY, "max_steps": 4}, out=str(run), logger="mlflow", resume=True)
    assert (run / "mlflow-run-id").read_text().strip() == run_id  # the same MLflow run
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")][-1] == 3


def test_wandb_offline_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb", reason="wandb not installed (pip install 'anyssl[wandb]')")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "run"
    train(**TINY, out=str(run), logger="wandb")
    run_id = (run / "wandb" / "wandb-run-id").read_text().strip()
    (offline,) = list((run / "wandb").glob("offline-run-*"))
    assert offline.name.endswith(run_id)
    assert list(offline.glob(f"run-{run_id}.wandb"))  # the records wandb sync uploads
