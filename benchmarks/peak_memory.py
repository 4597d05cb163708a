"""Peak memory of a training step: MoCo v2 vs SimCLR at equal batch, and memory vs batch size.

Every configuration runs in a fresh subprocess, so peaks never mix. There the method (paper
defaults, its recipe's views), optimizer and a uint8 batch are built, ``--warmup`` steps run
(they create the optimizer state), the gradients are freed, and the peak over ``--repeats``
more full training steps (default 1) is measured:

- CPU: resident memory. glibc is told to serve every allocation over 64 KiB with its own mmap
  (``MALLOC_MMAP_THRESHOLD_=65536``), so a freed tensor goes back to the OS at once and the
  resident set follows live memory; the high-water mark ``VmHWM`` is reset just before the step
  (``5 > /proc/self/clear_refs``). step = ``VmHWM`` - ``VmRSS`` before the step.
- CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``; step = peak -
  ``memory_allocated`` before the step.

"state" is what lives across steps, summed exactly over the tensors: parameters, buffers (MoCo's
queue, the momentum copies, BatchNorm statistics) and optimizer state. "step" is what a step
adds on top at its peak: views, activations kept for backward, gradients, temporaries.

    .venv/bin/python benchmarks/peak_memory.py            # simclr + mocov2 at 64..512, CPU
    .venv/bin/python benchmarks/peak_memory.py --quick    # batches 16 and 32, < 1 min
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from typing import Any

import torch
from _child import emit, proc_status, spawn
from _common import (
    common_parser,
    int_list,
    markdown_table,
    save,
    setup,
    str_list,
)
from _runs import build_run, train_step, uint8_batch

MIB = 2**20


def state_bytes(method: torch.nn.Module, opt: torch.optim.Optimizer) -> int:
    """Bytes of the distinct parameter, buffer and optimizer-state tensors."""
    tensors = {t.data_ptr(): t for t in [*method.parameters(), *method.buffers()]}
    for st in opt.state.values():
        tensors.update({t.data_ptr(): t for t in st.values() if isinstance(t, torch.Tensor)})
    return sum(t.numel() * t.element_size() for t in tensors.values())


def child(method: str, batch: int, args: argparse.Namespace) -> dict[str, Any]:
    """Measure one configuration in this (fresh) process."""
    device = setup(args)
    cuda = device.type == "cuda"
    m, opt, sched = build_run(method, args.encoder, args.size, device)
    x = uint8_batch(batch, args.size, device)
    for i in range(max(1, args.warmup)):  # at least one: it creates the optimizer state
        train_step(m, opt, sched, x, i, device, args.precision)
    opt.zero_grad(set_to_none=True)
    gc.collect()
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current resident set
        before = proc_status("VmRSS")
    for i in range(args.repeats or 1):
        train_step(m, opt, sched, x, 100 + i, device, args.precision)
    if cuda:
        torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) if cuda else proc_status("VmHWM")
    return {"method": method, "batch": batch, "state_mib": state_bytes(m, opt) / MIB,
            "before_mib": before / MIB, "peak_mib": peak / MIB, "step_mib": (peak - before) / MIB}


def run_child(method: str, batch: int, args: argparse.Namespace) -> dict[str, Any]:
    """``child`` in a fresh interpreter with glibc's mmap threshold fixed."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", f"{method}:{batch}",
           "--device", args.device, "--precision", args.precision, "--threads", str(args.threads),
           "--encoder", args.encoder, "--size", str(args.size),
           "--warmup", str(args.warmup), "--repeats", str(args.repeats or 1)]
    result = spawn(cmd, f"{method} at batch {batch}")
    print(f"  {method} batch {batch}: state {result['state_mib']:.0f} MiB, step "
          f"{result['step_mib']:.0f} MiB", flush=True)
    return result


def main() -> None:
    p = common_parser(__doc__.splitlines()[0])
    p.add_argument("--methods", type=str_list, default=["simclr", "mocov2"],
                   help="comma-separated (default: simclr,mocov2)")
    p.add_argument("--batch-sizes", "--batch-size", type=int_list, default=None,
                   help="comma-separated (default: 64,128,256,512; quick: 16,32)")
    p.add_argument("--encoder", default="resnet18", help="image encoder (default: resnet18)")
    p.add_argument("--size", "--sizes", type=int, default=32, help="view size in px (default 32)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        method, batch = args.child.split(":")
        emit(child(method, int(batch), args))
        return
    args.batch_sizes = args.batch_sizes or ([16, 32] if args.quick else [64, 128, 256, 512])
    device = setup(args)
    results = [run_child(meth, b, args) for b in args.batch_sizes for meth in args.methods]
    rows = [[r["method"], r["batch"], round(r["state_mib"]), round(r["step_mib"]),
             round(r["state_mib"] + r["step_mib"]), round(r["step_mib"] / r["batch"], 2),
             round(r["peak_mib"])] for r in results]
    headers = ["method", "batch", "state MiB", "step MiB", "state + step MiB",
               "step MiB / sample", "process peak MiB"]
    notes = []
    by = {(r["method"], r["batch"]): r for r in results}
    for b in args.batch_sizes:
        if ("mocov2", b) in by and ("simclr", b) in by:
            moco, simclr = (by[(k, b)]["state_mib"] + by[(k, b)]["step_mib"]
                            for k in ("mocov2", "simclr"))
            verdict = "below" if moco < simclr else "NOT below"
            notes.append(f"batch {b}: mocov2 {moco:.0f} MiB is {verdict} simclr {simclr:.0f} MiB "
                         f"({moco / simclr:.2f}x)")
    where = "CUDA max_memory_allocated" if device.type == "cuda" else "CPU VmHWM - VmRSS"
    notes.append(f"measured with {where}, one fresh process per row")
    save("peak_memory", args, device, markdown_table(headers, rows), {"rows": results}, notes)


if __name__ == "__main__":
    main()
