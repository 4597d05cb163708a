"""Checkpoints that survive a crash mid-write, refuse what anyssl did not write, and the random
state a resumed run needs.

A checkpoint is a dict of tensors and plain Python values (no pickled objects), so it loads with
``torch.load(weights_only=True)``: a file that holds pickled classes or functions is refused, never
executed. ``Trainer`` writes these keys:

    format     CHECKPOINT_FORMAT (int); a file of a higher format is refused with "upgrade anyssl"
    anyssl_version  the anyssl that wrote it (``save_checkpoint`` adds it)
    config     the resolved ``TrainConfig`` as a dict
    modality   modality name;  method_name: method name
    modality_source  the module that registered the modality and the package (and version)
               that ships it (``save_checkpoint`` adds it; ``anyssl.plugin_source``), so that
               a machine without the plugin is told what to install
    method     the method's state_dict (encoder, heads, queue buffer, momentum target)
    optimizer  / scheduler: their state_dicts
    step       optimizer steps done (= index of the next step);  epoch: epoch of the next step
    rng        ``rng_state()``
    encoder    build info: name, class, out_dim, kwargs (the dataset's ``encoder_kwargs``)
    data_state (optional) plain values the dataset needs to be rebuilt identically, from its
               ``data_state()`` (image-text: the tokenizer as JSON); passed back as data args

A write goes to a temp file ``.<name>.<random>.tmp`` beside the checkpoint, is fsynced, then
renamed over it, so the previous checkpoint stays whole until the new one is complete. A process
killed mid-write leaves only such a temp file: loading never reads it, and the next successful
save of the same checkpoint removes it. One process writes a given checkpoint (rank 0).
"""

from __future__ import annotations

import os
import pickle
import random
import re
import secrets
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeGuard, cast

import numpy as np
import torch

__all__ = ["CHECKPOINT_FORMAT", "REQUIRED_KEYS", "CheckpointError", "CheckpointFormatError",
           "UnsafeCheckpointError", "check_format", "load_checkpoint", "rng_state",
           "save_checkpoint", "seed_everything", "set_rng_state"]

CHECKPOINT_FORMAT = 1

#: Keys every checkpoint ``Trainer`` writes holds, with their types (``check_format``).
REQUIRED_KEYS: dict[str, type] = {
    "config": dict, "modality": str, "method_name": str, "method": dict, "optimizer": dict,
    "scheduler": dict, "step": int, "rng": dict,
}


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or not an anyssl checkpoint."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint holding pickled Python objects (classes, functions) that a weights-only load
    refuses to execute: not written by anyssl, or tampered with."""


class CheckpointFormatError(CheckpointError):
    """A checkpoint in a format this anyssl does not read (written by a newer or older anyssl)."""


# ---- writing -------------------------------------------------------------------------------------
def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus ``anyssl_version``, and ``modality_source`` when it names a
    registered ``modality``, unless given) to ``path`` atomically: a temp file
    in the same folder, flushed and fsynced, then ``os.replace``d over ``path``. A crash leaves
    the old file whole; a success also removes temp files that killed writes left behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {**state, "anyssl_version": state.get("anyssl_version", _anyssl_version())}
    if isinstance(state.get("modality"), str) and "modality_source" not in state:
        from anyssl.plugin_source import modality_source  # it reads the registry

        source = modality_source(state["modality"])
        if source is not None:
            state["modality_source"] = source
    fd, tmp = _open_temp(path)
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
    _remove_stale_temps(path)
    return path


def _anyssl_version() -> str:
    import anyssl  # here, not at the top: anyssl/__init__ may still be importing this module

    return str(getattr(anyssl, "__version__", "unknown"))


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def _open_temp(path: Path) -> tuple[int, Path]:
    """Create ``.<name>.<random>.tmp`` beside ``path`` exclusively, with the mode any new file
    gets (``tempfile.mkstemp`` would make it owner-only, and the checkpoint with it)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.parent / f"{_temp_prefix(path)}{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def _remove_stale_temps(path: Path) -> None:
    """Delete ``.<name>.*.tmp`` files of ``path`` left by writes that were killed."""
    prefix = _temp_prefix(path)
    for p in path.parent.iterdir():
        if p.name.startswith(prefix) and p.name.endswith(".tmp"):
            p.unlink(missing_ok=True)


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


