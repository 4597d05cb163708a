"""Trainer behaviour other than resume: run folder rules, NaN stop, metrics, devices, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from train_toys import ToySet, make_method, toy_config

from anyssl.train import (
    NonFiniteLossError,
    RunExistsError,
    TrainConfig,
    Trainer,
    load_checkpoint,
    resolve_device,
    warmup_cosine,
)


def trainer(out: Path, method: Any = None, n: int = 64, **kw: Any) -> Trainer:
    return Trainer(method or make_method(), ToySet(n), toy_config(out, **kw), out,
                   modality_name="toy")


def test_fit_writes_run_files_and_result(tmp_path: Path) -> None:
    result = trainer(tmp_path).fit()
    assert (result.step, result.epoch, result.checkpoint) == (16, 2, tmp_path / "last.pt")
    assert result.loss is not None and result.loss > 0
    cfg = TrainConfig.from_yaml(tmp_path / "config.yaml")
    assert (cfg.optimizer, cfg.schedule, cfg.lr) == ("sgd", "cosine", 0.4 * 8 / 256)
    assert cfg.warmup_epochs == pytest.approx(0.2)  # method's 1 epoch capped at 10% of 2 epochs
    assert load_checkpoint(result.checkpoint)["step"] == 16


def test_on_step_end_gets_step_index_and_total(tmp_path: Path) -> None:
    t = trainer(tmp_path, max_steps=11)
    t.fit()
    assert t.method.step_ends == [(i, 11) for i in range(11)]  # max_steps overrides epochs


def test_metrics_lines_parse_and_follow_the_schedule(tmp_path: Path) -> None:
    trainer(tmp_path, log_every=5).fit()
    rows = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 5, 10, 15]
    assert [r["epoch"] for r in rows] == [0, 0, 1, 1]
    for r in rows:
        assert {"loss", "lr", "samples_per_s", "pos"} <= r.keys() and r["samples_per_s"] > 0
        assert r["lr"] == pytest.approx(warmup_cosine(r["step"], 16, 2, 0.4 * 8 / 256))


def test_refuses_to_overwrite_a_previous_run(tmp_path: Path) -> None:
    trainer(tmp_path, max_steps=2).fit()
    before = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(RunExistsError, match="already holds a run; pass --resume"):
        trainer(tmp_path, max_steps=2).fit()
    assert (tmp_path / "last.pt").read_bytes() == before


def test_empty_existing_folder_is_fine(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    assert trainer(tmp_path / "run", max_steps=1).fit().step == 1


def test_nan_stops_naming_the_step_and_keeps_last_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at step 8;.*step 8\)"):
        trainer(tmp_path, make_method(nan_at=8)).fit()
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["step"] == 8  # the epoch-end checkpoint, not overwritten by a bad state
    assert all(torch.isfinite(v).all() for v in state["method"].values() if v.is_floating_point())


def test_nan_before_any_checkpoint_says_so(tmp_path: Path) -> None:
    with pytest.raises(NonFiniteLossError, match="at step 2; no checkpoint was written"):
        trainer(tmp_path, make_method(nan_at=2)).fit()
    assert not (tmp_path / "last.pt").exists()


def test_resume_from_another_method_is_refused(tmp_path: Path) -> None:
    trainer(tmp_path, max_steps=2).fit()
    cfg = toy_config(tmp_path, max_steps=2, resume=True, method="simclr")
    with pytest.raises(ValueError, match=r"method 'toymoco'.*method 'simclr'"):
        Trainer(make_method(), ToySet(64), cfg, tmp_path, modality_name="toy").fit()
    with pytest.raises(ValueError, match=r"modality 'toy'.*modality 'image'"):
        Trainer(make_method(), ToySet(64), cfg.merged({"method": "toymoco"}), tmp_path,
                modality_name="image").fit()


def test_resume_without_checkpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot resume: no checkpoint"):
        trainer(tmp_path, resume=True).fit()


def test_dataset_smaller_than_a_batch(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="5 samples, fewer than one batch of 8; lower --batch"):
        trainer(tmp_path, n=5)


def test_devices() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda:1")


def test_auto_device_trains_on_cpu_here(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    t = trainer(tmp_path, device="auto", max_steps=1)
    t.fit()
    assert t.device.type == "cpu" and next(t.method.parameters()).device.type == "cpu"


def test_grad_clip_is_logged_and_bounds_the_update(tmp_path: Path) -> None:
    t = trainer(tmp_path, grad_clip=1e-3, log_every=1, max_steps=3, optimizer="sgd", lr=0.1)
    t.fit()
    rows = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(r["grad_norm"] > 1e-3 for r in rows)  # the norm before clipping
    total = sum(p.grad.norm() ** 2 for p in t.method.parameters() if p.grad is not None) ** 0.5
    assert float(total) <= 1e-3 * (1 + 1e-4)


def test_target_is_not_optimized(tmp_path: Path) -> None:
    t = trainer(tmp_path, max_steps=1)
    t.fit()
    optimized = {id(p) for g in t.optimizer.param_groups for p in g["params"]}
    assert optimized == {id(p) for p in t.encoder.parameters()}


def test_changed_config_on_resume_is_warned(tmp_path: Path, caplog: Any) -> None:
    trainer(tmp_path, max_steps=2).fit()
    with caplog.at_level("WARNING", logger="anyssl.train.loop"):
        trainer(tmp_path, max_steps=3, resume=True, batch_size=4).fit()
    assert "changed batch_size, lr, warmup_epochs, max_steps: it will not match" in caplog.text


@pytest.mark.slow
def test_compiled_encoder_keeps_checkpoint_keys(tmp_path: Path) -> None:
    t = trainer(tmp_path, max_steps=2, compile=True)
    t.fit()
    keys = load_checkpoint(tmp_path / "last.pt")["method"].keys()
    assert keys == make_method().state_dict().keys()
