"""Atomic checkpoint writes, clear load errors, and the RNG state round trip."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from anyssl.train import CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from anyssl.train import checkpoint as ckpt_module


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    state: dict[str, Any] = {"w": torch.arange(6.0).view(2, 3), "step": 3,
                             "cfg": {"lr": 0.1, "xs": [1, 2]}}
    path = save_checkpoint(tmp_path / "sub" / "last.pt", state)
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["w"], state["w"]) and loaded["cfg"] == state["cfg"]


def test_interrupted_save_keeps_the_old_file(tmp_path: Path, monkeypatch: Any) -> None:
    path = save_checkpoint(tmp_path / "last.pt", {"step": 1, "w": torch.ones(3)})
    old = path.read_bytes()

    def crash(obj: Any, f: Any) -> None:
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(ckpt_module.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"step": 2, "w": torch.zeros(3)})
    assert path.read_bytes() == old
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_missing_and_corrupt_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no checkpoint at .*nope\.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "bad.pt").write_bytes(b"\x80\x02garbage" * 10)
    with pytest.raises(CheckpointError, match=r"bad\.pt is unreadable \(corrupt or truncated\?\)"):
        load_checkpoint(tmp_path / "bad.pt")
    save_checkpoint(tmp_path / "good.pt", {"w": torch.randn(100, 100)})
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(tmp_path / "cut.pt")


def draws() -> tuple[Any, ...]:
    return (random.random(), np.random.rand(3).tolist(), np.random.randn(), torch.rand(3))


def test_rng_state_round_trip_through_a_file(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.randn()  # leaves a cached Gaussian in numpy's state
    save_checkpoint(tmp_path / "rng.pt", {"rng": rng_state()})
    first = draws()
    set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    second = draws()
    assert first[:3] == second[:3] and torch.equal(first[3], second[3])
    third = draws()
    assert third[0] != first[0]  # the streams really moved on