# ---- reading -------------------------------------------------------------------------------------
def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` with ``torch.load(weights_only=True)``.

    Raises ``CheckpointError`` naming the file when it is missing, empty, truncated or corrupt;
    ``UnsafeCheckpointError`` when it holds pickled objects (never executed); and
    ``CheckpointFormatError`` when its ``format`` is newer than this anyssl reads. A dict without
    ``format`` loads as is: ``check_format`` is the full check for a training checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: check the path (or the run's --out)")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): a cut-short copy or not a "
                              "checkpoint; use the run's intact last.pt")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"checkpoint {path} is unreadable (corrupt or truncated?): it is "
                              "not the zip archive torch.save writes; use the run's intact last.pt")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # Known by its type, not its wording: with weights_only=True every refusal of torch's
        # weights-only unpickler (a global outside its allow-list, an opcode it does not run)
        # surfaces as pickle.UnpicklingError (torch 2.11-2.14 serialization.load); a corrupt
        # archive or a cut-short pickle raises other types (RuntimeError, EOFError, IndexError).
        raise UnsafeCheckpointError(
            f"checkpoint {path} holds pickled Python objects that anyssl will not execute"
            f"{_refused_what(err)}; it was not written by anyssl (or was tampered with): use "
            "a checkpoint from anyssl train, and never load this one with weights_only=False"
        ) from None
    except Exception as err:
        raise _unreadable(path, err) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a dict: it "
                              "was not written by anyssl")
    fmt = state.get("format")
    if _is_int(fmt) and fmt > CHECKPOINT_FORMAT:
        raise _format_error(path, state, "upgrade anyssl (pip install -U anyssl) to read it")
    return state


def _unreadable(path: Path, err: Exception) -> CheckpointError:
    msg = " ".join(str(err).split())[:200]
    return CheckpointError(
        f"checkpoint {path} is unreadable (corrupt or truncated?): {type(err).__name__}: {msg}"
    )


def _refused_what(err: Exception) -> str:
    """`` (refused: module.Name)`` from torch's weights-only error text, when it names one."""
    text = str(err)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return f" (refused: {found.group(1)})"
    found = re.search(r"Unsupported operand (\d+)", text)
    return f" (refused pickle opcode {found.group(1)})" if found else ""


def check_format(state: Mapping[str, Any], path: str | Path,
                 required: Iterable[str] = REQUIRED_KEYS) -> None:
    """Refuse a loaded checkpoint that this anyssl cannot use: no or a non-integer ``format``
    (not written by anyssl), a newer format ("upgrade anyssl"), an older one, or ``required``
    keys missing or of the wrong type. Every error is one line naming the file."""
    fmt = state.get("format")
    if not _is_int(fmt):
        raise CheckpointError(f"checkpoint {path} has no integer 'format' (got {_short(fmt)}): "
                              "it was not written by anyssl train")
    if fmt > CHECKPOINT_FORMAT:
        raise _format_error(path, state, "upgrade anyssl (pip install -U anyssl) to read it")
    if fmt < CHECKPOINT_FORMAT:
        raise _format_error(path, state, "use the anyssl that wrote it, or train again")
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(map(repr, missing))}: it is "
                              "not a complete anyssl checkpoint")
    for key in required:
        want = REQUIRED_KEYS.get(key)
        if want is not None and not (isinstance(state[key], want) and (
                want is not int or _is_int(state[key]))):
            raise CheckpointError(
                f"checkpoint {path}: {key!r} holds a {type(state[key]).__name__}, expected "
                f"{want.__name__}: it is not a checkpoint written by anyssl train"
            )


def _format_error(path: str | Path, state: Mapping[str, Any], fix: str) -> CheckpointFormatError:
    version = state.get("anyssl_version")
    by = f"anyssl {_short(version, quote=False)}" if isinstance(version, str) else (
        "a newer anyssl" if cast(int, state["format"]) > CHECKPOINT_FORMAT else "an older anyssl")
    return CheckpointFormatError(
        f"checkpoint {path} was written by {by} (checkpoint format {state['format']}); this "
        f"anyssl {_anyssl_version()} reads format {CHECKPOINT_FORMAT}: {fix}"
    )


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _short(v: Any, quote: bool = True, limit: int = 40) -> str:
    """A value for an error message: one line, at most ``limit`` characters."""
    text = " ".join((repr(v) if quote else str(v)).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
