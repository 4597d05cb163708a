"""UCR/UEA benchmark: pre-train a method on each data set's TRAIN split without labels, then
TS2Vec's protocol (RBF SVM, C by 5-fold grid search on the TRAIN features, accuracy on TEST),
over several seeds, next to TS2Vec's published accuracy, the random-init encoder and, when a
checkout of TS2Vec's official code is given (``--official DIR``), the official code run on the
same arrays with the same seeds, with its accuracy and its time over anyssl's.

One recipe for every data set, as the paper does: the method's and the datasets' defaults (for
``ts2vec``: batch 8, AdamW lr 1e-3, 200 iterations for data of at most 100,000 values, else
600; TS2Vec's normalization and ``max_train_length=3000``). Data sets are names read from
``--root`` (a folder holding ``NAME/NAME_TRAIN.ts``: UCR and UEA alike), ``gunpoint`` (shipped),
``ucr:NAME`` or ``NAME`` folders::

    .venv/bin/python benchmarks/timeseries_ucr.py --root /work/ucr-aeon \\
        --data gunpoint ArrowHead ItalyPowerDemand BasicMotions JapaneseVowels --seeds 0 1 2 3 4
    .venv/bin/python benchmarks/timeseries_ucr.py --data ArrowHead --root DIR --official ts2vec/

``--fetch-aeon DIR`` downloads aeon's wheel from PyPI (``pip download aeon --no-deps``) and
extracts the UCR/UEA folders it carries into DIR; the data are not part of anyssl.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from _common import RESULTS, markdown_table, save

from anyssl.cli.train import parse_key_values

#: TS2Vec's accuracies (Yue et al. 2022, AAAI): UCR sets from the appendix's full UCR table,
#: UEA sets from the appendix's full UEA table (TS2Vec column).
PUBLISHED_UCR = {"GunPoint": 0.987, "ArrowHead": 0.817, "ItalyPowerDemand": 0.960}
PUBLISHED_UEA = {"BasicMotions": 1.000, "JapaneseVowels": 0.984}
#: The data sets aeon's wheel carries (``aeon/datasets/data``), besides GunPoint (shipped).
AEON_SETS = ("ACSF1", "ArrowHead", "BasicMotions", "ItalyPowerDemand", "JapaneseVowels",
             "OSULeaf")

#: Run inside the official checkout: TS2Vec(...).fit on our arrays, then its SVM protocol.
OFFICIAL_CHILD = """
import importlib.util, json, sys, time
import numpy as np
from ts2vec import TS2Vec
from utils import init_dl_program
spec = importlib.util.spec_from_file_location("evp", "tasks/_eval_protocols.py")
evp = importlib.util.module_from_spec(spec); spec.loader.exec_module(evp)
d = np.load(sys.argv[1]); seed, threads = int(sys.argv[2]), int(sys.argv[3])
iters = int(sys.argv[4]) if sys.argv[4] != "None" else None
device = init_dl_program("cpu", seed=seed, max_threads=threads)
model = TS2Vec(input_dims=d["train"].shape[-1], device=device, batch_size=8, lr=0.001,
               output_dims=320, max_train_length=3000)
