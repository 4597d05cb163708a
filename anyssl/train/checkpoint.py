"""Checkpoints that survive a crash mid-write, and the random state a resumed run needs.

A checkpoint is a dict of tensors and plain Python values (no pickled objects), so it loads with
``torch.load(weights_only=True)``. ``Trainer`` writes these keys:

    format     CHECKPOINT_FORMAT (int)
    config     the resolved ``TrainConfig`` as a dict
    modality   modality name;  method_name: method name
    method     the method's state_dict (encoder, heads, queue buffer, momentum target)
    optimizer  / scheduler: their state_dicts
    step       optimizer steps done (= index of the next step);  epoch: epoch of the next step
    rng        ``rng_state()``
    encoder    build info: name, class, out_dim, kwargs (the dataset's ``encoder_kwargs``)
    data_state (optional) plain values the dataset needs to be rebuilt identically, from its
               ``data_state()`` (image-text: the tokenizer as JSON); passed back as data args
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "load_checkpoint", "rng_state",
           "save_checkpoint", "seed_everything", "set_rng_state"]

CHECKPOINT_FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or not an anyssl checkpoint."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically: a temp file in the same folder, flushed and
    fsynced, then ``os.replace``d over ``path``. A crash leaves the old file whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Persist the rename (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``; ``CheckpointError`` names the file when
    it is missing, truncated or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: check the path (or the run's --out)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        msg = " ".join(str(err).split())[:200]
        raise CheckpointError(
            f"checkpoint {path} is unreadable (corrupt or truncated?): {type(err).__name__}: {msg}"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a dict")
    return state


# ---- random state --------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """The state of Python's ``random``, NumPy's global generator, torch's CPU generator and
    every CUDA generator, as tensors and plain values."""
    name, keys, pos, has_gauss, gauss = cast(tuple[Any, ...], np.random.get_state(legacy=True))
    return {
        "python": random.getstate(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` captured. CUDA states are restored only when the number of
    visible GPUs matches (a run resumed on other hardware draws new CUDA randomness)."""
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].cpu().numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda", [])
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
