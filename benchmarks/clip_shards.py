"""CLIP from shards against CLIP from memory on OpenMoji: does the data path change the result?

The embedded OpenMoji (the image-text modality's default) is written to WebDataset shards with
``anyssl shards openmoji OUT/train --modality image-text --image-format png --split train``
(and ``--split test`` to ``OUT/test``): png is lossless, so the shards hold the in-memory
pixels, captions, labels, class names, prompt templates and suggested epochs. Then, per seed,
CLIP trains with the default recipe on both (same seed, same epochs): ``memory`` from
``openmoji`` (decoded in memory, a seeded permutation per epoch, no loader workers) and
``shards`` from ``--data OUT/train -d test=OUT/test -d context_length=32`` (OpenMoji's
context; decoded on access in loader workers, the shard-local ``epoch_order``). Each run
evaluates on the same 427 held-out pairs (the tokenizer is trained on the same captions in the
same order, so it is the same), and the script prints retrieval R@1/R@5, zero-shot top-1 and
the linear probe, mean +- std over the seeds, for both sides. Only the order of the samples
within an epoch differs, so the two columns should agree within the seed-to-seed spread.

    .venv/bin/python benchmarks/clip_shards.py --seeds 0 1 2     # ~3 min per seed on 2 cores
    .venv/bin/python benchmarks/clip_shards.py --seeds 0 --epochs 5 --quick
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import common_parser, markdown_table, save, setup

#: OpenMoji's caption context (the shards dataset's default is the manifests' 77).
OPENMOJI_CONTEXT = 32
METRICS = (("image->text R@1", "retrieval", "i2t_r1"), ("text->image R@1", "retrieval", "t2i_r1"),
           ("image->text R@5", "retrieval", "i2t_r5"), ("text->image R@5", "retrieval", "t2i_r5"),
           ("zero-shot top-1 (12 groups)", "zeroshot", "top1"),
           ("linear probe top-1 (12 groups)", "linear", "top1"))


def write_openmoji_shards(work: Path) -> Path:
    """OpenMoji's train and test splits as png shards under ``work`` (skipped when there)."""
    for split in ("train", "test"):
        out = work / split
        cmd = [sys.executable, "-m", "anyssl", "shards", "openmoji", str(out), "--modality",
               "image-text", "--image-format", "png", "--split", split]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
        print(proc.stdout.strip().splitlines()[-1], flush=True)
    return work


def run(side: str, seed: int, shards: Path, out: Path, args: argparse.Namespace,
        device: torch.device) -> dict[str, Any]:
    """Train and evaluate one side at one seed; the pretrained metrics and the timing."""
    from anyssl.api import train

    data: dict[str, Any] = {} if side == "memory" else {
        "data": str(shards / "train"),
        "data_args": {"test": str(shards / "test"), "context_length": OPENMOJI_CONTEXT}}
    wall = time.perf_counter()
    result = train(modality="image-text", method="clip", seed=seed, device=str(device),
                   out=str(out / f"{side}-{seed}"), epochs=args.epochs, **data)
    report = (result.eval or {})["pretrained"]
    row: dict[str, Any] = {"side": side, "seed": seed,
                           "wall_s": round(time.perf_counter() - wall, 1)}
    row.update({f"{protocol}.{key}": report[protocol][key] for _, protocol, key in METRICS})
    print(row, flush=True)
    return row


def _pm(rows: list[dict[str, Any]], key: str) -> str:
    vals = [100 * r[key] for r in rows]
    sd = statistics.pstdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.mean(vals):.1f} +- {sd:.1f}"


def main() -> None:
    p = common_parser(__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs of both sides (default: OpenMoji's suggested 30)")
    p.add_argument("--work", type=Path, default=None,
                   help="where the shards and runs go (default: a temporary folder)")
    args = p.parse_args()
    device = setup(args)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        shards = write_openmoji_shards(work / "openmoji-shards")
        runs = work / f"runs-{time.strftime('%Y%m%d-%H%M%S')}"  # never an old run
        rows = [run(side, seed, shards, runs, args, device)
                for seed in args.seeds for side in ("memory", "shards")]
    sides = {s: [r for r in rows if r["side"] == s] for s in ("memory", "shards")}
    table = markdown_table(
        ["metric (%, 427 held-out pairs)", "CLIP from memory", "CLIP from shards"],
        [[name, _pm(sides["memory"], f"{protocol}.{key}"),
          _pm(sides["shards"], f"{protocol}.{key}")] for name, protocol, key in METRICS])
    walls = {s: statistics.mean(r["wall_s"] for r in rs) for s, rs in sides.items()}
    notes = [f"seeds {args.seeds}, epochs {args.epochs or 'OpenMoji default (30)'}; wall s per "
             f"seed (train + eval): memory {walls['memory']:.0f}, shards {walls['shards']:.0f}"]
    save("clip_shards", args, device, table, {"rows": rows}, notes)


if __name__ == "__main__":
    main()
