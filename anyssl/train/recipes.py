"""Training recipes: YAML files of ``TrainConfig`` keys that reproduce a published setting
(``anyssl train --config recipe:image/mocov2-small``; ``anyssl list recipes``).

A recipe file holds config keys plus two of its own: ``source`` (the paper table, reference
command or config file its values come from) and ``description`` (one line). Recipes are named
``MODALITY/NAME``: the built-in ones are ``anyssl/recipes/<modality>/<name>.yaml`` (package
data); a plugin adds its folder with ``register_recipe_dir(path, "mymodality")`` when it is
imported. Not to be confused with *view* recipes (``--views recipe:NAME``), the augmentations
a modality gives each method.

Flags and keyword overrides win over a recipe's values; the run's config.yaml records the
resolved result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anyssl.registry import Registry, UnknownNameError
from anyssl.train.config import TrainConfig
from anyssl.train.safe_yaml import ConfigError, load_yaml_text, read_config_text

__all__ = ["BUILTIN_RECIPES", "PREFIX", "RECIPES", "RECIPE_KEYS", "Recipe", "load_config",
           "recipe_names", "register_recipe_dir", "resolve_recipe"]

#: ``--config`` values starting with this name a recipe, not a file.
PREFIX = "recipe:"
#: The keys of a recipe file that are not config keys.
RECIPE_KEYS = ("source", "description")
#: The built-in recipe folders: one sub-folder per modality.
BUILTIN_RECIPES = Path(__file__).resolve().parent.parent / "recipes"


@dataclass(frozen=True)
class Recipe:
    """One recipe: its ``modality/name``, where its values come from, and its config keys."""

    name: str  # "image/mocov2-small"
    source: str
    description: str
    config: dict[str, Any]
    path: Path


def read_recipe(path: Path, name: str) -> Recipe:
    """Parse a recipe file (safe YAML, plain values): a mapping with a non-empty ``source`` and
    ``description``; its other keys are config keys (checked when it is used)."""
    data = load_yaml_text(read_config_text(path), f"recipe {name} ({path})")
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {name} ({path}) must map keys to values")
    meta = {k: data.pop(k, None) for k in RECIPE_KEYS}
    for key, value in meta.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"recipe {name} ({path}) needs a one-line {key!r} text")
    return Recipe(name, " ".join(meta["source"].split()), " ".join(meta["description"].split()),
                  data, path)


#: Recipes by name, scoped by modality: ``RECIPES.get("mocov2-small", "image")()`` reads
#: ``image/mocov2-small``. Register through ``register_recipe_dir``.
RECIPES: Registry[Recipe] = Registry("recipe")
_builtin_loaded = False


def register_recipe_dir(folder: str | Path, modality: str, *, override: bool = False) -> list[str]:
    """Register every ``*.yaml`` in ``folder`` as the recipe ``modality/<file stem>`` (read
    when used); return the names. A name registered twice needs ``override=True``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"recipe folder {folder} does not exist")
    names = []
    for path in sorted(folder.glob("*.yaml")):
        full = f"{modality}/{path.stem}"

        def load(path: Path = path, full: str = full) -> Recipe:
            return read_recipe(path, full)

        RECIPES.add(path.stem, load, scope=modality, description=full, override=override)
        names.append(full)
    return names


def _load_builtin() -> None:
    global _builtin_loaded
    if not _builtin_loaded:
        _builtin_loaded = True
        for folder in sorted(p for p in BUILTIN_RECIPES.iterdir() if p.is_dir()):
            register_recipe_dir(folder, folder.name)


def recipe_names() -> list[str]:
    """Every recipe's ``modality/name``, sorted (plugins' too)."""
    _load_builtin()
    return sorted(f"{e.scope}/{e.name}" for e in RECIPES.entries(all_scopes=True))


def resolve_recipe(spec: str) -> Recipe:
    """The recipe named ``modality/name`` (``recipe:`` prefix optional), or a one-line
    ``ValueError`` listing the valid names."""
    name = spec[len(PREFIX):] if spec.startswith(PREFIX) else spec
    modality, slash, short = name.strip().partition("/")
    valid = ", ".join(recipe_names())
    if not slash or not modality or not short:
        raise ValueError(f"recipe {name!r} needs the form MODALITY/NAME, e.g. "
                         f"recipe:image/mocov2-small; valid: {valid}")
    try:
        entry = RECIPES.entry(short, modality)
    except UnknownNameError:
        raise ValueError(f"unknown recipe {name!r}; valid: {valid}") from None
    if entry.scope != modality:
        raise ValueError(f"unknown recipe {name!r}; valid: {valid}")
    return entry.factory()


def recipe_config(recipe: Recipe) -> TrainConfig:
    """The recipe's config; an unknown or mistyped key is a ``ConfigError`` naming the recipe,
    as is a ``modality`` other than the recipe's folder."""
    try:
        config = TrainConfig.from_dict(recipe.config)
    except ConfigError as err:
        raise ConfigError(f"recipe {recipe.name}: {err}") from None
    folder = recipe.name.split("/", 1)[0]
    if config.modality != folder:
        raise ConfigError(f"recipe {recipe.name} sets modality {config.modality!r}; a recipe "
                          f"in {folder}/ must set modality: {folder}")
    return config


def load_config(spec: str | Path) -> TrainConfig:
    """``--config``: ``recipe:MODALITY/NAME`` (a registered recipe) or a YAML file of config
    keys. A file may carry a recipe's ``source`` and ``description`` (a copied recipe)."""
    text = str(spec)
    if text.startswith(PREFIX):
        return recipe_config(resolve_recipe(text))
    path = Path(spec)
    data = load_yaml_text(read_config_text(path), f"config file {path}")
    if isinstance(data, dict) and any(k in data for k in RECIPE_KEYS):
        data = {k: v for k, v in data.items() if k not in RECIPE_KEYS}
        try:
            return TrainConfig.from_dict(data)
        except ConfigError as err:
            raise ConfigError(f"config file {path}: {err}") from None
    return TrainConfig.from_yaml(path)


def recipe_lines(modality: str | None = None) -> list[str]:
    """``anyssl list recipes``: ``name  description`` and an indented ``source:`` line each
    (only ``modality``'s recipes when given)."""
    names = [n for n in recipe_names() if modality is None or n.split("/")[0] == modality]
    width = max((len(n) for n in names), default=0)
    lines = []
    for name in names:
        recipe = resolve_recipe(name)
        lines += [f"  {name:<{width}}  {recipe.description}",
                  f"  {'':<{width}}  source: {recipe.source}"]
    return lines
