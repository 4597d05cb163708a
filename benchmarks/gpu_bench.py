"""GPU check: batched views/s, training steps (ResNet-50, ViT-S) over their bare encoder passes
with images/s and peak memory, and the real trainer's images/s on a folder of JPEGs next to its
loader alone and its GPU step alone.

1. views: the ``simclr`` image recipe (``ViewGenerator``, two views, the whole batch at once)
   on a uint8 batch already on the device, stored at 256 px for 224 px views. Target: at
   least 20,000 images/s (two views each).
2. steps: one training step as the trainer runs it (``_runs.train_step``: views, encoder, heads,
   loss, queue, optimizer, schedule, EMA) over the bare encoder passes the method needs
   (``step_overhead.bare_passes``), bf16 autocast, channels_last, synthetic uint8 batch: SimCLR,
   MoCo v2 (one-process split BatchNorm, ``split_bn=8``, the default) and MoCo v2 ``split_bn=0``
   (target: step / bare at most 1.10); then, reported with no target (issue 12), Barlow Twins on
   the same ResNet-50 and batch (its 8192-8192-8192 projector) and DINO on ``--vit``
   (``vit_small``, patch 16 at 224 px) with its multi-crop views (2 x 224 + 8 x 96 px) at
   ``--vit-batch-size`` 128. Images/s of each step; peak memory: ``max_memory_allocated`` over one
   more step.
3. end to end: ``--images`` JPEGs of 500 x 375 (smooth random colours plus grain, so they
   compress like photos), ``anyssl.api.train`` (SimCLR, loader workers chosen automatically),
   images/s after ``--warm-steps``; next to it the loader alone (decode, same workers, no epoch
   ends) and the GPU step alone (section 2's SimCLR step). The slower of the two bounds it.

Each section rewrites the JSON when it ends, so a run cut short by a timeout keeps what it did.

    python benchmarks/gpu_bench.py                                   # one H200, ~2-3.5 min
    .venv/bin/python benchmarks/gpu_bench.py --quick --device cpu    # smoke run, < 2 min
"""

from __future__ import annotations

import argparse
import functools
import json
import signal
import time
from collections.abc import Callable
from typing import Any

import torch
from _common import (
    RESULTS,
    autocast,
    common_parser,
    contention_limit,
    contention_note,
    markdown_table,
    save,
    setup,
)
from _gpu_end_to_end import JPEG_SIZE, end_to_end
from _gpu_steps import STEPS, Step, per_call, setting, step_vs_bare
from _runs import (
    recipe_views,
    stored_size,
    uint8_batch,
)

VIEWS_TARGET = 20_000.0  # images/s, two views each
GIB = 2**30  # for the GPU's memory in ``gpu_facts``


class Stopped(BaseException):
    """SIGTERM (``timeout``) arrived: stop measuring, keep what is done."""


def _stop(signum: int, frame: Any) -> None:
    raise Stopped


def views_rate(args: argparse.Namespace, device: torch.device,
               contention: list[float | None]) -> dict[str, Any]:
    """Images/s of the ``simclr`` recipe's two views on a uint8 batch already on ``device``."""
    views = recipe_views("simclr", args.size)
    x = uint8_batch(args.batch_size, args.size, device)

    def run() -> None:
        with autocast(device, args.precision):
            views(x)

    seconds = per_call(run, args, device, contention)
    return {"images_per_s": args.batch_size / seconds, "seconds_per_batch": seconds,
            "stored": stored_size(args.size), "size": args.size, "recipe": repr(views)}


# ---- report -------------------------------------------------------------------------------------
def gpu_facts(device: torch.device) -> dict[str, Any]:
    """The accelerator and the library versions that shape its numbers."""
    facts: dict[str, Any] = {"cudnn_benchmark": torch.backends.cudnn.benchmark}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        facts |= {"name": p.name, "capability": f"{p.major}.{p.minor}",
                  "memory_gib": round(p.total_memory / GIB, 1), "cuda": torch.version.cuda,
                  "cudnn": torch.backends.cudnn.version(), "bf16": torch.cuda.is_bf16_supported()}
    return facts


def _cell(section: dict[str, Any] | None, text: Callable[[dict[str, Any]], str]) -> str:
    if section is None:
        return "not run (stopped)"
    return f"error: {section['error'][:90]}" if "error" in section else text(section)


