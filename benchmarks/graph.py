"""Graph benchmark: GraphCL on MUTAG (embedding + SVM, 10-fold CV, GraphCL/InfoGraph protocol)
and GRACE on Cora (embedding + logistic regression on the standard public split, DGI protocol),
over several seeds, next to the published numbers.

One recipe per method for every data set, as the papers do (the method's defaults). MUTAG and
Cora are read from ``../shared/datasets`` (copied to a temporary folder, because PyG writes its
``processed/`` files next to ``raw/``); they are never part of anyssl.

    .venv/bin/python benchmarks/graph.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import RESULTS, markdown_table, save

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
#: (method, data spec, source folder below SHARED, protocol, published numbers)
RUNS = {
    "mutag": ("graphcl", "tu:MUTAG", "tu", "svm",
              "GraphCL 86.80 +- 1.34, InfoGraph 89.01 +- 1.13, MVGRL 89.70 +- 1.10"),
    "cora": ("grace", "planetoid:Cora", "planetoid", "linear",
             "DGI 82.3 +- 0.6, GRACE 81.9, MVGRL 83.5, BGRL 82.7"),
}


def run_one(key: str, seed: int, root: Path, out: Path, device: str,
            epochs: int | None) -> dict[str, Any]:
    """Train and evaluate one (data set, seed); returns its row."""
    from anyssl.api import train

    method, data, _, protocol, _ = RUNS[key]
    start = time.perf_counter()
    result = train(modality="graph", method=method, data=data, data_args={"root": str(root)},
                   seed=seed, out=str(out / f"{key}-{seed}"), device=device, epochs=epochs,
                   eval_protocols=[protocol])
    seconds = time.perf_counter() - start
    report = result.eval or {}
    return {"dataset": key, "method": method, "seed": seed, "protocol": protocol,
            "accuracy": report["pretrained"][protocol]["top1"],
            "random_init": report["random_init"][protocol]["top1"],
            "seconds": round(seconds, 1)}


def summary(rows: list[dict[str, Any]], key: str) -> list[Any]:
    """One table row: mean +- std over seeds of the pre-trained and random-init accuracy."""
    mine = [r for r in rows if r["dataset"] == key]
    acc = [100 * r["accuracy"] for r in mine]
    rnd = [100 * r["random_init"] for r in mine]
    sd = statistics.pstdev(acc) if len(acc) > 1 else 0.0
    method, _, _, protocol, published = RUNS[key]
    return [key, method, protocol, f"{statistics.mean(acc):.2f} +- {sd:.2f}",
            " ".join(f"{a:.2f}" for a in acc), f"{statistics.mean(rnd):.2f}", published,
            f"{statistics.mean(r['seconds'] for r in mine):.0f}"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=list(RUNS), choices=list(RUNS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=None, help="default: the data set's budget")
    p.add_argument("--device", default="cpu")
    p.add_argument("--shared", type=Path, default=SHARED)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--quick", action="store_true", help="1 seed, 2 epochs (smoke test)")
    args = p.parse_args()
    if args.quick:
        args.seeds, args.epochs = args.seeds[:1], 2
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.datasets:
            src = args.shared / RUNS[key][2]
            if not src.is_dir():
                raise SystemExit(f"{src} not found: point --shared at the shared datasets folder")
            root = Path(tmp) / RUNS[key][2]
            shutil.copytree(src, root)
            for seed in args.seeds:
                rows.append(run_one(key, seed, root, Path(tmp) / "runs", args.device,
                                    args.epochs))
                print(rows[-1], flush=True)
    table = markdown_table(["data", "method", "protocol", "accuracy % (mean +- std)", "per seed",
                            "random init %", "published", "train+eval s / seed"],
                           [summary(rows, k) for k in args.datasets])
    save("graph", args, torch.device(args.device), table, rows,
         [f"seeds {args.seeds}, {torch.get_num_threads()} torch threads"])


if __name__ == "__main__":
    RESULTS.mkdir(exist_ok=True)
    main()
