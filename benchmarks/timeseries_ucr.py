"""UCR benchmark: pre-train a method on each data set's TRAIN split without labels, then TS2Vec's
protocol (RBF SVM, C by 5-fold grid search on the TRAIN features, accuracy on TEST), next to
the accuracy TS2Vec reports (Yue et al. 2022, Table 8 of the appendix, the same splits).

One recipe for every data set, as the paper does: the method's defaults (for ``ts2vec``: batch
8, AdamW lr 1e-3, 200 iterations for data of at most 100,000 values, else 600).

    .venv/bin/python benchmarks/timeseries_ucr.py --fetch-aeon benchmarks/data
    .venv/bin/python benchmarks/timeseries_ucr.py --data gunpoint benchmarks/data/ArrowHead \
        benchmarks/data/ItalyPowerDemand

``--fetch-aeon DIR`` downloads aeon's wheel from PyPI (``pip download aeon --no-deps``) and
extracts the ArrowHead and ItalyPowerDemand folders it carries into DIR; the data are not part
of anyssl.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import torch
from _common import RESULTS, markdown_table, save

#: TS2Vec's accuracies on these UCR data sets (Yue et al. 2022, appendix Table 8).
PUBLISHED_TS2VEC = {"GunPoint": 0.987, "ArrowHead": 0.817, "ItalyPowerDemand": 0.960}
#: The UCR data sets aeon's wheel carries besides GunPoint (which anyssl ships).
AEON_SETS = ("ArrowHead", "ItalyPowerDemand")


def fetch_aeon(dest: Path) -> None:
    """Extract ``AEON_SETS`` from aeon's wheel (downloaded with pip) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "aeon", "--no-deps", "-q",
                        "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("aeon-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                parts = Path(name).parts
                if len(parts) == 5 and parts[:3] == ("aeon", "datasets", "data") and (
                        parts[3] in AEON_SETS and name.endswith((".ts", ".tsv"))):
                    (dest / parts[3]).mkdir(exist_ok=True)
                    (dest / parts[3] / parts[4]).write_bytes(zf.read(name))
    print(f"extracted {', '.join(AEON_SETS)} into {dest}")


def run_one(data: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Train and evaluate on one data set; returns its row."""
    from anyssl.api import train

    name = Path(data).name if "/" in data else data
    start = time.perf_counter()
    result = train(modality="timeseries", method=args.method, data=data, seed=args.seed,
                   out=str(out / name), eval_protocols=["svm"], device=args.device,
                   epochs=args.epochs, encoder=args.encoder)
    seconds = time.perf_counter() - start
    report = result.eval or {}
    acc = report["pretrained"]["svm"]["top1"]
    rand = report["random_init"]["svm"]["top1"]
    key = "GunPoint" if name.lower() == "gunpoint" else name
    return {"dataset": key, "accuracy": acc, "random_init": rand,
            "ts2vec_published": PUBLISHED_TS2VEC.get(key), "seconds": round(seconds, 1),
            "seed": args.seed}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs="+", default=["gunpoint"],
                   help="data sets: names (gunpoint, ucr:NAME) or NAME folders")
    p.add_argument("--method", default="ts2vec")
    p.add_argument("--encoder", default=None)
    p.add_argument("--epochs", type=int, default=None, help="default: the data set's budget")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--fetch-aeon", type=Path, default=None, metavar="DIR")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--quick", action="store_true", help="2 epochs per data set (smoke test)")
    args = p.parse_args()
    if args.fetch_aeon is not None:
        fetch_aeon(args.fetch_aeon)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.epochs = 2
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_one(d, args, Path(tmp)) for d in args.data]
    table_rows = [[r["dataset"], f"{r['accuracy']:.3f}", f"{r['random_init']:.3f}",
                   r["ts2vec_published"] or "-", r["seconds"], r["seed"]] for r in rows]
    mean = sum(r["accuracy"] for r in rows) / len(rows)
    pub = [r["ts2vec_published"] for r in rows if r["ts2vec_published"] is not None]
    notes = [f"mean accuracy {mean:.3f}" + (
        f" (TS2Vec published mean on these: {sum(pub) / len(pub):.3f})"
        if len(pub) == len(rows) else "")]
    table = markdown_table(["dataset", f"{args.method} SVM acc", "random init", "TS2Vec (paper)",
                            "train+eval s", "seed"], table_rows)
    save(f"timeseries_ucr-{args.method}", args, torch.device(args.device), table, rows, notes)


if __name__ == "__main__":
    RESULTS.mkdir(exist_ok=True)
    main()
