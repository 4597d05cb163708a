"""--precision: the resolved choice per device, bf16 autocast on the CPU, and fp16's gradient
scaler (checkpointed, exact on resume, an overflowing step skipped rather than fatal)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from test_trainer_resume import StopAt, assert_same_state, interrupted_then_resumed, run

from anyssl.train import TrainConfig, load_checkpoint
from anyssl.train import loop as loop_module
from anyssl.train.config import ConfigError
from anyssl.train.precision import resolve_precision


def test_auto_is_fp32_on_cpu_and_bf16_or_fp16_on_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", cuda) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # V100, T4
    assert resolve_precision("auto", cuda) == "fp16"
    assert resolve_precision("fp32", cuda) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ConfigError, match="unknown precision 'fp8'; choose one of: auto, bf16"):
        TrainConfig(precision="fp8")


def test_bf16_trains_under_cpu_autocast_and_is_recorded(tmp_path: Path) -> None:
    trainer = run(tmp_path, precision="bf16")
    assert trainer.precision == "bf16" and not trainer.scaler.is_enabled()
    assert TrainConfig.from_yaml(tmp_path / "config.yaml").precision == "bf16"
    rows = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)
    auto = run(tmp_path / "auto")
    assert TrainConfig.from_yaml(tmp_path / "auto" / "config.yaml").precision == "fp32"
    assert auto.precision == "fp32"


def test_fp16_scaler_is_checkpointed_and_resume_is_exact(tmp_path: Path) -> None:
    straight = run(tmp_path / "straight", precision="fp16")
    assert straight.scaler.is_enabled()
    state = load_checkpoint(tmp_path / "straight" / "last.pt")
    assert state["scaler"]["scale"] == straight.scaler.get_scale()
    resumed = interrupted_then_resumed(tmp_path / "resumed", StopAt(step=5), precision="fp16")
    assert_same_state(straight, resumed)
    assert resumed.scaler.state_dict() == straight.scaler.state_dict()


def test_fp16_overflow_skips_the_step_and_backs_off(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A loss scale so large that the scaled gradients overflow: the scaler skips those steps
    and halves the scale each time; the run goes on (no non-finite gradient error)."""
    def huge(device: torch.device, precision: str) -> Any:
        return torch.amp.GradScaler(device.type, init_scale=2.0**120,
                                    enabled=precision == "fp16")

    monkeypatch.setattr(loop_module, "grad_scaler", huge)
    trainer = run(tmp_path, precision="fp16", log_every=1)
    rows = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    scales = [r["grad_scale"] for r in rows]
    assert scales[0] == 2.0**120 and scales[1] == 2.0**119  # overflowed: skipped, halved
    assert trainer.step == trainer.total_steps and trainer.skipped_steps == 0
