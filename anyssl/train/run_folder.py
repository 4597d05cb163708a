"""The run folder's rules: a folder that holds a run is never written over unless the run is
resumed (``--resume``) or moved aside first (``--overwrite``), so no finished or interrupted
run is lost by a repeated command.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

__all__ = ["RunExistsError", "check_run_folder", "holds_run", "move_aside", "open_run_folder",
           "write_config"]


class RunExistsError(ValueError):
    """The run folder already holds a run and neither ``resume`` nor ``overwrite`` was asked."""


def holds_run(run_dir: Path) -> bool:
    """True when ``run_dir`` is a folder with anything in it."""
    return run_dir.is_dir() and any(run_dir.iterdir())


def check_run_folder(run_dir: Path, checkpoint: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse a run that would lose data or cannot start (one-line ``ValueError``s):
    ``resume`` with ``overwrite``; ``run_dir`` a file; ``resume`` without ``checkpoint``; a
    folder holding a run without ``resume`` or ``overwrite`` (``RunExistsError``); ``overwrite``
    of the folder the process runs in."""
    if resume and overwrite:
        raise ValueError(f"--resume and --overwrite contradict each other: --resume continues "
                         f"the run in {run_dir}, --overwrite moves it aside and starts again; "
                         "pass one of them")
    if run_dir.exists() and not run_dir.is_dir():
        raise RunExistsError(f"run folder {run_dir} is a file; choose another --out")
    if resume:
        # a run killed before its first checkpoint left config.yaml only: resume starts it anew
        if not checkpoint.is_file() and not (run_dir / "config.yaml").is_file():
            raise ValueError(f"cannot resume: no checkpoint {checkpoint}; drop --resume to start "
                             "a new run")
        return
    if not holds_run(run_dir):
        return
    if not overwrite:
        raise RunExistsError(
            f"run folder {run_dir} already holds a run; pass --resume to continue it, "
            "--overwrite to move it aside and start again, or choose another --out"
        )
    here, target = Path.cwd().resolve(), run_dir.resolve()
    if here == target or target in here.parents:
        raise ValueError(f"--overwrite cannot move {run_dir} aside: the current folder is in "
                         "it; run from elsewhere or choose another --out")


def move_aside(run_dir: Path) -> Path:
    """Rename ``run_dir`` to ``<run_dir>.replaced-<UTC time>`` (``-1``, ``-2``... if taken) in
    the same parent folder, one atomic rename; return the new path."""
    src = run_dir.absolute()
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    dest = src.with_name(f"{src.name}.replaced-{stamp}")
    n = 0
    while dest.exists():
        n += 1
        dest = src.with_name(f"{src.name}.replaced-{stamp}-{n}")
    src.rename(dest)
    return dest


def open_run_folder(run_dir: Path, *, overwrite: bool) -> None:
    """Create ``run_dir``; with ``overwrite``, first move a run it holds aside (and say where)."""
    if overwrite and holds_run(run_dir):
        moved = move_aside(run_dir)
        print(f"note: --overwrite: the previous run in {run_dir} was moved to {moved}")
    run_dir.mkdir(parents=True, exist_ok=True)


def write_config(run_dir: Path, config: Any) -> None:
    """Write ``config`` (a ``TrainConfig``) to ``run_dir/config.yaml`` atomically."""
    tmp = run_dir / ".config.yaml.tmp"
    config.to_yaml(tmp)
    os.replace(tmp, run_dir / "config.yaml")
