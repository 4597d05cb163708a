"""The one trainer for every modality and method, on one process or on many.

It knows only ``method.training_step(batch) -> (loss, logs)``, ``method.on_step_end(step,
max_steps)``, ``method.views.manual_seed(seed)`` and ``method.train_defaults``, plus the optional
hooks of ``anyssl.train.step_hooks``. Everything that
makes a step random is seeded from ``(seed, step)`` or ``(seed, epoch)`` and the global RNGs are
checkpointed, so an interrupted run resumed from ``last.pt`` ends bit-identical to a straight one.

Started by torchrun (or ``anyssl train --devices N``), every process trains on its shard of each
step's global batch through ``DistributedDataParallel``; ``anyssl.train.ddp`` says what each
rank does. A single process runs exactly as it always did.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

from anyssl.distributed import all_gather_object, barrier
from anyssl.modality import SSLDataset, move_to_device
from anyssl.train import ddp, step_hooks
from anyssl.train.checkpoint import rng_state, save_checkpoint, seed_everything
from anyssl.train.config import DEFAULT_BATCH_SIZE, RESOLVED_KEYS, TrainConfig, resolve_defaults
from anyssl.train.data import (
    EpochSampler,
    make_loader,
    mix_seed,
    rank_seed,
    resolve_device,
    resolve_workers,
    steps_per_epoch,
)
from anyssl.train.loggers import build_loggers, check_loggers, logger_names
from anyssl.train.metrics import MetricsLogger, to_float
from anyssl.train.nonfinite import (
    NonFiniteGradientError,
    NonFiniteLossError,
    check_step,
    skip_update,
)
from anyssl.train.optim import build_optimizer
from anyssl.train.precision import autocast, grad_scaler, resolve_precision
from anyssl.train.progress import ProgressLines
from anyssl.train.run_folder import (
    RunExistsError,
    check_run_folder,
    open_run_folder,
    write_config,
)
from anyssl.train.run_state import checkpoint_state, restore
from anyssl.train.schedule import WeightDecaySchedule, build_scheduler

__all__ = ["CHECKPOINT_NAME", "NonFiniteGradientError", "NonFiniteLossError", "RunExistsError",
           "TrainResult", "Trainer"]

CHECKPOINT_NAME = "last.pt"
log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """Where a finished ``fit`` left the run."""

    step: int  # optimizer steps done
    epoch: int  # full epochs done
    loss: float | None  # loss of the last step (None if no step ran in this call)
    checkpoint: Path  # the run's last.pt
    run_dir: Path
    skipped_steps: int = 0  # steps skipped for a non-finite loss or gradient (skip_nonfinite)


class Trainer:
    """Trains ``method`` on ``train_set`` as ``config`` says, writing into ``run_dir``:
    ``config.yaml`` (resolved), ``metrics.jsonl`` and ``last.pt`` (every epoch, every
    ``checkpoint_every`` steps and at the end); with several processes, rank 0 writes them.

    ``callbacks`` are objects with any of ``on_fit_start``, ``on_step_end``, ``on_epoch_end``,
    ``on_fit_end``, each called with the trainer (after the step's or epoch's checkpoint), on
    every rank (``trainer.is_main`` is true on rank 0); a callback that raises must do so on
    every rank, or the others wait for it.
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
        self.callbacks = [*callbacks, ProgressLines()]  # plain lines off a terminal
        self.env = ddp.launch_env()
        self.world_size, self.rank = self.env.world_size, self.env.rank
        self.is_main = self.rank == 0
        self.seed = rank_seed(config.seed, self.rank)  # rank 0: config.seed
        self.device = ddp.process_device(resolve_device(config.device), self.env)
        self.precision = resolve_precision(config.precision, self.device)
        self.global_batch = int(config.batch_size or 0) * self.world_size
        self.steps_per_epoch = steps_per_epoch(cast(Any, train_set), int(config.batch_size or 0),
                                               self.world_size)
        lr_config = dataclasses.replace(config, batch_size=self.global_batch)  # lr: global batch
        self.hparams = resolve_defaults(lr_config, defaults, self.steps_per_epoch)
        self.total_steps: int = self.hparams["total_steps"]
        self.checkpoint_path = self.run_dir / CHECKPOINT_NAME
        self.step = 0  # optimizer steps done = index of the next step
        self.epoch = 0  # epoch of the next step
        self.skipped_steps = 0  # steps skipped for non-finite values (skip_nonfinite)
        self.last_loss: float | None = None
        self.metrics: Any = None  # a MetricsLogger on rank 0 while fit runs
        self._saved_step = -1
        self._last: tuple[float, dict[str, Any], float] | None = None
        self._clock = (time.perf_counter(), 0)
        self._forward: Callable[[Any], Any] = self._method.training_step  # DDP's, if several

    # ---- set-up -------------------------------------------------------------------------------
    @property
    def _method(self) -> Any:
        return self.method  # the Method protocol's attributes, untyped on nn.Module

    @property
    def encoder(self) -> nn.Module:
        return cast(nn.Module, self.method.encoder)

    def _check_run_dir(self) -> None:
        """Rank 0 judges the run folder; every rank raises its verdict."""
        err = None
        if self.is_main:
            try:
                check_run_folder(self.run_dir, self.checkpoint_path, resume=self.config.resume,
                                 overwrite=self.config.overwrite)
            except ValueError as e:
                err = e
        ddp.share_error(err, (RunExistsError,))

    def _setup(self) -> None:
        h, cuda = self.hparams, self.device.type == "cuda"
        if self.config.sync_bn:
            self.method, note = ddp.convert_sync_bn(self.method, self.device, self.world_size)
            if note and self.is_main:
                print(f"note: {note}")
        self.method.to(self.device)
        if self.conv_encoder and cuda:
            self.encoder.to(memory_format=torch.channels_last)
        if self.config.compile:
            self.encoder.compile()
        overrides = step_hooks.method_overrides(self.method)  # e.g. SimSiam's fixed-lr predictor
        self.optimizer = build_optimizer(h["optimizer"], self.method, h["lr"], h["weight_decay"],
                                         h["momentum"], overrides=overrides,
                                         bias_lr_factor=h["bias_lr_factor"])
        end = h["weight_decay_end"]
        self.wd_schedule = (None if end is None else
                            WeightDecaySchedule(self.optimizer, self.total_steps, end))
        self.scaler = grad_scaler(self.device, self.precision)  # fp16 only
        self.scheduler = build_scheduler(self.optimizer, h["schedule"], self.total_steps,
                                         h["warmup_steps"], h["milestones"], h["final_lr_ratio"])
        self._params = [p for g in self.optimizer.param_groups for p in g["params"]]

    def resolved_config(self) -> TrainConfig:
        """The config with the effective values of ``RESOLVED_KEYS`` (optimizer, lr, schedule,
        lr floor, gradient clipping...) and precision."""
        return dataclasses.replace(self.config, **{k: self.hparams[k] for k in RESOLVED_KEYS},
                                   precision=self.precision, out=str(self.run_dir))

    # ---- checkpoints ----------------------------------------------------------------------------
    def _save(self) -> None:
        """Rank 0 writes ``last.pt`` (with every rank's RNG state); all ranks wait for it."""
        if self._saved_step == self.step:
            return
        rngs = all_gather_object(rng_state()) if self.world_size > 1 else None
        if self.is_main:
            save_checkpoint(self.checkpoint_path, checkpoint_state(self, rngs))
        barrier()
        self._saved_step = self.step

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
        """Train to ``total_steps`` (from ``last.pt`` with ``config.resume``). Under torchrun it
        creates the process group first and destroys it at the end, also on an error."""
        with ddp.process_group(self.device, self.env):
            self._fit()
        if self._last is not None:
            self.last_loss = to_float(self._last[0])
        self._fire("on_fit_end")
        return TrainResult(self.step, self.step // self.steps_per_epoch, self.last_loss,
                           self.checkpoint_path, self.run_dir, self.skipped_steps)

    def _fit(self) -> None:
        check_loggers(logger_names(self.config))  # a missing wandb fails before any write
        self._check_run_dir()
        self._setup()
        self._preflight()
        if self.is_main:
            open_run_folder(self.run_dir, overwrite=self.config.overwrite)
        if self.config.resume and self.checkpoint_path.is_file():
            self.step = self._saved_step = restore(self, self.checkpoint_path)
            barrier()  # nobody writes last.pt before every rank has read it
        else:
            seed_everything(self.seed)
        self._forward = self._method.training_step
        if self.world_size > 1:
            self._forward = ddp.wrap(self.method, self.device)
        if self.is_main:
            write_config(self.run_dir, self.resolved_config())
        cfg = self.config
        ds: Any = self.train_set  # a dataset over shards orders its epochs itself
        order_fn = ((lambda e: ds.epoch_order(cfg.seed, e))
                    if callable(getattr(ds, "epoch_order", None)) else None)
        sampler = EpochSampler(len(ds), cfg.seed, rank=self.rank, world_size=self.world_size,
                               batch_size=int(cfg.batch_size or 0), order_fn=order_fn)
        workers, note = resolve_workers(cfg.num_workers, self.train_set,
                                        ddp.processes_here(self.env))
        if self.is_main:
            print(f"note: {note}")
        loader = make_loader(cast(Dataset[Any], self.train_set), int(cfg.batch_size or 0), sampler,
                             self.collate, workers, self.device.type == "cuda", self.seed)
        metrics: Any = MetricsLogger(self.run_dir, loggers=build_loggers(
            logger_names(cfg), self.run_dir)) if self.is_main \
            else ddp.SilentMetrics()
        with metrics as m:
            self.metrics = m
            if self.is_main:
                m.log_config(self.resolved_config().to_dict())
            if cfg.resume:
                m.truncate(self.step)
            self._fire("on_fit_start")
            m.start_progress(self.total_steps, self.step)
            self._clock = (time.perf_counter(), self.step)
            while self.step < self.total_steps:
                self._run_epoch(loader, sampler)
            self._save()
        if self.skipped_steps and self.is_main:
            print(f"note: skipped {self.skipped_steps} of {self.step} steps whose loss or "
                  f"gradients were not finite (--skip-nonfinite); see {self.metrics.path}")

    def _run_epoch(self, loader: DataLoader[Any], sampler: EpochSampler) -> None:
        self.epoch, offset = divmod(self.step, self.steps_per_epoch)
        sampler.set_epoch(self.epoch, start=offset * self.global_batch)
        # a data set that draws per epoch (e.g. sampled subgraphs of a large graph) redraws
        # from the epoch, so a resumed run draws what an uninterrupted one would
        set_epoch = getattr(loader.dataset, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(self.epoch)
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
        self._method.views.manual_seed(mix_seed(self.seed, step))
        batch = self.to_device(batch, self.device, cuda)
        with autocast(self.device, self.precision):
            loss, logs = self._forward(batch)  # DDP's gradient hooks fire through its wrapper
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        logs = dict(logs)
        scaled = step_hooks.unscale(self.scaler, self.optimizer, logs)  # fp16: true gradients
        step_hooks.before_optimizer_step(self.method, step, self.steps_per_epoch, self.total_steps)
        if self.wd_schedule is not None:
            logs["weight_decay"] = self.wd_schedule.apply(step)
        value, ok = check_step(loss, [] if scaled else self._params, step,
                               skip=cfg.skip_nonfinite, checkpoint=self.checkpoint_path,
                               saved_step=self._saved_step)
        self.skipped_steps += 0 if ok else 1
        if self.hparams["grad_clip"] is not None:  # the config's, else the method's
            logs["grad_norm"] = step_hooks.clip_gradients(self._params, self.hparams["grad_clip"],
                                                          self.hparams["grad_clip_mode"])
        if cfg.skip_nonfinite:
            logs["skipped_steps"] = self.skipped_steps
        lr = float(self.optimizer.param_groups[0]["lr"])
        if ok:
            step_hooks.optimizer_update(self.optimizer, self.scheduler, self.scaler)
        else:  # the update is dropped; the step, the schedule and on_step_end go on
            skip_update(self.optimizer, self.scheduler)
        self._method.on_step_end(step, self.total_steps)
        self.step += 1
        self._last = (value, logs, lr)
        self.metrics.advance(self.step)
        if step % cfg.log_every == 0 or self.step == self.total_steps:
            self._log(step)
        if cfg.checkpoint_every is not None and self.step % cfg.checkpoint_every == 0:
            self._save()
        self._fire("on_step_end")

    def _log(self, step: int) -> None:
        assert self._last is not None
        loss, logs, lr = self._last
        t0, s0 = self._clock
        now = time.perf_counter()
        sps = (self.step - s0) * self.global_batch / max(now - t0, 1e-9)
        self._clock = (now, self.step)
        record = self.metrics.log(step, self.epoch, loss, lr, sps, logs)
        self.last_loss = record["loss"]

    def _fire(self, event: str) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, event, None)
            if callable(fn):
                fn(self)

