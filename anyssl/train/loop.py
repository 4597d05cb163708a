"""The one trainer for every modality and method.

It knows only ``method.training_step(batch) -> (loss, logs)``, ``method.on_step_end(step,
max_steps)``, ``method.views.manual_seed(seed)`` and ``method.train_defaults``. Everything that
makes a step random is seeded from ``(seed, step)`` or ``(seed, epoch)`` and the global RNGs are
checkpointed, so an interrupted run resumed from ``last.pt`` ends bit-identical to a straight one.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, default_collate

from anyssl.modality import SSLDataset, move_to_device
from anyssl.train.checkpoint import (
    CHECKPOINT_FORMAT,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from anyssl.train.config import DEFAULT_BATCH_SIZE, TrainConfig, resolve_defaults
from anyssl.train.data import EpochSampler, make_loader, mix_seed, resolve_device, steps_per_epoch
from anyssl.train.metrics import MetricsLogger, to_float
from anyssl.train.optim import build_optimizer
from anyssl.train.schedule import build_scheduler

__all__ = ["CHECKPOINT_NAME", "NonFiniteLossError", "RunExistsError", "TrainResult", "Trainer"]

CHECKPOINT_NAME = "last.pt"
log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """The loss became nan or inf; the run stops and its last good checkpoint is kept."""


class RunExistsError(ValueError):
    """The run folder already holds a run and ``resume`` was not asked for."""


@dataclass
class TrainResult:
    """Where a finished ``fit`` left the run."""

    step: int  # optimizer steps done
    epoch: int  # full epochs done
    loss: float | None  # loss of the last step (None if no step ran in this call)
    checkpoint: Path  # the run's last.pt
    run_dir: Path


class Trainer:
    """Trains ``method`` on ``train_set`` as ``config`` says, writing into ``run_dir``:
    ``config.yaml`` (resolved), ``metrics.jsonl`` and ``last.pt`` (every epoch, every
    ``checkpoint_every`` steps and at the end).

    ``callbacks`` are objects with any of ``on_fit_start``, ``on_step_end``, ``on_epoch_end``,
    ``on_fit_end``, each called with the trainer (after the step's or epoch's checkpoint).
    """

    def __init__(
        self, method: nn.Module, train_set: SSLDataset | Dataset[Any], config: TrainConfig,
        run_dir: str | Path, *, collate: Callable[[list[Any]], Any] = default_collate,
        to_device: Callable[[Any, torch.device, bool], Any] = move_to_device,
        conv_encoder: bool = False, modality_name: str = "", callbacks: Sequence[Any] = (),
    ) -> None:
        defaults = dict(getattr(method, "train_defaults", None) or {})
        if config.batch_size is None:  # the method's batch (the API has already fit it to data)
            config = config.merged({"batch_size": defaults.get("batch_size", DEFAULT_BATCH_SIZE)})
        self.method, self.train_set, self.config = method, train_set, config
        self.run_dir = Path(run_dir)
        self.collate, self.to_device, self.conv_encoder = collate, to_device, conv_encoder
        self.modality_name = modality_name or config.modality
        self.callbacks = list(callbacks)
        self.device = resolve_device(config.device)
        self.steps_per_epoch = steps_per_epoch(cast(Any, train_set), int(config.batch_size or 0))
        self.hparams = resolve_defaults(config, defaults, self.steps_per_epoch)
        self.total_steps: int = self.hparams["total_steps"]
        self.checkpoint_path = self.run_dir / CHECKPOINT_NAME
        self.step = 0  # optimizer steps done = index of the next step
        self.epoch = 0  # epoch of the next step
        self.last_loss: float | None = None
        self._saved_step = -1
        self._last: tuple[Tensor, dict[str, Any], float] | None = None
        self._clock = (time.perf_counter(), 0)

    # ---- set-up -------------------------------------------------------------------------------
    @property
    def _method(self) -> Any:
        return self.method  # the Method protocol's attributes, untyped on nn.Module

    @property
    def encoder(self) -> nn.Module:
        return cast(nn.Module, self.method.encoder)

    def _check_run_dir(self) -> None:
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise RunExistsError(f"run folder {self.run_dir} is a file; choose another --out")
        if self.config.resume:
            if not self.checkpoint_path.is_file():
                raise ValueError(f"cannot resume: no checkpoint {self.checkpoint_path}; "
                                 "drop --resume to start a new run")
        elif self.run_dir.is_dir() and any(self.run_dir.iterdir()):
            raise RunExistsError(
                f"run folder {self.run_dir} already holds a run; pass --resume to continue it "
                "or choose another --out"
            )

    def _setup(self) -> None:
        h, cuda = self.hparams, self.device.type == "cuda"
        self.method.to(self.device)
        if self.conv_encoder and cuda:
            self.encoder.to(memory_format=torch.channels_last)
        if self.config.compile:
            self.encoder.compile()
        self.optimizer = build_optimizer(h["optimizer"], self.method, h["lr"], h["weight_decay"],
                                         h["momentum"])
        self.scheduler = build_scheduler(self.optimizer, h["schedule"], self.total_steps,
                                         h["warmup_steps"], h["milestones"])
        self._params = [p for g in self.optimizer.param_groups for p in g["params"]]

    def resolved_config(self) -> TrainConfig:
        """The config with the effective optimizer, lr, weight decay, schedule and warm-up."""
        h = self.hparams
        return dataclasses.replace(
            self.config, optimizer=h["optimizer"], lr=h["lr"], weight_decay=h["weight_decay"],
            schedule=h["schedule"], warmup_epochs=h["warmup_epochs"], out=str(self.run_dir),
        )

    def _write_config(self) -> None:
        tmp = self.run_dir / ".config.yaml.tmp"
        self.resolved_config().to_yaml(tmp)
        os.replace(tmp, self.run_dir / "config.yaml")

    # ---- checkpoints ----------------------------------------------------------------------------
    def _save(self) -> None:
        if self._saved_step == self.step:
            return
        state = {
            "format": CHECKPOINT_FORMAT, "config": self.resolved_config().to_dict(),
            "modality": self.modality_name, "method_name": self.config.method,
            "method": self.method.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "step": self.step,
            "epoch": self.step // self.steps_per_epoch, "rng": rng_state(),
            "encoder": self._encoder_info(),
        }
        data_state = getattr(self.train_set, "data_state", None)
        if callable(data_state):  # what rebuilding the data needs (image-text: the tokenizer)
            state["data_state"] = data_state()
        save_checkpoint(self.checkpoint_path, state)
        self._saved_step = self.step

    def _encoder_info(self) -> dict[str, Any]:
        enc = getattr(self.encoder, "_orig_mod", self.encoder)
        kwargs = getattr(self.train_set, "encoder_kwargs", None) or {}
        return {"name": self.config.encoder, "out_dim": int(getattr(enc, "out_dim", -1)),
                "class": f"{type(enc).__module__}.{type(enc).__qualname__}",
                "kwargs": {k: v for k, v in kwargs.items() if _plain(v)}}

    def _resume(self) -> None:
        state = load_checkpoint(self.checkpoint_path, map_location=self.device)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{self.checkpoint_path} has checkpoint format "
                             f"{state.get('format')!r}, this anyssl reads {CHECKPOINT_FORMAT}")
        mine = (self.modality_name, self.config.method)
        theirs = (state.get("modality"), state.get("method_name"))
        if theirs != mine:
            raise ValueError(
                f"checkpoint {self.checkpoint_path} is modality {theirs[0]!r} method "
                f"{theirs[1]!r}, but this run is modality {mine[0]!r} method {mine[1]!r}; "
                "use the same --modality/--method or another --out"
            )
        now = self.resolved_config().to_dict()
        changed = [k for k in _SAME_ON_RESUME if state["config"].get(k, now[k]) != now[k]]
        if changed:
            log.warning("resuming %s with changed %s: it will not match an uninterrupted run",
                        self.checkpoint_path, ", ".join(changed))
        self.method.load_state_dict(state["method"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = self._saved_step = int(state["step"])
        set_rng_state(state["rng"])

    def _preflight(self) -> None:
        """Make the views of a few samples before anything is written, so that a bad view spec
        (a crop longer than the data, say) fails without leaving a half-started run folder.
        The trainer reseeds the views and the RNGs afterwards, so the run is unchanged."""
        n = min(len(cast(Any, self.train_set)), int(self.config.batch_size or 0), 8)
        batch = self.collate([self.train_set[i] for i in range(n)])
        inputs, _ = self.to_device(batch, self.device, False)
        with torch.no_grad():
            self._method.views(inputs)

    # ---- training -------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train to ``total_steps`` (from ``last.pt`` with ``config.resume``)."""
        self._check_run_dir()
        self._setup()
        self._preflight()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.config.resume:
            self._resume()
        else:
            seed_everything(self.config.seed)
        self._write_config()
        cfg = self.config
        sampler = EpochSampler(len(cast(Any, self.train_set)), cfg.seed)
        loader = make_loader(cast(Dataset[Any], self.train_set), int(cfg.batch_size or 0), sampler,
                             self.collate, cfg.num_workers, self.device.type == "cuda", cfg.seed)
        with MetricsLogger(self.run_dir, self.config.tensorboard) as self.metrics:
            if self.config.resume:
                self.metrics.truncate(self.step)
            self._fire("on_fit_start")
            self.metrics.start_progress(self.total_steps, self.step)
            self._clock = (time.perf_counter(), self.step)
            while self.step < self.total_steps:
                self._run_epoch(loader, sampler)
            self._save()
        if self._last is not None:
            self.last_loss = to_float(self._last[0])
        self._fire("on_fit_end")
        return TrainResult(self.step, self.step // self.steps_per_epoch, self.last_loss,
                           self.checkpoint_path, self.run_dir)

    def _run_epoch(self, loader: DataLoader[Any], sampler: EpochSampler) -> None:
        self.epoch, offset = divmod(self.step, self.steps_per_epoch)
        sampler.set_epoch(self.epoch, start=offset * int(self.config.batch_size or 0))
        self.method.train()
        for batch in loader:
            self._train_step(batch)
            if self.step >= self.total_steps:
                break
        if self.step % self.steps_per_epoch == 0:
            self._save()
            self._fire("on_epoch_end")

    def _train_step(self, batch: Any) -> None:
        cfg, step, cuda = self.config, self.step, self.device.type == "cuda"
        self._method.views.manual_seed(mix_seed(cfg.seed, step))
        batch = self.to_device(batch, self.device, cuda)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cuda):
            loss, logs = self._method.training_step(batch)
        self._check_finite(loss, step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        logs = dict(logs)
        if cfg.grad_clip is not None:
            logs["grad_norm"] = nn.utils.clip_grad_norm_(self._params, cfg.grad_clip)
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.optimizer.step()
        self.scheduler.step()
        self._method.on_step_end(step, self.total_steps)
        self.step += 1
        self._last = (loss.detach(), logs, lr)
        self.metrics.advance(self.step)
        if step % cfg.log_every == 0 or self.step == self.total_steps:
            self._log(step)
        if cfg.checkpoint_every is not None and self.step % cfg.checkpoint_every == 0:
            self._save()
        self._fire("on_step_end")

    def _check_finite(self, loss: Tensor, step: int) -> None:
        if not bool(torch.isfinite(loss.detach()).all()):
            kind = "nan" if bool(torch.isnan(loss.detach()).any()) else "inf"
            kept = (f"the last good checkpoint {self.checkpoint_path} (step {self._saved_step}) "
                    "is kept" if self._saved_step >= 0 else "no checkpoint was written yet")
            raise NonFiniteLossError(
                f"loss became {kind} at step {step}; {kept}; lower --lr or set grad_clip, then "
                "--resume"
            )

    def _log(self, step: int) -> None:
        assert self._last is not None
        loss, logs, lr = self._last
        t0, s0 = self._clock
        now = time.perf_counter()
        sps = (self.step - s0) * int(self.config.batch_size or 0) / max(now - t0, 1e-9)
        self._clock = (now, self.step)
        record = self.metrics.log(step, self.epoch, loss, lr, sps, logs)
        self.last_loss = record["loss"]

    def _fire(self, event: str) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, event, None)
            if callable(fn):
                fn(self)


#: Config keys that must not change for a resumed run to match an uninterrupted one.
_SAME_ON_RESUME = ("batch_size", "seed", "lr", "optimizer", "weight_decay", "momentum",
                   "schedule", "warmup_epochs", "grad_clip", "aug", "views", "method_args",
                   "encoder_args", "epochs", "max_steps")


def _plain(v: Any) -> bool:
    """True for values a ``weights_only`` checkpoint can hold (numbers, strings, lists of them)."""
    if isinstance(v, (list, tuple)):
        return all(_plain(x) for x in v)
    return v is None or isinstance(v, (bool, int, float, str))
