"""The papers' image tables at small scale, one command each, on Fashion-MNIST (Debian's
``dataset-fashion-mnist``): a seeded, stratified subset of the training images for
pre-training, the 10,000 test images for evaluation, anyssl's ``smallcnn`` at 28 px, one CPU.

Tables (``--table``):
- ``splitbn``: MoCo v2 with the one-process guard against the BatchNorm shortcut (split
  BatchNorm in 8 groups + a shuffled key batch, the MoCo CIFAR-10 demo's recipe; the default)
  and without it (``split_bn=0``).
- ``ablation``: MoCo v2's Table 1 (Chen et al. 2020): MoCo v1, then + MLP head (temperature
  0.2), + aug+, + cosine schedule (= MoCo v2), each cumulative.
- ``semi``: SimCLR's Table 7 (Chen et al. 2020): SimCLR fine-tuned on 1% and 10% of the
  training labels against the same encoder trained from scratch on those labels alone.
- ``e2e``: MoCo's Figure 3 (He et al. 2020): end-to-end (in-batch negatives, both encoders
  the same and trained: SimCLR's loss with MoCo v2's head, temperature, views and optimizer) as
  the batch grows, against MoCo v2 as the queue grows at a fixed batch: accuracy and the
  process's peak memory during training.
- ``methods``: every method family (SimCLR, MoCo v2, BYOL, SimSiam, Barlow Twins, VICReg, MoCo
  v3, NNCLR, DINO, SwAV) at the same epochs, each with its own defaults, on the small CNN and
  on ViT-Ti (``vit_tiny``, 4 px patches).

Every run is one ``anyssl.api.train`` call in a fresh process (so its peak memory is its own),
evaluated with the core protocols (linear probe, kNN k=200) on the pre-trained encoder and the
same encoder at its random initial weights.

    .venv/bin/python benchmarks/image_tables.py --table splitbn
    .venv/bin/python benchmarks/image_tables.py --table ablation --epochs 20
    .venv/bin/python benchmarks/image_tables.py --quick --table semi   # a smoke run
    .venv/bin/python benchmarks/image_tables.py --table methods --encoders smallcnn \
        --train-size 5000 --out benchmarks/results/image_tables-methods-smallcnn-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _child import emit, proc_status, reset_peak, spawn
from _common import common_parser, markdown_table, save, setup
from _image_runs import TABLES, Run, notes_for, rows_for


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one run in this (fresh) process."""
    import torch

    from anyssl.api import evaluate_checkpoint, train

    torch.set_num_threads(spec.pop("threads"))
    protocols, options = tuple(spec.pop("protocols")), spec.pop("options")
    fractions = spec.pop("fractions")
    reset_peak()  # the high-water mark from here on: the training run's
    start = time.perf_counter()
    result = train(spec)
    seconds = time.perf_counter() - start
    peak = proc_status("VmHWM") / 2**20  # MiB
    evals: dict[str, Any] = {}
    if protocols:
        evals["frozen"] = evaluate_checkpoint(result.checkpoint, protocols, seed=spec["seed"])
    for fraction in fractions:
        evals[f"finetune_{fraction}"] = evaluate_checkpoint(
            result.checkpoint, ("finetune",), fraction=fraction, seed=spec["seed"],
            options=options)
    return {"train_s": seconds, "peak_mib": peak, "eval": evals}


def run_child(run: Run, args: argparse.Namespace, data: Path, work: Path) -> dict[str, Any]:
    """``child`` for ``run`` in a fresh interpreter."""
    spec = run.spec(args, data, work)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)]
    result = spawn(cmd, f"run {run.label!r}")
    print(f"  {run.label}: trained in {result['train_s']:.0f} s", flush=True)
    return result


def _data(args: argparse.Namespace) -> Path:
    """The Fashion-MNIST subset's IDX folder (written once under benchmarks/data/)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
    from _peer_data import missing_fashion_mnist, prepare

    reason = missing_fashion_mnist()
    if reason:
        raise SystemExit(reason)
    return prepare(args.train_size, args.test_size, args.data_seed).idx_dir


def main() -> None:
    p = common_parser(__doc__.splitlines()[0])
    p.add_argument("--table", choices=sorted(TABLES), required=False)
    p.add_argument("--epochs", type=int, default=None, help="pre-training epochs (default 10)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--train-size", type=int, default=None, help="default 10000 (quick: 1000)")
    p.add_argument("--test-size", type=int, default=None, help="default 10000 (quick: 1000)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--encoders", nargs="+", default=["smallcnn", "vit_tiny"],
                   help="encoders of the methods table (default: smallcnn vit_tiny)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        emit(child(json.loads(args.child)))
        return
    if args.table is None:
        p.error("--table is required")
    args.epochs = args.epochs or (1 if args.quick else 10)
    args.train_size = args.train_size or (1000 if args.quick else 10_000)
    args.test_size = args.test_size or (1000 if args.quick else 10_000)
    device = setup(args)
    data = _data(args)
    results = []
    with tempfile.TemporaryDirectory(prefix="anyssl-tables-") as tmp:
        for seed in args.seeds:
            for run in TABLES[args.table](args):
                results.append({"run": run.label, "seed": seed, **run.describe(),
                                **run_child(run.with_seed(seed), args, data, Path(tmp))})
    headers, rows = rows_for(args.table, results)
    save(f"image_tables-{args.table}", args, device, markdown_table(headers, rows),
         {"results": results}, notes_for(args.table))


if __name__ == "__main__":
    main()
