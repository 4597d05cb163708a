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


def test_folder_run_with_loader_workers_resumes_exactly_and_keeps_its_sizes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder of image files: loader workers chosen automatically (said in a note), a resume
    from a mid-run checkpoint bit-identical to a straight run, and the checkpoint rebuilding
    the stored/view sizes it trained with even where the device would choose others."""
    import numpy as np
    from PIL import Image

    from anyssl.api import load_run
    from anyssl.modalities.image import datasets_folder

    rng = np.random.default_rng(0)
    for i in range(24):
        f = tmp_path / "data" / f"c{i % 2}" / f"{i}.png"
        f.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(f)
    run: dict[str, Any] = {**SMALL, "data": str(tmp_path / "data"), "batch_size": 8,
                           "epochs": 2, "device": "cpu", "method": "mocov2",
                           "method_args": HEADS["mocov2"] | {"queue_size": 16},
                           "data_args": {"crop_size": 32}}
    straight = train(run, out=str(tmp_path / "straight"))
    out = capsys.readouterr().out
    assert "worker process(es) decode the files" in out  # file-backed: loader workers
    assert "decoded to 32 px (shorter side, centre square) for 32 px views" in out
    with pytest.raises(Interrupted):
        train(run, out=str(tmp_path / "resumed"), callbacks=[StopAfterEpoch()])
    resumed = train(run, out=str(tmp_path / "resumed"), resume=True)
    a = flat_state(load_checkpoint(straight.checkpoint)["method"])
    b = flat_state(load_checkpoint(resumed.checkpoint)["method"])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    auto = {**run, "data_args": {}}
    first = train(auto, out=str(tmp_path / "auto"), max_steps=1)
    assert load_checkpoint(first.checkpoint)["data_state"] == {"image_size": 73, "crop_size": 64}
    monkeypatch.setattr(datasets_folder, "_on_gpu", lambda device: True)  # "another machine"
    loaded = load_run(first.checkpoint)
    assert loaded.parts.train_set.encoder_kwargs["image_size"] == 64
    assert loaded.parts.train_set[0][0].shape == (3, 73, 73)
