"""One flat config for a training run, shared by the CLI, the Python API and YAML files.

Every field is commented where it is declared (nanoGPT style). ``None`` means "the default of the
modality or the method": the effective optimizer, learning rate, weight decay, schedule and
warm-up come from ``resolve_defaults`` and are written, resolved, to the run's ``config.yaml``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from anyssl.train.recipe import check_config, recipe_extras
from anyssl.train.safe_yaml import MAX_CONFIG_BYTES, ConfigError, load_yaml_text, read_config_text

__all__ = ["ConfigError", "DEFAULT_BATCH_SIZE", "FALLBACK_DEFAULTS", "LR_SCALINGS",
           "MAX_CONFIG_BYTES", "MAX_CONFIG_ITEMS", "OPTIMIZERS", "PRECISIONS", "RESOLVED_KEYS",
           "SCHEDULES", "TrainConfig", "load_yaml_text", "resolve_defaults", "scale_lr"]

OPTIMIZERS = ("sgd", "lars", "adamw", "adam")
SCHEDULES = ("cosine", "step", "constant")
#: How a base learning rate grows with the global batch B: ``linear`` (``lr * B / 256``, Goyal et
#: al. 2017), ``sqrt`` (``lr * sqrt(B)``, SimCLR App. B.1) or ``none`` (as given).
LR_SCALINGS = ("linear", "sqrt", "none")
#: Training precision: ``auto`` is bf16 autocast on a GPU that supports it, fp16 autocast with a
#: gradient scaler on an older GPU, fp32 on the CPU.
PRECISIONS = ("auto", "bf16", "fp16", "fp32")

#: Used for what a method's ``train_defaults`` leaves out: the MoCo v2 recipe (He et al. 2020,
#: Chen et al. 2020): SGD, lr 0.03 per 256 samples, weight decay 1e-4, cosine, no warm-up.
FALLBACK_DEFAULTS: dict[str, Any] = {
    "optimizer": "sgd", "lr": 0.03, "weight_decay": 1e-4, "schedule": "cosine",
    "warmup_epochs": 0.0, "milestones": (0.6, 0.8),
}

#: ``from_dict`` refuses a config of more values than this (all nesting levels together).
MAX_CONFIG_ITEMS = 100_000

#: The keys of ``resolve_defaults``'s result that are config fields: a trainer writes them,
#: resolved, to the run's config.yaml and checkpoint.
RESOLVED_KEYS = ("optimizer", "lr", "lr_scaling", "weight_decay", "schedule", "warmup_epochs",
                 "final_lr_ratio", "grad_clip", "grad_clip_mode")

#: A defaulted warm-up never takes more than this fraction of the run (short runs).
MAX_DEFAULT_WARMUP_FRACTION = 0.1


#: Batch size when neither the config nor the method's ``train_defaults`` gives one.
DEFAULT_BATCH_SIZE = 256

#: Training length when neither the config nor the dataset (``suggested_epochs``) gives one.
DEFAULT_EPOCHS = 100


@dataclass
class TrainConfig:
    """Everything a training run needs; ``None`` fields take the modality's or method's default."""

    modality: str = "image"  # registered modality name (anyssl list modalities)
    method: str = "mocov2"  # registered method name (anyssl list methods)
    data: str | None = None  # dataset name or path; None: the modality's default (offline) data
    data_args: dict[str, Any] = field(default_factory=dict)  # dataset kwargs (normalize, ...)
    encoder: str | None = None  # encoder name; None: the modality's default encoder
    encoder_args: dict[str, Any] = field(default_factory=dict)  # encoder kwargs (width, ...)
    init: str | None = None  # weights the encoder starts from (an export, torchvision, timm)
    epochs: int | None = None  # passes over the data; None: the dataset's suggestion, else 100
    max_steps: int | None = None  # optimizer steps; when set it overrides epochs
    batch_size: int | None = None  # per step and process (a step sees processes x batch_size);
    # None: the method's, fit to the data
    lr: float | None = None  # as used; None: the base lr scaled by the lr_scaling rule
    base_lr: float | None = None  # the lr at batch 256 (linear) that lr_scaling scales (recipes
    # give the paper's); None: the method's. An explicit lr wins
    lr_scaling: str | None = None  # "linear" | "sqrt" | "none" in the global batch; None: method's
    optimizer: str | None = None  # "sgd" | "lars" | "adamw" | "adam"; None: the method's
    weight_decay: float | None = None  # L2 / decoupled decay; None: the method's
    momentum: float = 0.9  # SGD/LARS momentum (AdamW beta1)
    schedule: str | None = None  # "cosine" | "step" | "constant" after warm-up; None: the method's
    warmup_epochs: float | None = None  # linear warm-up; None: the method's, at most 10% of the run
    grad_clip: float | None = None  # max grad norm; None: the method's, else no clipping
    grad_clip_mode: str | None = None  # "global" | "per_parameter" norm; None: the method's
    final_lr_ratio: float | None = None  # cosine ends at this x peak lr; None: the method's (0)
    aug: str | None = None  # one augmentation spec for every view; None: the modality's recipe
    views: int | str | list[str] | None = None  # view count, or one spec per view (list or ";")
    views_used: dict[str, Any] | None = None  # written by a run: the resolved views (one spec
    # per view, n_global); kept on --resume (anyssl.train.views_record)
    method_args: dict[str, Any] = field(default_factory=dict)  # method constructor kwargs
    out: str | None = None  # run folder; None: runs/<modality>-<method>
    resume: bool = False  # continue the run in `out` from its last.pt
    overwrite: bool = False  # move a run already in `out` aside (<out>.replaced-<time>), restart
    skip_nonfinite: bool = False  # skip (and count) steps with a nan/inf loss or gradient
    sync_bn: bool = False  # SyncBatchNorm over all processes (several processes)
    device: str = "auto"  # "auto" (CUDA if available), "cpu", "cuda", "cuda:N"
    seed: int = 0  # seeds weights, data order and views; same seed + config = same run
    plugins: list[str] = field(default_factory=list)  # modules to import first (register parts)
    compile: bool = False  # torch.compile the encoder
    precision: str = "auto"  # "auto" | "bf16" | "fp16" | "fp32" (autocast dtype; fp16 scales grads)
    num_workers: int | None = None  # DataLoader workers; None: several for files, 0 in memory
    monitor_every: int | None = None  # kNN on the labelled split every N epochs (metrics, progress)
    checkpoint_every: int | None = None  # also checkpoint every N steps (into last.pt)
    log_every: int = 10  # steps between metrics.jsonl lines
    tensorboard: bool = False  # also write TensorBoard scalars (same as logger: tensorboard)
    logger: str = "none"  # also log to: none | tensorboard | wandb | mlflow (comma-separated ok)
    eval: bool = True  # run the evaluation protocols after training
    eval_protocols: list[str] | None = None  # which ones; None: the modality's

    def __post_init__(self) -> None:
        if self.out is None:
            self.out = default_out(self.modality, self.method)
        for key in ("epochs", "batch_size", "log_every", "max_steps", "checkpoint_every",
                    "monitor_every"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"config key {key!r} must be at least 1, got {value}")
        if self.base_lr is not None and not self.base_lr > 0:
            raise ConfigError(f"base_lr must be > 0 (None: the method's), got {self.base_lr}")
        if self.num_workers is not None and self.num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0, got {self.num_workers}")
        _choice("precision", self.precision, PRECISIONS)
        if self.lr_scaling is not None:
            _choice("lr_scaling", self.lr_scaling, LR_SCALINGS)
        check_config(self)  # grad_clip, grad_clip_mode, final_lr_ratio

    # ---- dict / YAML ----------------------------------------------------------------------------
    @classmethod
    def keys(cls) -> list[str]:
        """The valid config keys, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build a config, raising ``ConfigError`` on an unknown key or a wrongly typed value."""
        if not isinstance(d, dict):
            raise ConfigError(f"a config must map keys to values, not a {type(d).__name__}")
        hints = typing.get_type_hints(cls)
        for key, value in d.items():
            if key not in hints:
                raise ConfigError(_unknown_key_message(str(key), cls.keys()))
            _check_type(key, value, hints[key])
        budget = [MAX_CONFIG_ITEMS]
        try:
            values = {k: _copy(v, budget) for k, v in d.items()}
        except RecursionError:
            raise ConfigError("a config value is nested too deeply; keep configs flat") from None
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (lists and dicts copied) that ``from_dict`` reads back."""
        return {f.name: _copy(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        """Read a YAML file of config keys (an empty file is the default config) with
        ``load_yaml_text``: plain values only, no aliases, at most ``MAX_CONFIG_BYTES``."""
        path = Path(path)
        data = load_yaml_text(read_config_text(path), f"config file {path}")
        try:
            return cls.from_dict(data if data is not None else {})
        except ConfigError as err:
            raise ConfigError(f"config file {path}: {err}") from None

    def to_yaml(self, path: str | Path) -> None:
        """Write the config as YAML (keys in declaration order)."""
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    def merged(self, overrides: dict[str, Any]) -> TrainConfig:
        """A copy with ``overrides`` applied; ``None`` values do not override. ``out`` follows a
        changed modality or method unless it was set to something other than its default."""
        d = self.to_dict()
        auto_out = d["out"] == default_out(self.modality, self.method)
        d.update({k: v for k, v in overrides.items() if v is not None})
        if auto_out and overrides.get("out") is None:
            d["out"] = None
        return type(self).from_dict(d)


def default_out(modality: str, method: str) -> str:
    """The default run folder of a modality and method."""
    return f"runs/{modality}-{method}"


# ---- validation ----------------------------------------------------------------------------------
def _unknown_key_message(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown config key {key!r}{hint}; valid keys: {', '.join(valid)}"


def _matches(value: Any, tp: Any) -> bool:
    """Cheap structural check of ``value`` against a type hint (no bool for numbers)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(tp))
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is list:
        (item,) = typing.get_args(tp)
        return isinstance(value, (list, tuple)) and all(_matches(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    return isinstance(value, tp)


def _type_name(tp: Any) -> str:
    """``int | None``, ``bool``, ``dict[str, Any]``: the hint as a user would write it."""
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "").replace("NoneType", "None")


def _check_type(key: str, value: Any, tp: Any) -> None:
    if not _matches(value, tp):
        raise ConfigError(f"config key {key!r} must be {_type_name(tp)}, got {_short(value)} "
                          f"({type(value).__name__})")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key {key!r} must be a finite number, got {value}")


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` on one line, cut to ``limit`` characters."""
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _copy(v: Any, budget: list[int] | None = None) -> Any:
    """A deep copy of nested lists and dicts. ``budget`` (``[n]``) caps the values visited, so
    a value whose lists share references (an "alias bomb" from a pickle) cannot expand."""
    if budget is not None:
        budget[0] -= 1
        if budget[0] < 0:
            raise ConfigError(f"a config holds over {MAX_CONFIG_ITEMS} values (nested lists or "
                              "dicts); a config is a few keys: is it from an untrusted file?")
    if isinstance(v, (list, tuple)):
        return [_copy(x, budget) for x in v]
    if isinstance(v, dict):
        return {k: _copy(x, budget) for k, x in v.items()}
    return v


# ---- effective hyper-parameters ------------------------------------------------------------------
def _choice(name: str, value: str, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise ConfigError(f"unknown {name} {value!r}; choose one of: {', '.join(valid)}")
    return value


def scale_lr(base_lr: float, batch: int, rule: str) -> float:
    """``base_lr`` scaled to a global batch of ``batch`` by ``rule`` (``LR_SCALINGS``):
    ``linear`` gives ``base_lr * batch / 256``, ``sqrt`` gives ``base_lr * sqrt(batch)``,
    ``none`` gives ``base_lr``."""
    rule = _choice("lr_scaling", rule, LR_SCALINGS)
    if rule == "linear":
        return base_lr * batch / 256
    return base_lr * math.sqrt(batch) if rule == "sqrt" else base_lr


def default_lr_scaling(optimizer: str) -> str:
    """The scaling rule of a method that states none: ``linear`` for SGD and LARS (Goyal et al.
    2017), ``none`` for Adam and AdamW (whose papers give a fixed lr)."""
    return "none" if optimizer in ("adam", "adamw") else "linear"


def resolve_defaults(config: TrainConfig, method_defaults: dict[str, Any] | None = None,
                     steps_per_epoch: int | None = None) -> dict[str, Any]:
    """The effective optimizer, lr, weight decay, momentum, schedule and warm-up of a run.

    ``method_defaults`` is a method's ``train_defaults`` (keys ``optimizer``, ``lr`` = the base lr
    its ``lr_scaling`` rule scales, ``weight_decay``, ``schedule``, ``warmup_epochs``,
    ``milestones``; the optional ones of ``anyssl.train.recipe``); missing keys fall back to
    ``FALLBACK_DEFAULTS``, a missing ``lr_scaling`` to ``default_lr_scaling`` of the optimizer.
    A config value wins; ``lr=None`` scales the base lr to ``config.batch_size`` (the global
    batch) with ``scale_lr``. A *defaulted* warm-up is capped at 10% of the run so short runs
    still spend most steps at full lr; an explicit ``warmup_epochs`` is kept. With
    ``steps_per_epoch`` the result also has ``total_steps`` and ``warmup_steps``.
    """
    defaults = {**FALLBACK_DEFAULTS, **(method_defaults or {})}
    opt = _choice("optimizer", config.optimizer or defaults["optimizer"], OPTIMIZERS)
    sched = _choice("schedule", config.schedule or defaults["schedule"], SCHEDULES)
    base_lr = float(defaults["lr"])
    batch = config.batch_size or DEFAULT_BATCH_SIZE
    rule = config.lr_scaling or defaults.get("lr_scaling") or default_lr_scaling(
        config.optimizer or defaults["optimizer"])
    given = base_lr if config.base_lr is None else float(config.base_lr)
    lr = config.lr if config.lr is not None else scale_lr(given, batch, rule)
    wd = config.weight_decay if config.weight_decay is not None else defaults["weight_decay"]
    out: dict[str, Any] = {
        "optimizer": opt, "lr": float(lr), "base_lr": given, "lr_scaling": rule,
        "weight_decay": float(wd), "momentum": config.momentum, "schedule": sched,
        "milestones": [float(m) for m in defaults["milestones"]],
        **recipe_extras(config, defaults, base_lr),
    }
    epochs = config.epochs or DEFAULT_EPOCHS
    if steps_per_epoch is None:
        total_epochs = float(epochs) if config.max_steps is None else None
    else:
        total_steps = config.max_steps or epochs * steps_per_epoch
        total_epochs = total_steps / steps_per_epoch
        out["total_steps"] = total_steps
    warmup = config.warmup_epochs
    if warmup is None:
        warmup = float(defaults["warmup_epochs"])
        if total_epochs is not None:
            warmup = min(warmup, MAX_DEFAULT_WARMUP_FRACTION * total_epochs)
    if warmup < 0:
        raise ConfigError(f"warmup_epochs must be >= 0, got {warmup}")
    out["warmup_epochs"] = float(warmup)
    if steps_per_epoch is not None:
        out["warmup_steps"] = min(round(warmup * steps_per_epoch), out["total_steps"])
    return out
