"""CLIP benchmark: quality on the OpenMoji held-out split, step overhead, and (on a GPU) the
throughput of a ResNet-50 + 12-layer text tower step.

* ``quality`` (default): ``anyssl.api.train(modality="image-text", method="clip")`` per seed on
  the embedded OpenMoji (1,707 train / 427 held-out emoji), then retrieval R@1/R@5 both ways,
  zero-shot accuracy over the 12 Unicode groups and the linear probe, pretrained next to random
  init, with chance and majority-class rates, wall and CPU seconds.
* ``overhead``: a full CLIP step as the trainer runs it (views, both towers, projections, loss,
  AdamW, schedule, logit-scale clamp) over the bare two-tower passes (image tower and text tower
  forward+backward on views made beforehand). Target <= 1.15.
* ``throughput``: images/s of full CLIP steps with ``--image-tower resnet50 --text-layers 12``
  (width 512, 8 heads, context 77), synthetic 224 px images and tokens; bf16 with
  ``--precision bf16`` on CUDA.

    .venv/bin/python benchmarks/clip.py --seeds 0 1 2          # quality, ~1 min per seed
    .venv/bin/python benchmarks/clip.py --mode overhead         # ~1 min
    .venv/bin/python benchmarks/clip.py --mode throughput --device cuda --precision bf16
"""

from __future__ import annotations

import argparse
import copy
import functools
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import (
    autocast,
    clean_run,
    common_parser,
    contention_limit,
    contention_note,
    markdown_table,
    median,
    save,
    setup,
    timed,
)
from torch import nn
from torch.utils.data import default_collate

TARGET = 1.15


# ---- quality ------------------------------------------------------------------------------------
def quality_row(seed: int, out: Path, device: str, epochs: int | None) -> dict[str, Any]:
    """Train and evaluate one seed on the embedded default; the report's numbers."""
    from anyssl.api import train

    wall, cpu = time.perf_counter(), time.process_time()
    result = train(modality="image-text", method="clip", seed=seed, out=str(out / str(seed)),
                   device=device, epochs=epochs)
    rep = result.eval or {}
    pre, rnd = rep["pretrained"], rep["random_init"]
    keep = ("i2t_r1", "t2i_r1", "i2t_r5", "t2i_r5", "chance_i2t_r1", "chance_t2i_r1",
            "chance_i2t_r5", "chance_t2i_r5")
    row: dict[str, Any] = {"seed": seed, "wall_s": round(time.perf_counter() - wall, 1),
                           "cpu_s": round(time.process_time() - cpu, 1)}
    for col, res in (("", pre), ("random_", rnd)):
        row.update({f"{col}{k}": res["retrieval"][k] for k in keep})
        row[f"{col}zeroshot"] = res["zeroshot"]["top1"]
        row[f"{col}linear"] = res["linear"]["top1"]
    row["majority"], row["chance"] = pre["zeroshot"]["majority"], pre["zeroshot"]["chance"]
    return row


def _pm(rows: list[dict[str, Any]], key: str) -> str:
    vals = [100 * r[key] for r in rows]
    sd = statistics.pstdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.mean(vals):.1f} +- {sd:.1f}"


def quality(args: argparse.Namespace, device: torch.device) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for seed in args.seeds:
            rows.append(quality_row(seed, Path(tmp), str(device), args.epochs))
            print(rows[-1], flush=True)
    metrics = [("image->text R@1", "i2t_r1", "chance_i2t_r1"),
               ("text->image R@1", "t2i_r1", "chance_t2i_r1"),
               ("image->text R@5", "i2t_r5", "chance_i2t_r5"),
               ("text->image R@5", "t2i_r5", "chance_t2i_r5"),
               ("zero-shot top-1 (12 groups)", "zeroshot", "majority"),
               ("linear probe top-1 (12 groups)", "linear", "majority")]
    table_rows = [[name, _pm(rows, key), _pm(rows, f"random_{key}"),
                   _pm(rows, ref) if ref else "", ] for name, key, ref in metrics]
    table_rows.append(["chance (1/12)", f"{100 * rows[0]['chance']:.1f}", "", ""])
    headers = ["metric (%)", "CLIP", "random init", "chance R@k / majority class"]
    timing = (f"seeds {args.seeds}: wall {statistics.mean(r['wall_s'] for r in rows):.0f} s, "
              f"CPU {statistics.mean(r['cpu_s'] for r in rows):.0f} s per seed (train + eval)")
    save("clip_quality", args, device, markdown_table(headers, table_rows), {"rows": rows},
         [timing])


