"""Training recipes (``--config recipe:MODALITY/NAME``): every shipped recipe is valid for its
method, names resolve or fail with the valid list, plugins add folders, runs record values."""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from cli_helpers import run_cli

from anyssl.build import build_parts
from anyssl.registry import ENCODERS, METHODS
from anyssl.train.config import ConfigError, TrainConfig, resolve_defaults
from anyssl.train.recipes import (
    BUILTIN_RECIPES,
    RECIPES,
    load_config,
    recipe_config,
    recipe_lines,
    recipe_names,
    register_recipe_dir,
    resolve_recipe,
)

SHIPPED = recipe_names()
#: method arguments that only size things: shrunk so that building every recipe stays fast
#: (the key still has to be a valid argument of the method)
SIZES = {"hidden_dim": 32, "out_dim": 32, "pred_hidden_dim": 32, "queue_size": 64,
         "num_prototypes": 16, "embed_dim": 32}
#: a tiny encoder per modality, for the build test (the recipe's own is checked by name)
TINY_ENCODER = {"image": ("smallcnn", {}), "image-text": ("dual", {"image": "smallcnn"})}


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Recipes registered by a test disappear after it."""
    resolve_recipe(SHIPPED[0])  # the built-in ones are registered first
    monkeypatch.setattr(RECIPES, "_entries", dict(RECIPES._entries))


def _write_recipe(folder: Path, name: str, **config: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = {"source": "a test", "description": "a test recipe", **config}
    path = folder / f"{name}.yaml"
    path.write_text("# a comment, as real recipes have\n" + yaml.safe_dump(body))
    return path


def test_ships_recipes_for_every_image_method_scale_and_other_modalities() -> None:
    assert {"image/mocov2-small", "image/mocov2-imagenet", "image/simclr-small",
            "image/simclr-imagenet", "timeseries/ts2vec-ucr", "graph/graphcl-tu",
            "graph/grace-cora", "image-text/clip-rn50"} <= set(SHIPPED)
    image_methods = {n.split("/")[1].rsplit("-", 1)[0] for n in SHIPPED if n.startswith("image/")}
    generic = {e.name for e in METHODS.entries() if e.name != "clip"}
    assert image_methods == generic  # an ImageNet recipe at least for every image method
    assert all(n.startswith(("image/", "timeseries/", "graph/", "image-text/")) for n in SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipe_is_valid_for_its_method(name: str) -> None:
    recipe = resolve_recipe(f"recipe:{name}")
    assert recipe.source and recipe.description and "\n" not in recipe.description
    text = recipe.path.read_text()
    assert text.startswith("#")  # the source is also told in a comment
    config = recipe_config(recipe)  # every key a TrainConfig key, well typed
    modality = name.split("/")[0]
    factory = METHODS.get(config.method, modality)
    # every method argument is one the method takes
    params = inspect.signature(factory).parameters
    assert set(config.method_args) <= set(params), set(config.method_args) - set(params)
    # the encoder is registered for the modality and takes every encoder argument
    assert config.encoder is not None
    enc_params = inspect.signature(ENCODERS.get(config.encoder, modality)).parameters
    assert set(config.encoder_args) <= set(enc_params)
    # the recipe's optimizer, schedule and learning rate resolve
    defaults = getattr(factory, "train_defaults", {})
    h = resolve_defaults(config.merged({"batch_size": 256}), defaults, 100)
    assert h["base_lr"] == config.base_lr and h["optimizer"] == config.optimizer


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipe_builds_its_method_on_tiny_data(name: str) -> None:
    config = recipe_config(resolve_recipe(name))
    modality = config.modality
    encoder, encoder_args = TINY_ENCODER.get(modality, (config.encoder, config.encoder_args))
    args = {k: SIZES.get(k, v) for k, v in config.method_args.items()}
    # an argument the method does not take fails here ("method 'x' has no argument ...")
    parts = build_parts(modality, config.method, encoder=encoder, encoder_args=encoder_args,
                        method_args=args, batch_size=4, need_test=False)
    assert isinstance(parts.method, METHODS.get(config.method, modality))  # type: ignore[arg-type]


def test_recipe_name_needs_a_slash_and_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"MODALITY/NAME.*valid: .*image/mocov2-small"):
        resolve_recipe("recipe:mocov2-small")
    with pytest.raises(ValueError, match=r"unknown recipe 'image/nope'; valid: .*graph/grace"):
        resolve_recipe("recipe:image/nope")
    with pytest.raises(ValueError, match="unknown recipe 'graph/mocov2-small'"):
        resolve_recipe("recipe:graph/mocov2-small")  # names are per modality


def test_cli_bad_recipe_is_a_one_line_error(tmp_path: Path) -> None:
    code, text = run_cli("train", "--config", "recipe:mocov2-small", "--out", str(tmp_path / "r"))
    assert code == 2 and text.startswith("error: recipe 'mocov2-small' needs the form")
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_unknown_key_in_a_recipe_fails(tmp_path: Path, scratch_registry: None) -> None:
    _write_recipe(tmp_path / "image", "bad-key", modality="image", method="simclr", lrr=0.1)
    register_recipe_dir(tmp_path / "image", "image")
    with pytest.raises(ConfigError, match=r"recipe image/bad-key: unknown config key 'lrr' "
                                          r"\(did you mean 'lr'\?\)"):
        load_config("recipe:image/bad-key")


def test_recipe_must_match_its_modality_and_tell_its_source(tmp_path: Path,
                                                           scratch_registry: None) -> None:
    _write_recipe(tmp_path / "image", "wrong", modality="graph", method="grace")
    (tmp_path / "image" / "unsourced.yaml").write_text("description: x\nmethod: simclr\n")
    register_recipe_dir(tmp_path / "image", "image")
    with pytest.raises(ConfigError, match="must set modality: image"):
        load_config("recipe:image/wrong")
    with pytest.raises(ConfigError, match="needs a one-line 'source'"):
        load_config("recipe:image/unsourced")


def test_builtin_recipes_ship_as_package_data() -> None:
    assert BUILTIN_RECIPES.name == "recipes" and BUILTIN_RECIPES.parent.name == "anyssl"
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"recipes/*/*.yaml"' in pyproject
    shipped = {f"{p.parent.name}/{p.stem}" for p in BUILTIN_RECIPES.glob("*/*.yaml")}
    assert shipped == set(SHIPPED)


def test_plugin_recipe_folder_trains_listed_and_flags_win(tmp_path: Path,
                                                         scratch_registry: None) -> None:
    _write_recipe(tmp_path / "mine", "tiny-simclr", modality="image", method="simclr",
                  data="digits", encoder="smallcnn", batch_size=32, max_steps=1, epochs=1,
                  optimizer="sgd", base_lr=0.8, lr_scaling="linear", eval=False,
                  method_args={"temperature": 0.3})
    assert register_recipe_dir(tmp_path / "mine", "image") == ["image/tiny-simclr"]
    assert any(line.split()[0] == "image/tiny-simclr" for line in recipe_lines())
    out = tmp_path / "run"
    code, text = run_cli("train", "--config", "recipe:image/tiny-simclr", "--batch-size", "16",
                         "--out", str(out))
    assert code == 0, text
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["batch_size"] == 16 and saved["base_lr"] == 0.8  # the flag won, the rest kept
    assert saved["lr"] == pytest.approx(0.8 * 16 / 256)  # base lr scaled to the batch
    assert saved["method_args"]["temperature"] == 0.3 and saved["optimizer"] == "sgd"
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert first["lr"] == pytest.approx(0.8 * 16 / 256)


def test_mocov2_small_recipe_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, text = run_cli("train", "--config", "recipe:image/mocov2-small", "--data", "digits",
                         "--encoder", "smallcnn", "--batch-size", "16", "--max-steps", "1",
                         "--queue-size", "64", "--no-eval", "--out", str(out))
    assert code == 0, text
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["base_lr"] == 0.3 and saved["lr"] == pytest.approx(0.3 * 16 / 256)
    assert saved["optimizer"] == "sgd" and saved["weight_decay"] == pytest.approx(1e-4)
    assert saved["epochs"] == 1000 and saved["warmup_epochs"] == 10.0
    assert saved["method_args"] == {"head": "mlp", "hidden_dim": 2048, "out_dim": 256,
                                    "queue_size": 64, "temperature": 0.2, "momentum": 0.99,
                                    "symmetric": True, "shuffle_bn": False}


def test_list_recipes_prints_name_description_and_source() -> None:
    code, text = run_cli("list", "recipes")
    assert code == 0, text
    lines = text.splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.split()[0] == "image/mocov2-imagenet")
    assert "MoCo v2" in lines[i] and "source: MoCo v2 paper" in lines[i + 1]
    code, text = run_cli("list", "recipes", "--modality", "graph")
    assert code == 0 and "graph/grace-cora" in text and "image/" not in text


def test_a_copied_recipe_file_is_a_config_file(tmp_path: Path) -> None:
    copy = tmp_path / "mine.yaml"
    copy.write_text(resolve_recipe("image/simsiam-small").path.read_text())
    config = load_config(copy)
    assert config == recipe_config(resolve_recipe("image/simsiam-small"))
    assert load_config(_write_recipe(tmp_path, "plain", method="byol")).method == "byol"


def test_base_lr_is_scaled_and_must_be_positive() -> None:
    h = resolve_defaults(TrainConfig(method="simclr", base_lr=0.5, lr_scaling="linear",
                                     batch_size=512), {"lr": 1.0})
    assert h["lr"] == pytest.approx(1.0) and h["base_lr"] == 0.5
    h = resolve_defaults(TrainConfig(base_lr=0.5, lr=0.01), {"lr": 1.0})
    assert h["lr"] == 0.01  # an explicit lr wins
    with pytest.raises(ConfigError, match="base_lr must be > 0"):
        TrainConfig(base_lr=0.0)
