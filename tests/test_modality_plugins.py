"""What a modality plugin can set without subclassing: training defaults per method, options per
evaluation protocol; and what it is told when it gets something wrong: a dataset without
``encoder_kwargs``, a checkpoint whose plugin package is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from typer.testing import CliRunner

from anyssl.modality import Modality, register_modality
from anyssl.modality_defaults import with_method_defaults
from anyssl.plugin_source import missing_plugin_message, modality_source, require_modality
from anyssl.registry import DATASETS, ENCODERS
from anyssl.train import TrainConfig

SCOPE = "vectors-defaults"


class Vectors(torch.utils.data.Dataset):
    """64 labelled 6-d vectors; ``bare=True`` leaves out ``encoder_kwargs`` (the mistake)."""

    def __init__(self, split: str, seed: int = 0, bare: bool = False) -> None:
        self.eval_options = {"knn": {"k": 3}}
        g = torch.Generator().manual_seed(0 if split == "train" else 1)
        self.y = torch.arange(64) % 2
        self.x = torch.randn(64, 6, generator=g) + 2 * self.y[:, None]
        self.num_classes = 2
        if not bare:
            self.encoder_kwargs = {"in_dim": 6}

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self.x[i], int(self.y[i])


class Linear(nn.Module):
    """One linear layer, ``in_dim`` -> ``out_dim``."""

    def __init__(self, in_dim: int, out_dim: int = 8) -> None:
        super().__init__()
        self.out_dim, self.fc = out_dim, nn.Linear(in_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x)


DATASETS.add("vectors", Vectors, scope=SCOPE, override=True)
ENCODERS.add("linear", Linear, scope=SCOPE, override=True)
MODALITY = register_modality(Modality(
    name=SCOPE, description="test vectors", default_dataset="vectors", default_encoder="linear",
    recipe=lambda method, ds: ["identity"] * 2,
    eval_options={"knn": {"k": 7, "temperature": 0.1}, "linear": {"weight_decay": 0.0}},
    method_defaults={"simclr": {"epochs": 7, "batch_size": 16, "lr": 0.5,
                                "method_args": {"temperature": 0.2, "hidden_dim": 16}}},
), override=True)


def test_method_defaults_fill_what_the_user_left_unset() -> None:
    cfg, notes = with_method_defaults(TrainConfig(modality=SCOPE, method="simclr"))
    assert (cfg.epochs, cfg.batch_size, cfg.lr) == (7, 16, 0.5)
    assert cfg.method_args == {"temperature": 0.2, "hidden_dim": 16}
    assert notes == [f"simclr: epochs=7, batch_size=16, lr=0.5, method_args={{'temperature': "
                     f"0.2, 'hidden_dim': 16}} (the {SCOPE} modality's defaults; a flag or "
                     "config key overrides each)"]
    mine = TrainConfig(modality=SCOPE, method="simclr", epochs=2, lr=0.1,
                       method_args={"temperature": 0.5})
    cfg, _ = with_method_defaults(mine)  # the user's values win, key by key
    assert (cfg.epochs, cfg.batch_size, cfg.lr) == (2, 16, 0.1)
    assert cfg.method_args == {"temperature": 0.5, "hidden_dim": 16}
    assert with_method_defaults(TrainConfig(modality=SCOPE, method="byol")) == (
        TrainConfig(modality=SCOPE, method="byol"), [])


def test_method_defaults_are_checked_when_the_modality_is_built() -> None:
    base = dict(name="m", description="", default_dataset="d", default_encoder="e",
                recipe=lambda m, d: [])
    with pytest.raises(ValueError, match=r"method_defaults\['simclr'\]: 'momentum' cannot be a "
                       r"modality default; valid: .*epochs"):
        Modality(**base, method_defaults={"simclr": {"momentum": 0.8}})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="config key 'epochs' must be int"):
        Modality(**base, method_defaults={"simclr": {"epochs": "many"}})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'out' cannot be a modality default"):
        Modality(**base, method_defaults={"simclr": {"out": "x"}})  # type: ignore[arg-type]


def test_eval_options_merge_under_the_datasets() -> None:
    protocols, options = MODALITY.evaluation(Vectors("train"))
    assert protocols == ("linear", "knn")
    assert options == {"knn": {"k": 3, "temperature": 0.1}, "linear": {"weight_decay": 0.0}}


def test_method_defaults_reach_the_run_and_its_config(tmp_path: Path) -> None:
    """Through the CLI: the modality's values where no flag is given, the flag where one is;
    both recorded in config.yaml."""
    from anyssl.cli.app import app
    from anyssl.train.safe_yaml import load_yaml_text

    res = CliRunner().invoke(app, ["train", "--modality", SCOPE, "--method", "simclr",
                                   "--max-steps", "1", "--batch-size", "8", "--no-eval",
                                   "--out", str(tmp_path / "run"), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    cfg = load_yaml_text((tmp_path / "run" / "config.yaml").read_text(), "config")
    assert (cfg["epochs"], cfg["batch_size"], cfg["lr"]) == (7, 8, 0.5)
    assert cfg["method_args"] == {"temperature": 0.2, "hidden_dim": 16}


def test_a_dataset_without_encoder_kwargs_gets_one_line() -> None:
    with pytest.raises(ValueError, match=r"^dataset Vectors has no encoder_kwargs: the dataset "
                       r"class must define encoder_kwargs, a dict of what the encoder needs "
                       r"\(e.g. \{'in_channels': 1\}"):
        MODALITY.encoder(None, Vectors("train", bare=True))
    ds = Vectors("train")
    ds.encoder_kwargs = [6]  # type: ignore[assignment]
    with pytest.raises(ValueError, match="has encoder_kwargs of type list"):
        MODALITY.encoder(None, ds)
    from anyssl.cli.app import app

    res = CliRunner().invoke(app, ["train", "--modality", SCOPE, "--method", "simclr",
                                   "-d", "bare=true", "--max-steps", "1"])
    assert res.exit_code == 2 and "has no encoder_kwargs" in res.output
    assert "Traceback" not in res.output


def test_modality_source_names_the_registering_module_and_package() -> None:
    assert modality_source(SCOPE) == {"module": __name__, "package": None, "version": None}
    assert modality_source("no-such-modality") is None
    import anyssl.modalities.timeseries  # noqa: F401

    src = modality_source("timeseries")
    assert src is not None and src["package"] == "anyssl" and src["module"] == (
        "anyssl.modalities.timeseries")


def test_a_checkpoint_of_a_missing_plugin_names_the_package_to_install() -> None:
    state = {"modality": "audio-x", "config": {"plugins": []},
             "modality_source": {"module": "anyssl_audio_x", "package": "anyssl-audio-x",
                                 "version": "0.2"}}
    with pytest.raises(ValueError, match=r"^this checkpoint's modality 'audio-x' comes from "
                       r"package anyssl-audio-x 0\.2 \(not installed\): pip install "
                       r"anyssl-audio-x \(checkpoint ck\.pt\)$"):
        require_modality(state, "ck.pt")
    # a package that is installed, or none recorded: the registry's own error
    with pytest.raises(ValueError, match="unknown modality 'audio-x'"):
        require_modality({**state, "modality_source": {"package": "anyssl"}}, "ck.pt")
    with pytest.raises(ValueError, match="unknown modality 'audio-x'"):
        require_modality({"modality": "audio-x"}, "ck.pt")
    assert missing_plugin_message("a", {"package": "pytest"}) is None  # installed
    require_modality({**state, "modality": SCOPE}, "ck.pt")  # registered: nothing to say