def _met(section: dict[str, Any] | None, ok: Callable[[dict[str, Any]], bool],
         args: argparse.Namespace) -> str:
    if section is None or "error" in section:
        return "NO"
    return "n/a (quick)" if args.quick else ("yes" if ok(section) else "NO")


def step_row(step: Step, s: dict[str, Any] | None, args: argparse.Namespace) -> list[Any]:
    """The table row of one timed step: step / bare, the step's images/s; its verdict when it
    has a target."""
    encoder, batch = setting(step, args)
    views = f" ({s['views']} views)" if s and "views" in s else ""
    where = f"{encoder}, {args.precision}, {args.size} px{views}, batch {batch}"
    result = _cell(s, lambda s: (
        f"{s['ratio']:.3f} (step {s['seconds']['step']:.3f} s = {s['images_per_s']:,.0f} "
        f"img/s, bare {s['seconds']['bare']:.3f} s)"))
    if step.target is None:
        return [f"step / bare, {step.label}", where, result, "reported", "-"]
    target = step.target
    return [f"step / bare, {step.label}", where, result, f"<= {target:.2f}",
            _met(s, lambda s: s["ratio"] <= target, args)]


def table(results: dict[str, Any], args: argparse.Namespace) -> str:
    """One markdown table: every check, its setting, result, target and verdict."""
    v, e2e = results.get("views"), results.get("end_to_end")
    steps: dict[str, Any] = results.get("steps") or {}
    rows: list[list[Any]] = [[
        "views/s, simclr recipe (2 views)",
        f"{args.size} px from {stored_size(args.size)} px uint8, batch {args.batch_size}",
        _cell(v, lambda s: f"{s['images_per_s']:,.0f} img/s"), f">= {VIEWS_TARGET:,.0f}",
        _met(v, lambda s: s["images_per_s"] >= VIEWS_TARGET, args)]]
    rows += [step_row(st, steps.get(st.label), args) for st in STEPS]
    peaks = [f"{k} {s['peak_gib']:.1f} GiB" for k, s in steps.items()
             if "error" not in s and s.get("peak_gib") is not None]
    rows.append(["peak GPU memory of a step", "the steps above, one more step each",
                 ", ".join(peaks) or "CUDA only", "-", "-"])
    w, h = JPEG_SIZE
    rows += [
        ["end to end: trainer on JPEGs", _cell(e2e, lambda s: (
            f"{s['jpegs']['images']} JPEGs {w}x{h} ({s['jpegs']['mean_kib']:.0f} KiB), "
            f"{s['loader']['workers']} loader worker(s)")), _cell(e2e, lambda s: (
                f"{s['trainer']['images_per_s']:,.0f} img/s (mean with epoch ends "
                f"{s['trainer']['images_per_s_mean']:,.0f})")), "-",
         _cell(e2e, lambda s: f"bound: {s['bound']}, at {s['trainer_over_bound']:.2f}x of it")],
        ["loader alone (decode)", "same dataset and workers", _cell(
            e2e, lambda s: f"{s['loader']['images_per_s']:,.0f} img/s"), "-", "-"],
        ["GPU step alone (simclr)", "synthetic uint8 batches", _cell(
            e2e, lambda s: f"{s['gpu_step_images_per_s']:,.0f} img/s"), "-", "-"],
    ]
    if args.tests is not None:
        ok = "passed" in args.tests and not any(w in args.tests for w in ("failed", "error"))
        rows.append(["cuda tests", "pytest -m cuda tests/test_cuda.py", args.tests, "all pass",
                     "yes" if ok else "NO"])
    return markdown_table(["check", "setting", "result", "target", "verdict"], rows)


# ---- main ---------------------------------------------------------------------------------------
def guarded(key: str, fn: Callable[[], Any], into: dict[str, Any],
            results: dict[str, Any], args: argparse.Namespace) -> None:
    """``into[key] = fn()``, or the error it raised (the other sections still run); then the
    JSON so far is written, so a timeout that follows keeps it."""
    t0 = time.perf_counter()
    print(f"{key} ...", flush=True)
    try:
        into[key] = fn()
    except Exception as err:  # one broken section must not hide the others' numbers
        into[key] = {"error": f"{type(err).__name__}: {err}"}
        print(f"  {key} failed: {into[key]['error']}", flush=True)
    results["seconds"][key] = round(time.perf_counter() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "gpu_check", "partial": True,
                                    "results": results}, indent=2, default=str) + "\n")