start = time.perf_counter(); model.fit(d["train"], n_iters=iters)
fit_s = time.perf_counter() - start
tr = model.encode(d["train"], encoding_window="full_series")
te = model.encode(d["test"], encoding_window="full_series")
acc = evp.fit_svm(tr, d["y_train"]).score(te, d["y_test"])
print(json.dumps({"accuracy": float(acc), "fit_seconds": fit_s}))
"""


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


def resolve(data: str, root: Path | None) -> tuple[str, str, dict[str, Any]]:
    """``(key, --data, data_args)``: a name becomes ``ucr:NAME`` read from ``root``."""
    if data.lower() == "gunpoint":
        return "GunPoint", "gunpoint", {}
    if data.startswith("ucr:") or not ("/" in data or Path(data).exists()):
        name = data.removeprefix("ucr:")
        return name, f"ucr:{name}", ({"root": str(root)} if root is not None else {})
    return Path(data).name, data, {}


class FitClock:
    """A trainer callback that times ``fit`` alone (training, not the evaluation)."""

    def __init__(self) -> None:
        self.start, self.seconds = 0.0, 0.0

    def on_fit_start(self, trainer: Any) -> None:
        self.start = time.perf_counter()

    def on_fit_end(self, trainer: Any) -> None:
        self.seconds = time.perf_counter() - self.start


def run_anyssl(data: str, data_args: dict[str, Any], seed: int, args: argparse.Namespace,
               out: Path) -> dict[str, Any]:
    """Train and evaluate one seed; returns accuracies and the training seconds."""
    from anyssl.api import train

    clock = FitClock()
    result = train(modality="timeseries", method=args.method, data=data, data_args=data_args,
                   seed=seed, out=str(out), eval_protocols=["svm"], device=args.device,
                   epochs=args.epochs, max_steps=args.iters, encoder=args.encoder,
                   callbacks=[clock])
    report = result.eval or {}
    return {"accuracy": report["pretrained"]["svm"]["top1"],
            "random_init": report["random_init"]["svm"]["top1"],
            "fit_seconds": round(clock.seconds, 2), "notes": result.notes}


def run_official(data: str, data_args: dict[str, Any], seed: int, args: argparse.Namespace,
                 tmp: Path) -> dict[str, Any]:
    """TS2Vec's official code on the arrays anyssl reads (same normalization), one seed."""
    from anyssl.modalities.timeseries.datasets import SeriesDataset
    from anyssl.modality import get_modality

    mod = get_modality("timeseries")
    found = {s: mod.dataset(data, s, **data_args) for s in ("train", "test")}
    if not all(isinstance(ds, SeriesDataset) for ds in found.values()):
        raise TypeError(f"{data}: --official needs a time-series data set held in memory")
    sets = cast(dict[str, SeriesDataset], found)
    arrays = {s: ds.series.numpy().transpose(0, 2, 1).astype(np.float64)  # N x T x C
              for s, ds in sets.items()}
    npz = tmp / "official.npz"
    np.savez(npz, train=arrays["train"], test=arrays["test"],
             y_train=np.asarray(sets["train"].targets), y_test=np.asarray(sets["test"].targets))
    done = subprocess.run([sys.executable, "-c", OFFICIAL_CHILD, str(npz), str(seed),
                           str(args.threads or torch.get_num_threads()), str(args.iters)],
                          cwd=args.official, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the official code failed on {data}: {done.stderr.strip()[-800:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def mean_std(values: list[float]) -> str:
    """``0.981 +- 0.003`` (std over seeds; one seed: the value alone)."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} +- {statistics.stdev(values):.3f}"


def run_set(data: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Every seed on one data set; its row (means, per-seed values, times)."""
    key, spec, data_args = resolve(data, args.root)
    data_args.update(args.data_arg)
    runs, official = [], []
    for seed in args.seeds:
        runs.append(run_anyssl(spec, data_args, seed, args, tmp / f"{key}-{seed}"))
        if args.official is not None:
            official.append(run_official(spec, data_args, seed, args, tmp))
    row: dict[str, Any] = {
        "dataset": key, "archive": "UEA" if key in PUBLISHED_UEA else "UCR",
        "ts2vec_published": PUBLISHED_UCR.get(key, PUBLISHED_UEA.get(key)),
        "accuracy": [r["accuracy"] for r in runs], "random_init": [r["random_init"] for r in runs],
        "fit_seconds": [r["fit_seconds"] for r in runs], "seeds": list(args.seeds),
        "notes": runs[0]["notes"],
    }
    if official:
        row["official_accuracy"] = [o["accuracy"] for o in official]
        row["official_fit_seconds"] = [round(o["fit_seconds"], 2) for o in official]
        row["time_ratio"] = round(sum(row["official_fit_seconds"]) / sum(row["fit_seconds"]), 2)
    return row


def table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """One markdown table: paper, anyssl and random init (mean +- std), times, official."""
    headers = ["dataset", "archive", "TS2Vec (paper)", f"{args.method} SVM acc", "random init",
               "fit s (mean)"]
    if args.official is not None:
        headers += ["official acc", "official fit s", "official / anyssl time"]
    body = []
    for r in rows:
        paper = r["ts2vec_published"]
        line = [r["dataset"], r["archive"], "-" if paper is None else f"{paper:.3f}",
                mean_std(r["accuracy"]), mean_std(r["random_init"]),
                round(statistics.mean(r["fit_seconds"]), 1)]
        if args.official is not None:
            line += [mean_std(r["official_accuracy"]),
                     round(statistics.mean(r["official_fit_seconds"]), 1), r["time_ratio"]]
        body.append(line)
    return markdown_table(headers, body)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs="+", default=["gunpoint"],
                   help="data sets: UCR/UEA names (read from --root), gunpoint, or folders")
    p.add_argument("--root", type=Path, default=None,
                   help="folder holding NAME/NAME_TRAIN.ts (default: anyssl's UCR cache)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("-d", "--data-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="dataset argument for every set, e.g. -d normalize=series")
    p.add_argument("--method", default="ts2vec")
    p.add_argument("--encoder", default=None)
    p.add_argument("--epochs", type=int, default=None, help="default: the data set's budget")
    p.add_argument("--iters", type=int, default=None,
                   help="optimizer steps instead of the budget (smoke runs; both codes)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--official", type=Path, default=None, metavar="DIR",
                   help="a checkout of yuezhihan/ts2vec: run it side by side, print time ratio")
    p.add_argument("--fetch-aeon", type=Path, default=None, metavar="DIR")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--quick", action="store_true", help="20 steps per data set (smoke test)")
    args = p.parse_args()
    if args.fetch_aeon is not None:
        fetch_aeon(args.fetch_aeon)
        return
    args.data_arg = parse_key_values(args.data_arg)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.iters = args.iters or 20
    if args.official is not None and not (args.official / "ts2vec.py").is_file():
        p.error(f"--official {args.official}: no ts2vec.py there (a yuezhihan/ts2vec checkout)")
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_set(d, args, Path(tmp)) for d in args.data]
    notes = [f"{r['dataset']}: {n}" for r in rows for n in r["notes"] if "normalize=" in n]
    notes.append(f"seeds {' '.join(map(str, args.seeds))}; accuracy mean +- std over seeds; "
                 "fit s = pre-training alone (the SVM and the random-init baseline excluded)")
    save(f"timeseries_ucr-{args.method}", args, torch.device(args.device), table(rows, args),
         rows, notes)


if __name__ == "__main__":
    RESULTS.mkdir(exist_ok=True)
    main()
