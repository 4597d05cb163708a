"""TrainConfig: key and type errors, YAML round trip, merging, effective defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from anyssl.train import ConfigError, TrainConfig, resolve_defaults
from anyssl.train.config import scale_lr


def test_unknown_key_lists_valid_keys_and_a_close_match() -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({"epochz": 3})
    msg = str(err.value)
    assert "unknown config key 'epochz'" in msg and "did you mean 'epochs'?" in msg
    assert "valid keys: modality, method, data" in msg and "\n" not in msg


@pytest.mark.parametrize("key,value", [
    ("epochs", "10"), ("epochs", 2.5), ("epochs", True), ("lr", "0.1"), ("resume", "yes"),
    ("plugins", "mod"), ("views", 2.0), ("method_args", [1]), ("eval_protocols", [1]),
])
def test_wrong_types_are_refused(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"config key '{key}' must be"):
        TrainConfig.from_dict({key: value})


@pytest.mark.parametrize("key,value", [("epochs", 0), ("batch_size", -1), ("log_every", 0),
                                       ("num_workers", -2), ("checkpoint_every", 0)])
def test_out_of_range_values_are_refused(key: str, value: int) -> None:
    with pytest.raises(ConfigError, match=key):
        TrainConfig.from_dict({key: value})


def test_accepted_types() -> None:
    cfg = TrainConfig.from_dict({"lr": 1, "views": "crop; flip", "max_steps": None,
                                 "method_args": {"queue_size": 16}, "eval_protocols": ["knn"]})
    assert cfg.lr == 1 and cfg.views == "crop; flip" and cfg.method_args == {"queue_size": 16}
    assert TrainConfig.from_dict({"views": ["a", "b"]}).views == ["a", "b"]
    assert TrainConfig.from_dict({"views": 4}).views == 4


def test_yaml_round_trip(tmp_path: Path) -> None:
    cfg = TrainConfig.from_dict({"method": "simclr", "lr": 0.3, "views": ["crop", "flip"],
                                 "method_args": {"temperature": 0.5}, "plugins": ["my_mod"],
                                 "grad_clip": 1.0, "warmup_epochs": 2.5})
    cfg.to_yaml(tmp_path / "c.yaml")
    assert TrainConfig.from_yaml(tmp_path / "c.yaml") == cfg
    (tmp_path / "empty.yaml").write_text("")
    assert TrainConfig.from_yaml(tmp_path / "empty.yaml") == TrainConfig()


def test_yaml_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        TrainConfig.from_yaml(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("epochs: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        TrainConfig.from_yaml(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="must map keys to values"):
        TrainConfig.from_yaml(tmp_path / "list.yaml")


def test_merged_ignores_none_and_checks_keys() -> None:
    base = TrainConfig(epochs=7, lr=0.2)
    merged = base.merged({"epochs": None, "lr": 0.5, "seed": 3})
    assert (merged.epochs, merged.lr, merged.seed) == (7, 0.5, 3)
    assert base.lr == 0.2  # a copy
    with pytest.raises(ConfigError, match="unknown config key 'bacth_size'"):
        base.merged({"bacth_size": 4})


def test_default_out_follows_modality_and_method() -> None:
    assert TrainConfig().out == "runs/image-mocov2"
    assert TrainConfig().merged({"method": "simclr"}).out == "runs/image-simclr"
    assert TrainConfig(out="mine").merged({"method": "simclr"}).out == "mine"


def test_resolve_defaults_scales_lr_and_caps_default_warmup() -> None:
    method = {"optimizer": "lars", "lr": 0.3, "weight_decay": 1e-6, "warmup_epochs": 10}
    h = resolve_defaults(TrainConfig(epochs=800, batch_size=4096), method)
    assert (h["optimizer"], h["lr"], h["weight_decay"]) == ("lars", 0.3 * 16, 1e-6)
    assert h["warmup_epochs"] == 10 and h["schedule"] == "cosine"  # fallback schedule
    short = resolve_defaults(TrainConfig(epochs=20, batch_size=128), method)
    assert short["warmup_epochs"] == 2 and short["lr"] == pytest.approx(0.15)
    explicit = resolve_defaults(TrainConfig(epochs=20, warmup_epochs=5, lr=1.0), method)
    assert explicit["warmup_epochs"] == 5 and explicit["lr"] == 1.0


def test_resolve_defaults_in_steps() -> None:
    h = resolve_defaults(TrainConfig(max_steps=50), {"warmup_epochs": 10}, steps_per_epoch=20)
    assert h["total_steps"] == 50 and h["warmup_steps"] == 5  # 10% of 2.5 epochs
    h = resolve_defaults(TrainConfig(epochs=3), {}, steps_per_epoch=20)
    assert (h["total_steps"], h["warmup_steps"], h["optimizer"]) == (60, 0, "sgd")


def test_resolve_defaults_bad_choices() -> None:
    with pytest.raises(ConfigError, match="unknown optimizer 'adagrad'; choose one of: sgd, lars"):
        resolve_defaults(TrainConfig(optimizer="adagrad"), {})
    with pytest.raises(ConfigError, match="unknown schedule 'linear'"):
        resolve_defaults(TrainConfig(), {"schedule": "linear"})


def test_lr_scaling_rules_per_method() -> None:
    """Each method states how its lr grows with the global batch: linear (SGD/LARS methods),
    sqrt (SimCLR's large-data recipe) or none (Adam-family methods, e.g. CLIP)."""
    assert scale_lr(0.3, 512, "linear") == pytest.approx(0.6)
    assert scale_lr(0.075, 4096, "sqrt") == pytest.approx(4.8)  # = 0.3 x 4096/256 (README)
    assert scale_lr(5e-4, 32768, "none") == 5e-4
    sqrt = resolve_defaults(TrainConfig(batch_size=256), {"optimizer": "lars", "lr": 0.075,
                                                          "lr_scaling": "sqrt"})
    assert sqrt["lr"] == pytest.approx(1.2) and sqrt["lr_scaling"] == "sqrt"
    clip = resolve_defaults(TrainConfig(batch_size=32768), {"optimizer": "adamw", "lr": 5e-4,
                                                            "lr_scaling": "none"})
    assert clip["lr"] == 5e-4  # was 0.064 when every lr scaled by batch/256
    unstated = {"optimizer": "adam", "lr": 1e-3}  # a method that states no rule
    assert resolve_defaults(TrainConfig(batch_size=512), unstated)["lr"] == 1e-3
    assert resolve_defaults(TrainConfig(batch_size=512), {"lr": 0.1})["lr"] == pytest.approx(0.2)
    mine = resolve_defaults(TrainConfig(batch_size=512, lr_scaling="none"), {"lr": 0.1})
    assert mine["lr"] == 0.1 and mine["lr_scaling"] == "none"  # the config's rule wins
    with pytest.raises(ConfigError, match="unknown lr_scaling 'log'; choose one of: linear"):
        TrainConfig(lr_scaling="log")
