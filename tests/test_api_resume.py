"""Resume equivalence with real methods on real data: 2 epochs straight and 1 epoch, an
interruption, then ``resume`` give bit-identical weights, queue, momentum target and optimizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from anyssl.api import train
from anyssl.train import load_checkpoint


class Interrupted(Exception):
    """Raised to simulate a run killed at the end of an epoch."""


class StopAfterEpoch:
    def on_epoch_end(self, trainer: Any) -> None:
        raise Interrupted


# small heads and encoder keep the test fast; every stateful part is still there
SMALL = {
    "modality": "image",
    "epochs": 2,
    "batch_size": 128,
    "eval": False,
    "seed": 3,
    "encoder_args": {"width": 8},
}
HEADS = {
    "mocov2": {"hidden_dim": 64, "queue_size": 512},
    "byol": {"hidden_dim": 64, "pred_hidden_dim": 64},
}


def flat_state(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Every tensor (and plain value) in a nested checkpoint, keyed by its path."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flat_state(v, f"{prefix}/{k}"))
        return out
    if isinstance(obj, (list, tuple)):
        return flat_state(dict(enumerate(obj)), prefix)
    return {prefix: obj}


@pytest.mark.parametrize("method", ["mocov2", "byol"])
def test_resume_is_bit_identical(method: str, tmp_path: Path) -> None:
    straight = train(
        SMALL, method=method, method_args=HEADS[method], out=str(tmp_path / "straight")
    )
    with pytest.raises(Interrupted):
        train(
            SMALL,
            method=method,
            method_args=HEADS[method],
            out=str(tmp_path / "resumed"),
            callbacks=[StopAfterEpoch()],
        )
    half = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert half["epoch"] == 1
    resumed = train(
        SMALL, method=method, method_args=HEADS[method], out=str(tmp_path / "resumed"), resume=True
    )

    a = flat_state(load_checkpoint(straight.checkpoint)["method"])
    b = flat_state(load_checkpoint(resumed.checkpoint)["method"])
    assert a.keys() == b.keys()
    assert any("queue" in k or "target" in k for k in a)  # the stateful parts are covered
    for key in a:
        assert torch.equal(a[key], b[key]), key
    opt_a = flat_state(load_checkpoint(straight.checkpoint)["optimizer"])
    opt_b = flat_state(load_checkpoint(resumed.checkpoint)["optimizer"])
    for key in opt_a:
        va, vb = opt_a[key], opt_b[key]
        assert torch.equal(va, vb) if isinstance(va, torch.Tensor) else va == vb, key
