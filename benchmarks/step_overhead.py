"""Step overhead: a full training step over the bare encoder passes its method needs.

Full step (as ``anyssl.train.Trainer`` runs it): views from a uint8 batch, encoder, heads,
loss, queue, optimizer and lr schedule, EMA update. Bare: only the encoder passes on views made
beforehand -- SimCLR 2 forward+backward; MoCo 1 forward+backward + 1 forward without grad (the
key encoder); BYOL 2 forward+backward + 2 without grad (the target). The step is also timed
with its views made beforehand, and the views alone, so what the views cost and what the rest
costs show apart.
The four timings are interleaved within each repeat, in an order rotated from repeat to
repeat, so a change of load or clock hits all of them alike.

    .venv/bin/python benchmarks/step_overhead.py           # ResNet-18, 32 px, batch 256: ~4 min
    .venv/bin/python benchmarks/step_overhead.py --quick   # batch 32: < 1 min
"""

from __future__ import annotations

import argparse
import copy
import functools
from typing import Any

import torch
from _common import (
    autocast,
    clean_run,
    common_parser,
    contention_limit,
    contention_note,
    int_list,
    markdown_table,
    median,
    save,
    setup,
    str_list,
    timed,
)
from _runs import build_run, train_step, uint8_batch
from torch import Tensor, nn

TARGET = 1.15  # step / bare encoder passes
#: Encoder passes per step: (forward+backward, forward without grad).
BARE_PASSES = {"simclr": (2, 0), "mocov1": (1, 1), "mocov2": (1, 1), "byol": (2, 2)}


class FixedViews:
    """Stands in for a ``ViewGenerator``: returns views made once, to time a step without them."""

    def __init__(self, views: list[Tensor]) -> None:
        self.views, self.n_views = views, len(views)

    def __call__(self, x: Any) -> list[Tensor]:
        return self.views

    def manual_seed(self, seed: int) -> None:
        """Nothing is random here."""


def bare_passes(encoder: nn.Module, target: nn.Module, views: list[Tensor], n_grad: int,
                n_nograd: int, device: torch.device, precision: str) -> None:
    """``n_grad`` forward+backward passes of ``encoder`` and ``n_nograd`` forward passes of
    ``target`` (its frozen copy) on ``views``; nothing else."""
    encoder.zero_grad(set_to_none=True)
    with autocast(device, precision):
        out = torch.stack([encoder(v).float().sum() for v in views[:n_grad]]).sum()
    out.backward()
    with torch.no_grad(), autocast(device, precision):
        for v in views[:n_nograd]:
            target(v)


def measure(method: str, size: int, args: argparse.Namespace, device: torch.device,
            contention: list[float | None]) -> dict[str, Any]:
    """Median seconds of the full step, the step on precomputed views and the bare passes."""
    if method not in BARE_PASSES:
        raise SystemExit(f"unknown method {method!r}; valid: {', '.join(BARE_PASSES)}")
    m, opt, sched = build_run(method, args.encoder, size, device)
    encoder: nn.Module = m.encoder
    target = copy.deepcopy(encoder).requires_grad_(False)
    x = uint8_batch(args.batch_size, size, device)
    views_gen = m.views
    with autocast(device, args.precision):
        fixed = FixedViews([v.contiguous() for v in views_gen(x)])
    n_grad, n_nograd = BARE_PASSES[method]
    times: dict[str, list[float]] = {"step": [], "step_fixed_views": [], "bare": [],
                                     "views": []}
    bare_fn = functools.partial(bare_passes, encoder, target, fixed.views, n_grad, n_nograd,
                                device, args.precision)

    def make_views() -> None:
        with autocast(device, args.precision):
            views_gen(x)

    def run(kind: str, step_index: int) -> float:
        if kind == "bare":
            return timed(bare_fn, device)
        if kind == "views":
            return timed(make_views, device)
        m.views = views_gen if kind == "step" else fixed
        try:
            return timed(functools.partial(train_step, m, opt, sched, x, step_index, device,
                                           args.precision), device)
        finally:
            m.views = views_gen

    def round_(r: int) -> dict[str, float]:
        kinds = list(times)  # rotated each round: no kind always runs first
        order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
        return {k: run(k, 2 * r + (k == "step_fixed_views")) for k in order}

    for r in range(args.warmup + args.repeats):
        kept = contention if r >= args.warmup else []
        t = clean_run(functools.partial(round_, r), args, kept)
        print(f"  {method} repeat {r}: step {t['step']:.3f}s, views precomputed "
              f"{t['step_fixed_views']:.3f}s, bare {t['bare']:.3f}s, views {t['views']:.3f}s",
              flush=True)
        if r >= args.warmup:
            for k, v in t.items():
                times[k].append(v)
    med = {k: median(v) for k, v in times.items()}
    return {"method": method, "size": size, "passes": {"grad": n_grad, "no_grad": n_nograd},
            "seconds": med, "all_seconds": times, "ratio": med["step"] / med["bare"],
            "ratio_fixed_views": med["step_fixed_views"] / med["bare"]}


def main() -> None:
    p = common_parser(__doc__.splitlines()[0])
    p.add_argument("--methods", type=str_list, default=None,
                   help="comma-separated, of simclr, mocov1, mocov2, byol "
                        "(default: simclr,mocov2)")
    p.add_argument("--encoder", default="resnet18", help="image encoder (default: resnet18)")
    p.add_argument("--sizes", "--size", type=int_list, default=[32],
                   help="view sizes in px (default: 32; ResNets get the small stem below 64)")
    p.add_argument("--batch-size", type=int, default=None, help="default 256 (quick: 32)")
    args = p.parse_args()
    args.methods = args.methods or ["simclr", "mocov2"]
    args.batch_size = args.batch_size or (32 if args.quick else 256)
    args.repeats = args.repeats or (2 if args.quick else 3)
    device = setup(args)

    contention: list[float | None] = []
    results = [measure(meth, size, args, device, contention)
               for size in args.sizes for meth in args.methods]
    rows = []
    for res in results:
        s = res["seconds"]
        rows.append([res["method"], args.encoder, res["size"], args.batch_size,
                     f"{res['passes']['grad']} + {res['passes']['no_grad']}",
                     round(s["step"], 3), round(s["step_fixed_views"], 3), round(s["bare"], 3),
                     round(s["views"], 3), f"{res['ratio']:.3f}",
                     f"{res['ratio_fixed_views']:.3f}", "yes" if res["ratio"] <= TARGET else "no"])
    headers = ["method", "encoder", "size", "batch", "passes (fwd+bwd + fwd)", "step s",
               "step, views precomputed s", "bare encoder s", "views alone s", "step / bare",
               "precomputed / bare", f"<= {TARGET}"]
    notes = [contention_note(contention, contention_limit(args))]
    save("step_overhead", args, device, markdown_table(headers, rows),
         {"rows": results, "contention": contention}, notes)


if __name__ == "__main__":
    main()
