"""What a trainer puts in ``last.pt`` and takes back from it on resume.

The keys are those ``anyssl.train.checkpoint`` documents, plus ``skipped_steps`` (non-finite
steps skipped so far), ``scaler`` (fp16's gradient scaler) and, for a run of W > 1
processes, ``world_size`` and ``rng_by_rank`` (the RNG state of every rank, so each rank
resumes its own random streams). Every rank restores from
the same file; a run resumed on another number of processes is warned about (its global batch,
and so its data order and steps per epoch, changed).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from anyssl.train.checkpoint import (
    CHECKPOINT_FORMAT,
    check_format,
    load_checkpoint,
    rng_state,
    seed_everything,
    set_rng_state,
)

__all__ = ["SAME_ON_RESUME", "checkpoint_state", "encoder_info", "restore"]

log = logging.getLogger("anyssl.train.loop")

#: Config keys that must not change for a resumed run to match an uninterrupted one.
SAME_ON_RESUME = ("batch_size", "seed", "lr", "optimizer", "weight_decay", "momentum",
                  "precision", "schedule", "warmup_epochs", "grad_clip", "grad_clip_mode",
                  "final_lr_ratio", "aug", "views",
                  "method_args", "encoder_args", "epochs", "max_steps")


def checkpoint_state(trainer: Any, rngs: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The checkpoint of ``trainer`` now; ``rngs``: every rank's ``rng_state()`` (W > 1)."""
    state: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT, "config": trainer.resolved_config().to_dict(),
        "modality": trainer.modality_name, "method_name": trainer.config.method,
        "method": trainer.method.state_dict(), "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(), "step": trainer.step,
        "epoch": trainer.step // trainer.steps_per_epoch, "rng": rng_state(),
        "encoder": encoder_info(trainer), "skipped_steps": trainer.skipped_steps,
    }
    if rngs is not None:
        state["world_size"], state["rng_by_rank"] = len(rngs), rngs
    if trainer.scaler.is_enabled():  # fp16's loss scale and its growth tracker
        state["scaler"] = trainer.scaler.state_dict()
    data_state = getattr(trainer.train_set, "data_state", None)
    if callable(data_state):  # what rebuilding the data needs (image-text: the tokenizer)
        state["data_state"] = data_state()
    return state


def encoder_info(trainer: Any) -> dict[str, Any]:
    """Build info of the trainer's encoder: name, out_dim, class and plain kwargs."""
    enc = getattr(trainer.encoder, "_orig_mod", trainer.encoder)
    kwargs = getattr(trainer.train_set, "encoder_kwargs", None) or {}
    return {"name": trainer.config.encoder, "out_dim": int(getattr(enc, "out_dim", -1)),
            "class": f"{type(enc).__module__}.{type(enc).__qualname__}",
            "kwargs": {k: v for k, v in kwargs.items() if _plain(v)}}


def restore(trainer: Any, path: Path) -> int:
    """Load ``path`` into the trainer's method, optimizer, scheduler, skip count and RNGs
    (this rank's own when the checkpoint has them); return the step it holds. Refuses a
    checkpoint of another format, modality or method; warns (rank 0) about changed settings."""
    state = load_checkpoint(path, map_location=trainer.device)
    check_format(state, path)
    mine = (trainer.modality_name, trainer.config.method)
    theirs = (state.get("modality"), state.get("method_name"))
    if theirs != mine:
        raise ValueError(
            f"checkpoint {path} is modality {theirs[0]!r} method {theirs[1]!r}, but this run is "
            f"modality {mine[0]!r} method {mine[1]!r}; use the same --modality/--method or "
            "another --out"
        )
    if trainer.is_main:
        _warn_changes(trainer, state, path)
    trainer.method.load_state_dict(state["method"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    if trainer.scaler.is_enabled() and isinstance(state.get("scaler"), dict):
        trainer.scaler.load_state_dict(state["scaler"])
    trainer.skipped_steps = int(state.get("skipped_steps", 0))
    rngs = state.get("rng_by_rank") or [state["rng"]]
    if len(rngs) == trainer.world_size:
        set_rng_state(rngs[trainer.rank])
    elif trainer.is_main:
        set_rng_state(state["rng"])
    else:  # a rank the saved run did not have
        seed_everything(trainer.seed)
    return int(state["step"])


def _warn_changes(trainer: Any, state: dict[str, Any], path: Path) -> None:
    now = trainer.resolved_config().to_dict()
    changed = [k for k in SAME_ON_RESUME if state["config"].get(k, now[k]) != now[k]]
    if changed:
        log.warning("resuming %s with changed %s: it will not match an uninterrupted run",
                    path, ", ".join(changed))
    saved = int(state.get("world_size", 1))
    if saved != trainer.world_size:
        log.warning("resuming %s on %d process(es), saved on %d: the global batch changes from "
                    "%d to %d, so it will not match an uninterrupted run", path,
                    trainer.world_size, saved, saved * int(state["config"].get("batch_size", 0)),
                    trainer.global_batch)


def _plain(v: Any) -> bool:
    """True for values a ``weights_only`` checkpoint can hold (numbers, strings, lists of them)."""
    if isinstance(v, (list, tuple)):
        return all(_plain(x) for x in v)
    return v is None or isinstance(v, (bool, int, float, str))
