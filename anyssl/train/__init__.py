"""anyssl.train: the one trainer for every modality and method, with its config, optimizers,
schedules, checkpoints and metrics."""

from anyssl.train.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from anyssl.train.config import ConfigError, TrainConfig, resolve_defaults
from anyssl.train.data import EpochSampler, mix_seed, resolve_device
from anyssl.train.loop import (
    CHECKPOINT_NAME,
    NonFiniteGradientError,
    NonFiniteLossError,
    RunExistsError,
    Trainer,
    TrainResult,
)
from anyssl.train.metrics import MetricsLogger
from anyssl.train.optim import LARS, build_optimizer, param_groups
from anyssl.train.schedule import build_scheduler, constant, step_decay, warmup_cosine

__all__ = [
    "CHECKPOINT_FORMAT", "CHECKPOINT_NAME", "CheckpointError", "ConfigError", "EpochSampler",
    "LARS", "MetricsLogger", "NonFiniteGradientError", "NonFiniteLossError", "RunExistsError",
    "TrainConfig", "TrainResult", "Trainer", "build_optimizer", "build_scheduler", "constant",
    "load_checkpoint", "mix_seed", "param_groups", "resolve_defaults", "resolve_device",
    "rng_state", "save_checkpoint", "seed_everything", "set_rng_state", "step_decay",
    "warmup_cosine",
]
