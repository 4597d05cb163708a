"""A run records the views it used (``views_used`` in config.yaml, the resolved recipe); a
``--resume`` after the modality's recipe changed warns, naming the difference, and trains with
the recorded views, so the run stays the run it was."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from anyssl.api import train
from anyssl.modality import Modality, register_modality
from anyssl.registry import AUGMENTATIONS, DATASETS, ENCODERS
from anyssl.train.safe_yaml import load_yaml_text
from anyssl.train.views_record import describe_views, keep_recorded_views, rebuild_views, to_spec
from anyssl.views import Compose, OneOf, RandomApply, ViewGenerator, parse_spec

SCOPE = "vectors-views"
RECIPE = {"spec": "times(f=2.0)"}  # what the modality's recipe gives; a test changes it


class Times:
    """Multiply the batch by ``f``."""

    def __init__(self, f: float = 2.0) -> None:
        self.f = float(f)

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return x * self.f

    def __repr__(self) -> str:
        return f"times(f={self.f})"


class Vectors(torch.utils.data.Dataset):
    """32 labelled 4-d vectors per split."""

    def __init__(self, split: str, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(0 if split == "train" else 1)
        self.x, self.y = torch.randn(32, 4, generator=g), torch.arange(32) % 2
        self.encoder_kwargs, self.num_classes = {"in_dim": 4}, 2

    def __len__(self) -> int:
        return 32

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self.x[i], int(self.y[i])


class Linear(nn.Module):
    """One linear layer, ``in_dim`` -> 8."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.out_dim, self.fc = 8, nn.Linear(in_dim, 8)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x)


AUGMENTATIONS.add("times", Times, scope=SCOPE, override=True)
DATASETS.add("vectors", Vectors, scope=SCOPE, override=True)
ENCODERS.add("linear", Linear, scope=SCOPE, override=True)
register_modality(Modality(
    name=SCOPE, description="test", default_dataset="vectors", default_encoder="linear",
    recipe=lambda method, ds: [RECIPE["spec"], "identity"]), override=True)


def test_specs_of_pipelines_rebuild_them() -> None:
    pipe = parse_spec("times(f=3.0,p=0.5), identity | times(f=0.5)", SCOPE)
    assert isinstance(pipe, Compose) and isinstance(pipe.augmentations[0], RandomApply)
    assert isinstance(pipe.augmentations[1], OneOf)
    spec = to_spec(pipe)
    assert spec == "times(f=3.0,p=0.5), identity | times(f=0.5)"
    gen = ViewGenerator([pipe, Times(1.5)], n_global=1)
    rec = describe_views(gen)
    assert rec == {"views": [spec, "times(f=1.5)"], "n_global": 1}
    again = rebuild_views(rec, SCOPE)
    assert again is not None and describe_views(again) == rec
    assert rebuild_views({"views": ["OverlapCrops(min_length=2)"]}, SCOPE) is None
    assert rebuild_views({"views": ["nope(x=1)", "identity"], "n_global": 2}, SCOPE) is None
    assert describe_views(object()) is None  # a memory address in its description: not kept


def test_resume_after_a_recipe_change_trains_with_the_recorded_views(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = str(tmp_path / "run")
    run: dict[str, Any] = dict(modality=SCOPE, method="simclr", batch_size=8, device="cpu",
                               eval=False, out=out, method_args={"hidden_dim": 8})
    RECIPE["spec"] = "times(f=2.0)"
    train(run, epochs=1)
    recorded = load_yaml_text((tmp_path / "run" / "config.yaml").read_text(), "c")["views_used"]
    assert recorded == {"views": ["times(f=2.0)", "identity"], "n_global": 2}
    RECIPE["spec"] = "times(f=3.0)"  # a new version of the plugin changes its recipe
    seen: list[str] = []

    class Spy:
        def on_fit_start(self, trainer: Any) -> None:
            seen.append(to_spec(trainer.method.views.pipelines[0]))

    with caplog.at_level(logging.WARNING):
        train(run, epochs=2, resume=True, callbacks=[Spy()])
    assert seen == ["times(f=2.0)"]
    assert "its views changed since the run started (view 1: recorded 'times(f=2.0)', now " \
           "'times(f=3.0)'); training with the recorded views" in caplog.text
    after = load_yaml_text((tmp_path / "run" / "config.yaml").read_text(), "c")
    assert after["views_used"] == recorded and after["epochs"] == 2
    RECIPE["spec"] = "times(f=2.0)"


def _written(folder: Path, **cfg: Any) -> None:
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))


def test_changed_flags_or_unrebuildable_views_keep_the_new_views(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from anyssl.train import TrainConfig

    method = SimpleNamespace(views=ViewGenerator([Times(3.0), Times(1.0)]))
    old = {"views": ["times(f=2.0)", "times(f=1.0)"], "n_global": 2}
    _written(tmp_path, aug=None, views=None, views_used=old)
    cfg = TrainConfig(modality=SCOPE, out=str(tmp_path), resume=True, aug="times(f=3.0)")
    got = keep_recorded_views(method, cfg, SCOPE)  # the user asked for other views: theirs
    assert got.views_used == describe_views(method.views) and caplog.text == ""
    _written(tmp_path, aug=None, views=None, views_used={"views": ["Odd<1>", "Odd<2>"],
                                                        "n_global": 2})
    with caplog.at_level(logging.WARNING):
        got = keep_recorded_views(method, TrainConfig(out=str(tmp_path), resume=True), SCOPE)
    assert "they cannot be rebuilt, so the run goes on with the new views" in caplog.text
    assert got.views_used == describe_views(method.views)
    assert to_spec(method.views.pipelines[0]) == "times(f=3.0)"
