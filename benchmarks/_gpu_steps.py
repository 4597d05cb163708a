"""The timed training steps of the GPU check (``gpu_bench.py`` section 2): one step as the trainer
runs it against the bare encoder passes the method needs, timed alternately, with images/s and
peak memory. Not a script: ``gpu_bench.py`` imports it.
"""

from __future__ import annotations

import argparse
import copy
import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from _common import Contention, autocast, median, timed
from _runs import build_run, step_peak, train_step, uint8_batch, views_text
from step_overhead import BARE_PASSES, bare_passes

STEP_TARGET = 1.10  # step / bare encoder passes


class Step(NamedTuple):
    """A timed step: its label, method, constructor arguments, the step / bare target (None:
    reported only) and whether it runs on ``--vit`` at ``--vit-batch-size`` (else ``--encoder``
    at ``--batch-size``)."""

    label: str
    method: str
    method_args: dict[str, Any]
    target: float | None = STEP_TARGET
    vit: bool = False


#: The timed steps, in order; each is its own section (the JSON is rewritten after each). The
#: issue-12 rows come after the three targeted ones, before the end-to-end section.
STEPS: tuple[Step, ...] = (
    Step("simclr", "simclr", {}), Step("mocov2 (split_bn=8)", "mocov2", {}),
    Step("mocov2 split_bn=0", "mocov2", {"split_bn": 0}),
    Step("barlowtwins", "barlowtwins", {}, None),
    Step("dino (ViT)", "dino", {}, None, vit=True))


# ---- timing -------------------------------------------------------------------------------------
def per_call(fn: Callable[[], Any], args: argparse.Namespace, device: torch.device,
             contention: list[float | None]) -> float:
    """Median seconds of one ``fn()`` over ``args.repeats`` blocks of back-to-back calls lasting
    about ``args.block`` s each, after ``args.warmup`` calls; records each block's contention."""
    for _ in range(args.warmup):
        fn()
    calls = max(1, math.ceil(args.block / max(timed(fn, device), 1e-6)))
    times = []
    for _ in range(args.repeats):
        with Contention() as c:
            times.append(timed(lambda: [fn() for _ in range(calls)], device) / calls)
        contention.append(c.other)
    return median(times)


# ---- steps --------------------------------------------------------------------------------------
def setting(step: Step, args: argparse.Namespace) -> tuple[str, int]:
    """The encoder and batch size of ``step``."""
    return (args.vit, args.vit_batch_size) if step.vit else (args.encoder, args.batch_size)


def passes(method: str, m: Any) -> tuple[int, int]:
    """Bare encoder passes of one step of ``m``: (forward+backward, forward without grad).
    Barlow Twins: every view through the encoder; DINO: every view (global and local) through
    the student, the ``n_global`` global views through the teacher."""
    if method in BARE_PASSES:
        return BARE_PASSES[method]
    n_views = int(m.views.n_views)
    return n_views, int(getattr(m, "n_global", 0)) if method == "dino" else 0


def alternate(fns: dict[str, Callable[[int], Any]], args: argparse.Namespace,
              device: torch.device, contention: list[float | None]) -> dict[str, list[float]]:
    """Seconds of each of ``fns`` (called with a step index) per repeat, after ``args.warmup``
    calls each, in an order that alternates so that neither always runs first."""
    for i in range(args.warmup):
        for fn in fns.values():
            fn(i)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(args.repeats):
        order = list(fns) if r % 2 == 0 else list(fns)[::-1]
        with Contention() as c:
            for k in order:
                times[k].append(timed(functools.partial(fns[k], args.warmup + r), device))
        contention.append(c.other)
    return times


def time_step(m: Any, opt: torch.optim.Optimizer, sched: Any, x: torch.Tensor, method: str,
              args: argparse.Namespace, device: torch.device, contention: list[float | None]
              ) -> tuple[dict[str, list[float]], str, tuple[int, int]]:
    """Seconds of the full step and of the bare encoder passes on views made beforehand (and a
    frozen copy of the encoder for the passes without grad), the views' sizes and the passes.
    What the bare passes hold is freed on return, before the caller's peak-memory step."""
    target = copy.deepcopy(m.encoder).requires_grad_(False)
    with torch.no_grad(), autocast(device, args.precision):
        views = [v.contiguous() for v in m.views(x)]
    n = passes(method, m)
    times = alternate({
        "step": lambda i: train_step(m, opt, sched, x, i, device, args.precision),
        "bare": lambda i: bare_passes(m.encoder, target, views, *n, device, args.precision),
    }, args, device, contention)
    return times, views_text(views), n


def step_vs_bare(step: Step, args: argparse.Namespace, device: torch.device,
                 contention: list[float | None]) -> dict[str, Any]:
    """Median seconds of the full step and of the bare encoder passes, timed alternately; the
    step's images/s and peak memory."""
    encoder, batch = setting(step, args)
    m, opt, sched = build_run(step.method, encoder, args.size, device, **step.method_args)
    x = uint8_batch(batch, args.size, device)
    times, shown, (n_grad, n_nograd) = time_step(m, opt, sched, x, step.method, args, device,
                                                 contention)
    med = {k: median(v) for k, v in times.items()}
    out = {"label": step.label, "method": step.method, "method_args": step.method_args,
           "passes": {"grad": n_grad, "no_grad": n_nograd}, "seconds": med, "all_seconds": times,
           "ratio": med["step"] / med["bare"], "images_per_s": batch / med["step"],
           "encoder": encoder, "batch_size": batch, "views": shown,
           "params_m": sum(p.numel() for p in m.parameters() if p.requires_grad) / 1e6,
           **step_peak(m, opt, sched, x, device, args.precision)}
    print(f"  {step.label}: step {med['step']:.3f} s ({out['images_per_s']:,.0f} img/s), "
          f"bare {med['bare']:.3f} s", flush=True)
    return out
