"""The views a run actually used, recorded in its ``config.yaml`` (``views_used``) and kept on
``--resume``.

A run's views come from the modality's recipe unless the user gives ``--aug``/``--views``; a
recipe can change between the start of a run and its resumption (a new anyssl or plugin
version). So the trainer records the resolved views, one spec per view::

    views_used: {views: ["crop(size=32,scale=0.08-1.0,...), jitter(strength=0.5,p=0.8)", ...],
                 n_global: 2}

(a view source that makes its views jointly, TS2Vec's crops, is recorded by its description,
``{views: ["OverlapCrops(...)"]}``). On ``--resume`` with the same ``--aug``/``--views`` as the
run was started with, views that differ from the recorded ones get a one-line warning naming
the first difference, and the run **trains with the recorded ones**: a resumed run must stay the
run it was (the same augmentations before and after the interruption), and the warning shows the
user that the recipe moved on. Recorded views that cannot be rebuilt from their specs (an
augmentation object whose description is not a spec, a joint view source, another number of
views) are warned about and the run continues with the new ones.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from anyssl.spec import SpecError, parse_spec
from anyssl.views import Compose, OneOf, RandomApply, ViewGenerator

__all__ = ["describe_views", "keep_recorded_views", "rebuild_views", "to_spec"]

log = logging.getLogger("anyssl.train.loop")
_NAME = re.compile(r"[A-Za-z_][\w-]*")


def _one_call(text: str) -> bool:
    """True for ``name`` or ``name(...)`` whose first parenthesis closes at the end."""
    m = _NAME.match(text)
    if m is None or m.end() == len(text):
        return m is not None
    if text[m.end()] != "(":
        return False
    depth = 0
    for i, c in enumerate(text[m.end():], m.end()):
        depth += {"(": 1, ")": -1}.get(c, 0)
        if depth == 0:
            return i == len(text) - 1
    return False


def to_spec(aug: Any) -> str:
    """A text spec of a pipeline (``Compose`` as ``a, b``; ``OneOf`` with equal weights as
    ``a | b``; ``RandomApply`` as ``name(..., p=P)``), else the augmentation's description.
    ``parse_spec(to_spec(x))`` rebuilds ``x`` when it was built from a spec."""
    if isinstance(aug, Compose):
        return ", ".join(to_spec(a) for a in aug.augmentations)
    if isinstance(aug, OneOf) and bool((aug.weights == aug.weights[0]).all()):
        return " | ".join(to_spec(a) for a in aug.augmentations)
    if isinstance(aug, RandomApply):
        inner = to_spec(aug.augmentation)
        if _one_call(inner):
            head, _, args = inner.partition("(")
            args = args[:-1] if args else ""
            return f"{head}({args + ',' if args else ''}p={aug.p})"
    return repr(aug)


def describe_views(views: Any) -> dict[str, Any] | None:
    """``{"views": [spec per view], "n_global": G}`` of a ``ViewGenerator``; ``{"views":
    [description]}`` of another view source; None when a description holds a memory address
    (it would differ on every run)."""
    if isinstance(views, ViewGenerator):
        out: dict[str, Any] = {"views": [to_spec(p) for p in views.pipelines],
                               "n_global": views.n_global}
    else:
        out = {"views": [repr(views)]}
    return None if any(" at 0x" in v for v in out["views"]) else out


def rebuild_views(recorded: dict[str, Any], scope: str) -> ViewGenerator | None:
    """The ``ViewGenerator`` of recorded views, or None when a spec does not rebuild a pipeline
    described the same (or the record is of a joint view source)."""
    specs, n_global = recorded.get("views"), recorded.get("n_global")
    if not isinstance(specs, list) or not isinstance(n_global, int) or len(specs) < 2:
        return None
    pipes = []
    for spec in specs:
        try:
            pipe = parse_spec(str(spec), scope)
        except (SpecError, ValueError):
            return None
        if to_spec(pipe) != spec:
            return None
        pipes.append(pipe)
    return ViewGenerator(pipes, n_global=n_global)


def _difference(recorded: dict[str, Any], now: dict[str, Any]) -> str:
    old, new = list(recorded.get("views") or []), list(now.get("views") or [])
    if len(old) != len(new) or recorded.get("n_global") != now.get("n_global"):
        return (f"{len(old)} views ({recorded.get('n_global')} global) recorded, "
                f"{len(new)} ({now.get('n_global')} global) now")
    i = next(i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b)
    return f"view {i + 1}: recorded {old[i]!r}, now {new[i]!r}"


def _recorded_config(run_dir: Path) -> dict[str, Any] | None:
    """The run folder's ``config.yaml`` as a dict (None when absent or unreadable)."""
    from anyssl.train.safe_yaml import ConfigError, load_yaml_text, read_config_text

    path = run_dir / "config.yaml"
    try:
        found = load_yaml_text(read_config_text(path), str(path)) if path.is_file() else None
    except (ConfigError, OSError):
        return None
    return found if isinstance(found, dict) else None


def keep_recorded_views(method: Any, config: Any, scope: str) -> Any:
    """``config`` (a ``TrainConfig``) with ``views_used``: the views of ``method``, or, on
    ``--resume`` of a run whose recorded views differ while its ``aug``/``views`` settings are
    unchanged, the recorded ones, put back on ``method`` (module docstring)."""
    now = describe_views(method.views)
    old = _recorded_config(Path(str(config.out))) if config.resume else None
    recorded = old.get("views_used") if old else None
    same_request = old is not None and (old.get("aug"), old.get("views")) == (
        config.aug, config.views)
    if not isinstance(recorded, dict) or now is None or recorded == now or not same_request:
        return config.merged({"views_used": now})
    rebuilt = rebuild_views(recorded, scope)
    fits = rebuilt is not None and isinstance(method.views, ViewGenerator) and (
        (rebuilt.n_views, rebuilt.n_global) == (method.views.n_views, method.views.n_global))
    say = int(os.environ.get("RANK") or 0) == 0  # several processes: rank 0 speaks
    if say:
        log.warning("resuming %s: its views changed since the run started (%s); %s", config.out,
                    _difference(recorded, now),
                    "training with the recorded views so the run stays the same run" if fits
                    else "they cannot be rebuilt, so the run goes on with the new views and "
                    "will not match an uninterrupted run")
    if not fits:
        return config.merged({"views_used": now})
    method.views = rebuilt
    return config.merged({"views_used": recorded})