def run_sections(args: argparse.Namespace, device: torch.device, results: dict[str, Any],
                 contention: list[float | None]) -> None:
    guarded("views", functools.partial(views_rate, args, device, contention), results, results,
            args)
    steps: dict[str, Any] = {}
    results["steps"] = steps
    for step in STEPS:
        guarded(step.label, functools.partial(step_vs_bare, step, args, device, contention),
                steps, results, args)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    simclr = steps.get("simclr")
    gpu_step = simclr if simclr and "error" not in simclr else None
    guarded("end_to_end", functools.partial(end_to_end, args, device, gpu_step), results,
            results, args)


def parse() -> argparse.Namespace:
    p = common_parser(__doc__.splitlines()[0])
    p.set_defaults(device="cuda", precision=None, warmup=None)
    p.add_argument("--encoder", default=None, help="default resnet50 (quick: resnet18)")
    p.add_argument("--size", type=int, default=None, help="view px (default 224; quick: 32)")
    p.add_argument("--batch-size", type=int, default=None, help="default 256 (quick: 16)")
    p.add_argument("--vit", default="vit_small", help="the DINO step's encoder (vit_small)")
    p.add_argument("--vit-batch-size", type=int, default=None,
                   help="the DINO step's batch, default 128 (quick: 8)")
    p.add_argument("--images", type=int, default=None, help="JPEGs (default 4096; quick: 256)")
    p.add_argument("--steps", type=int, default=None,
                   help="trainer steps timed after the warm-up (default 40; quick: 6)")
    p.add_argument("--warm-steps", type=int, default=None, help="default 5 (quick: 2)")
    p.add_argument("--block", type=float, default=None,
                   help="seconds per timed block of views (default 0.5; quick: 0.2)")
    p.add_argument("--jpeg-dir", default=None,
                   help="write (or reuse) the JPEGs here (default: a temporary folder)")
    p.add_argument("--tests", default=None, help="the cuda tests' pytest summary, for the table")
    args = p.parse_args()
    q, cuda = args.quick, args.device.startswith("cuda")
    args.encoder = args.encoder or ("resnet18" if q else "resnet50")
    args.size = args.size or (32 if q else 224)
    args.batch_size = args.batch_size or (16 if q else 256)
    args.vit_batch_size = args.vit_batch_size or (8 if q else 128)
    args.images, args.steps = args.images or (256 if q else 4096), args.steps or (6 if q else 40)
    args.warm_steps = max(1, args.warm_steps or (2 if q else 5))
    args.warmup = args.warmup if args.warmup is not None else (1 if q else 3)
    args.repeats, args.block = args.repeats or (2 if q else 5), args.block or (0.2 if q else 0.5)
    args.precision = args.precision or ("bf16" if cuda else "fp32")
    suffix = torch.device(args.device).type + ("-quick" if q else "")
    args.out = args.out or RESULTS / f"gpu_check-{suffix}.json"
    return args


def main() -> None:
    args = parse()
    device = setup(args)
    signal.signal(signal.SIGTERM, _stop)
    results: dict[str, Any] = {"gpu": gpu_facts(device), "tests": args.tests, "seconds": {}}
    contention: list[float | None] = []
    try:
        run_sections(args, device, results, contention)
    except Stopped:
        results["stopped"] = "SIGTERM (the timeout) arrived before every section ended"
    notes = [contention_note(contention, contention_limit(args)),
             "views: on a batch already on the device; step / bare: the bare encoder passes "
             "run on views made beforehand, the step makes its own",
             "end to end: median step after the warm-up (the mean includes the epoch-end "
             "checkpoints); the JPEGs were just written, so the loader reads them from the "
             "page cache: it measures decoding, not the disk"]
    if args.quick:
        notes.append(f"--quick: tiny sizes on {device.type}, a smoke run of every path; the "
                     "targets apply to the full run on a GPU")
    save("gpu_check", args, device, table(results, args), {**results, "contention": contention},
         notes)
    failed = [k for k, s in [*results.items(), *results["steps"].items()]
              if isinstance(s, dict) and "error" in s]
    if failed or "stopped" in results:
        raise SystemExit(f"gpu_bench: {', '.join(failed) or 'stopped'} did not finish")


if __name__ == "__main__":
    main()