# ---- step overhead -----------------------------------------------------------------------------
def _openmoji_run(device: torch.device, batch: int, encoder_args: dict[str, Any]) -> Any:
    from anyssl.build import build_parts
    from anyssl.train.optim import build_optimizer

    torch.manual_seed(0)
    parts = build_parts("image-text", "clip", encoder_args=encoder_args, need_test=False)
    m = parts.method.to(device)
    x, _ = default_collate([parts.train_set[i] for i in range(batch)])
    x = {k: v.to(device) for k, v in x.items()}
    opt = build_optimizer("adamw", m, lr=5e-4, weight_decay=0.2, momentum=0.9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    return m, opt, sched, x


def full_step(m: Any, opt: Any, sched: Any, x: Any, step: int, device: torch.device,
              precision: str) -> None:
    """One step as ``anyssl.train.Trainer`` runs it, minus logging and checkpoints."""
    m.views.manual_seed(step)
    with autocast(device, precision):
        loss, _ = m.training_step((x, None))
    if not bool(torch.isfinite(loss.detach())):
        raise FloatingPointError(f"loss became {loss.item()} at step {step}")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    m.on_step_end(step, 1000)


def bare_passes(towers: dict[str, nn.Module], views: dict[str, Any], device: torch.device,
                precision: str) -> None:
    """Forward + backward of each tower on views made beforehand; nothing else."""
    for tower in towers.values():
        tower.zero_grad(set_to_none=True)
    with autocast(device, precision):
        out = torch.stack([tower(views[k]).float().sum() for k, tower in towers.items()]).sum()
    out.backward()


def overhead(args: argparse.Namespace, device: torch.device) -> None:
    enc_args = {"image": args.image_tower or "smallcnn", "text": args.text_tower}
    m, opt, sched, x = _openmoji_run(device, args.batch_size, enc_args)
    views = m.views(x)[0]
    towers = {k: copy.deepcopy(m.encoder.tower(k)) for k in m.keys}
    times: dict[str, list[float]] = {"step": [], "bare": []}
    contention: list[float | None] = []

    def round_(r: int) -> dict[str, float]:
        order = ["step", "bare"] if r % 2 == 0 else ["bare", "step"]
        fns = {"step": functools.partial(full_step, m, opt, sched, x, r, device,
                                         args.precision),
               "bare": functools.partial(bare_passes, towers, views, device, args.precision)}
        return {k: timed(fns[k], device) for k in order}

    for r in range(args.warmup + args.repeats):
        t = clean_run(functools.partial(round_, r), args, contention if r >= args.warmup else [])
        print(f"  repeat {r}: step {t['step']:.4f}s, bare {t['bare']:.4f}s", flush=True)
        if r >= args.warmup:
            for k, v in t.items():
                times[k].append(v)
    step, bare = median(times["step"]), median(times["bare"])
    rows = [["clip", f"{enc_args['image']} + {args.text_tower}", args.batch_size, round(step, 4),
             round(bare, 4), f"{step / bare:.3f}", "yes" if step / bare <= TARGET else "no"]]
    headers = ["method", "towers", "batch", "full step s", "bare tower passes s",
               "step / bare", f"<= {TARGET}"]
    save("clip_overhead", args, device, markdown_table(headers, rows),
         {"seconds": times, "ratio": step / bare},
         [contention_note(contention, contention_limit(args))])


# ---- throughput --------------------------------------------------------------------------------
def throughput(args: argparse.Namespace, device: torch.device) -> None:
    from anyssl.methods.clip import CLIP
    from anyssl.modalities.image_text.encoders import dual
    from anyssl.modalities.image_text.recipes import image_text_recipe
    from anyssl.train.optim import build_optimizer

    size, ctx, batch = args.image_size, 77, args.batch_size
    torch.manual_seed(0)
    enc = dual(in_channels=3, image_size=size, vocab_size=49408, context_length=ctx,
               image=args.image_tower, text="transformer", text_width=512,
               text_layers=args.text_layers, text_heads=8)
    ds = argparse.Namespace(encoder_kwargs={"image_size": size})
    m = CLIP(enc, image_text_recipe("clip", ds), embed_dim=512).to(device)
    if device.type == "cuda":
        m = m.to(memory_format=torch.channels_last)
    opt = build_optimizer("adamw", m, lr=5e-4, weight_decay=0.2, momentum=0.9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 49408, (batch, 1, ctx), generator=g)
    ids[:, :, 0], ids[:, :, -1] = 1, 2  # START ... END
    x = {"image": torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8,
                                generator=g).to(device), "text": ids.to(device)}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    secs = []
    for r in range(args.warmup + args.repeats):
        t = timed(functools.partial(full_step, m, opt, sched, x, r, device, args.precision),
                  device)
        print(f"  repeat {r}: {t:.3f}s ({batch / t:.1f} images/s)", flush=True)
        if r >= args.warmup:
            secs.append(t)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    rows = [[f"{args.image_tower} + {args.text_layers}-layer text", size, batch, args.precision,
             round(median(secs), 3), round(batch / median(secs), 1),
             "-" if peak is None else f"{peak:.1f}"]]
    headers = ["towers", "px", "batch", "precision", "step s", "images/s", "peak GiB"]
    save("clip_throughput", args, device, markdown_table(headers, rows), {"seconds": secs})


def main() -> None:
    p = common_parser(__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("quality", "overhead", "throughput"), default="quality")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs", type=int, default=None, help="default: the dataset's (30)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="overhead: 256 (quick 64); throughput: 256 (quick 8)")
    p.add_argument("--text-tower", default="bag", help="overhead: bag or transformer")
    p.add_argument("--image-tower", default=None,
                   help="image encoder (overhead: smallcnn; throughput: resnet50)")
    p.add_argument("--text-layers", type=int, default=12, help="throughput: text layers")
    p.add_argument("--image-size", type=int, default=224, help="throughput: px")
    args = p.parse_args()
    if args.mode == "throughput":
        args.image_tower = args.image_tower or "resnet50"
        args.batch_size = args.batch_size or (8 if args.quick else 256)
    args.batch_size = args.batch_size or (64 if args.quick else 256)
    args.repeats = args.repeats or (3 if args.quick else 10)
    device = setup(args)
    {"quality": quality, "overhead": overhead, "throughput": throughput}[args.mode](args, device)


if __name__ == "__main__":
    main()
