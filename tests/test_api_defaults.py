"""The main job's defaults: a run with no epochs takes the dataset's suggestion."""

from __future__ import annotations

from pathlib import Path

import yaml

from anyssl.api import train
from anyssl.modality import get_modality
from anyssl.train.config import DEFAULT_EPOCHS, TrainConfig


def test_digits_suggests_a_short_run_and_config_records_it(tmp_path: Path) -> None:
    digits = get_modality("image").dataset(None, "train")
    assert digits.suggested_epochs is not None and digits.suggested_epochs < DEFAULT_EPOCHS
    assert TrainConfig().epochs is None
    train(method="simclr", max_steps=1, batch_size=32, eval=False, out=str(tmp_path / "r"),
          method_args={"hidden_dim": 32})
    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert saved["epochs"] == digits.suggested_epochs
