"""TS2Vec resume equivalence on the shipped GunPoint: 2 epochs straight and 1 epoch, an
interruption, then ``resume`` give bit-identical encoder, weight average and optimizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from anyssl.api import train
from anyssl.train import load_checkpoint

RUN = {"modality": "timeseries", "method": "ts2vec", "epochs": 2, "eval": False, "seed": 5,
       "encoder_args": {"depth": 2, "hidden_dim": 16, "out_dim": 32}}


class Interrupted(Exception):
    pass


class StopAfterEpoch:
    def on_epoch_end(self, trainer: Any) -> None:
        raise Interrupted


def test_ts2vec_resume_is_bit_identical(tmp_path: Path) -> None:
    straight = train(RUN, out=str(tmp_path / "straight"))
    with pytest.raises(Interrupted):
        train(RUN, out=str(tmp_path / "resumed"), callbacks=[StopAfterEpoch()])
    resumed = train(RUN, out=str(tmp_path / "resumed"), resume=True)
    a = load_checkpoint(straight.checkpoint)
    b = load_checkpoint(resumed.checkpoint)
    assert a["step"] == b["step"] == 2 * (50 // 8)  # TS2Vec's batch of 8 on 50 series
    assert any(k.startswith("averaged.") for k in a["method"])
    for key, value in a["method"].items():
        assert torch.equal(value, b["method"][key]), key
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for pid, state in a["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(value, b["optimizer"]["state"][pid][name]), (pid, name)
