"""CLIP resume equivalence on the shipped OpenMoji: 2 epochs straight and 1 epoch, an
interruption, then ``resume`` give bit-identical towers, projections, logit scale and optimizer;
the checkpoint carries the tokenizer the data was read with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from anyssl.api import load_run, train
from anyssl.train import load_checkpoint

RUN = {"modality": "image-text", "method": "clip", "epochs": 2, "eval": False, "seed": 3,
       "batch_size": 256, "data_args": {"captions": "name", "image_size": 32},
       "encoder_args": {"image_width": 8, "text_width": 16}, "method_args": {"embed_dim": 16}}


class Interrupted(Exception):
    pass


class StopAfterEpoch:
    def on_epoch_end(self, trainer: Any) -> None:
        raise Interrupted


def test_clip_resume_is_bit_identical(tmp_path: Path) -> None:
    straight = train(RUN, out=str(tmp_path / "straight"))
    with pytest.raises(Interrupted):
        train(RUN, out=str(tmp_path / "resumed"), callbacks=[StopAfterEpoch()])
    resumed = train(RUN, out=str(tmp_path / "resumed"), resume=True)
    a = load_checkpoint(straight.checkpoint)
    b = load_checkpoint(resumed.checkpoint)
    assert a["step"] == b["step"] == 2 * (1707 // 256)
    assert "logit_scale" in a["method"] and not torch.equal(
        a["method"]["logit_scale"], torch.tensor(torch.log(torch.tensor(1 / 0.07)).item()))
    for key, value in a["method"].items():
        assert torch.equal(value, b["method"][key]), key
    for pid, state in a["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(value, b["optimizer"]["state"][pid][name]), (pid, name)
    # the tokenizer travels in the checkpoint and comes back when the run is rebuilt
    tok = a["data_state"]["tokenizer"]
    assert isinstance(tok, str) and tok == b["data_state"]["tokenizer"]
    run = load_run(straight.checkpoint)
    assert run.parts.train_set.tokenizer.to_str() == tok
    assert run.parts.test_set.tokenizer.to_str() == tok
