"""A modality's training defaults per method (``Modality.method_defaults``): checked when the
modality is built, applied under the user's flags and config where a run is configured
(``anyssl.api.train``), named in a note and recorded, with the rest of the config, in the run's
``config.yaml``. A plugin sets them instead of registering a method subclass::

    Modality(..., method_defaults={"simclr": {"epochs": 50, "batch_size": 64, "lr": 0.1}})
"""

from __future__ import annotations

from typing import Any

from anyssl.modality import get_modality
from anyssl.train.config import TrainConfig

__all__ = ["NOT_DEFAULTS", "check_method_defaults", "with_method_defaults"]

#: Config keys a modality's ``method_defaults`` may not set: they name the run itself.
NOT_DEFAULTS = ("modality", "method", "out", "resume", "overwrite", "plugins", "views_used")


def check_method_defaults(modality: str, method: str, values: Any) -> None:
    """Refuse ``method_defaults`` entries that are not config values a run may default."""
    where = f"modality {modality!r} method_defaults[{method!r}]"
    if not isinstance(values, dict):
        raise ValueError(f"{where} must be a dict of config keys, got {type(values).__name__}")
    valid = [k for k, v in TrainConfig().to_dict().items()
             if k not in NOT_DEFAULTS and (v is None or isinstance(v, dict))]
    bad = [k for k in values if k not in valid]
    if bad:
        raise ValueError(f"{where}: {bad[0]!r} cannot be a modality default; valid: "
                         f"{', '.join(valid)}")
    try:
        TrainConfig.from_dict(dict(values))
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def with_method_defaults(config: TrainConfig) -> tuple[TrainConfig, list[str]]:
    """``config`` with its modality's ``method_defaults`` for its method where it leaves a
    value unset (dicts: the modality's keys under the config's), and the note to print."""
    mod = get_modality(config.modality)
    taken: dict[str, Any] = {}
    for key, value in mod.method_defaults.get(config.method, {}).items():
        mine = getattr(config, key)
        if isinstance(value, dict) and {**value, **mine} != mine:
            taken[key] = {**value, **mine}
        elif not isinstance(value, dict) and mine is None:
            taken[key] = value
    if not taken:
        return config, []
    said = ", ".join(f"{k}={v}" for k, v in taken.items())
    return config.merged(taken), [f"{config.method}: {said} (the {mod.name} modality's "
                                  "defaults; a flag or config key overrides each)"]
