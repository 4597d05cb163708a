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


def test_a_modality_without_a_data_scale_is_scaled_by_its_size() -> None:
    """DINO on time series (no ``data_scale``) gets the small-data head (solo-learn's CIFAR
    4,096 prototypes), not ImageNet's 65,536; a data set past ``SMALL_DATA`` is large."""
    from anyssl.build import build_parts
    from anyssl.method_defaults import SMALL_DATA, size_scale

    parts = build_parts("timeseries", "dino")
    assert parts.method.head.out_dim == 4096  # type: ignore[union-attr]
    assert any("dino: the defaults for small data" in n for n in parts.notes)
    assert size_scale(range(SMALL_DATA - 1)) == "small"  # type: ignore[arg-type]
    assert size_scale(range(SMALL_DATA)) == "large"  # type: ignore[arg-type]
