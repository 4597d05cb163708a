"""Graph benchmark: each paper's own protocol next to anyssl's defaults, over several seeds, with
the published numbers and a random-init baseline.

Graph level, every TU folder (MUTAG from ``../shared/datasets`` and any ``--tu`` folder): GraphCL
embeddings + SVM, 10-fold CV over every graph (GraphCL/InfoGraph protocol), in two settings:

- ``tu-default``: anyssl's default, two augmented views (GraphCL's four augmentations, one drawn
  per graph and view) and the set's node labels (degree features when it has none);
- ``tu-graphcl``: GraphCL's unsupervised TU code, ``--views recipe:graphcl-tu`` (the graph
  itself against one augmentation; edge perturbation only drops edges) and, on a set without
  node labels, its constant feature (``-d features=constant``);
- ``tu-infograph``: InfoGraph (the unaugmented graphs, local-global mutual information);
- ``tu-default-all``, ``tu-graphcl-all``, ``tu-infograph-all``: the same, pre-trained on every
  graph (``-d pretrain_on=all``, labels unused) as GraphCL's and InfoGraph's code do; the
  settings above pre-train on the 90% train split only (anyssl's default).

Node level, every Planetoid folder (Cora from ``../shared/datasets`` and any ``--planetoid``):

- ``planetoid-public``: GRACE on the public split (140 / 500 / 1,000), the linear probe (DGI's
  protocol, whose 82.3 is the number to beat);
- ``planetoid-dgi``: DGI (its one 512-wide PReLU GCN layer) on the public split, the linear
  probe (DGI's protocol);
- ``planetoid-grace``: GRACE's protocol (``-d split_mode=random``: a 10% / 10% / 80% split drawn
  per seed, ``--eval-protocol logreg_cv``: L2-normalized embeddings, logistic regression with C
  by 5-fold CV, micro-F1 = accuracy, macro-F1 reported too).

One recipe per method for every data set, as the papers do; nothing is tuned per data set.
Folders are copied to a temporary folder (PyG writes ``processed/`` next to ``raw/``); data is
never part of anyssl.

    .venv/bin/python benchmarks/graph.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from _common import RESULTS, markdown_table, save

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
#: Published numbers (the papers' tables) by setting and lower-case data set name.
PUBLISHED = {
    "tu": {"mutag": "GraphCL 86.80 +- 1.34, InfoGraph 89.01 +- 1.13, MVGRL 89.70 +- 1.10"},
    "planetoid-public": {"cora": "DGI 82.3 +- 0.6, MVGRL 83.5, BGRL 82.7"},
    "planetoid-dgi": {"cora": "DGI 82.3 +- 0.6"},
    "planetoid-grace": {"cora": "GRACE 83.3 +- 0.4 (micro-F1)"},
}


@dataclass(frozen=True)
class Setting:
    """One row of the table: how a method is trained and evaluated on a family of data sets."""

    name: str
    family: str  # "tu" or "planetoid": which folders it runs on
    method: str
    protocol: str
    views: str | None = None
    data_args: dict[str, Any] = field(default_factory=dict)
    per_seed_split: bool = False  # draw the split with the training seed (GRACE's repeats)

    def args_for(self, raw: Path, name: str, seed: int) -> dict[str, Any]:
        """The data arguments of one run; GraphCL's constant feature only without node labels."""
        args = dict(self.data_args)
        if args.get("features") == "constant" and has_node_labels(raw, name):
            args.pop("features")  # GraphCL keeps MUTAG's node labels (aug.py lines 80-94)
        if self.per_seed_split:
            args["split_seed"] = seed
        return args


SETTINGS = {s.name: s for s in (
    Setting("tu-default", "tu", "graphcl", "svm"),
    Setting("tu-graphcl", "tu", "graphcl", "svm", views="recipe:graphcl-tu",
            data_args={"features": "constant"}),
    Setting("planetoid-public", "planetoid", "grace", "linear",
            data_args={"split_mode": "public"}),
    Setting("planetoid-grace", "planetoid", "grace", "logreg_cv",
            data_args={"split_mode": "random"}, per_seed_split=True),
    Setting("tu-infograph", "tu", "infograph", "svm"),
    Setting("planetoid-dgi", "planetoid", "dgi", "linear", data_args={"split_mode": "public"}),
    # the papers' unsupervised TU protocol: pre-train on every graph (labels unused)
    Setting("tu-default-all", "tu", "graphcl", "svm", data_args={"pretrain_on": "all"}),
    Setting("tu-graphcl-all", "tu", "graphcl", "svm", views="recipe:graphcl-tu",
            data_args={"features": "constant", "pretrain_on": "all"}),
    Setting("tu-infograph-all", "tu", "infograph", "svm", data_args={"pretrain_on": "all"}),
)}


def has_node_labels(raw: Path, name: str) -> bool:
    """Whether a TU raw folder gives its nodes features (node labels or attributes)."""
    return any((raw / f"{name}_{kind}.txt").is_file()
               for kind in ("node_labels", "node_attributes"))


def run_one(setting: Setting, folder: Path, seed: int, out: Path, device: str,
            epochs: int | None) -> dict[str, Any]:
    """Train and evaluate one (setting, data folder, seed); returns its row."""
    from anyssl.api import train
    from anyssl.modalities.graph.datasets import detect

    _, name, raw = detect(folder)
    data_args = setting.args_for(raw, name, seed)
    start = time.perf_counter()
    result = train(modality="graph", method=setting.method, data=str(folder),
                   data_args=data_args, views=setting.views, seed=seed,
                   out=str(out / f"{setting.name}-{name}-{seed}"), device=device, epochs=epochs,
                   eval_protocols=[setting.protocol])
    seconds = time.perf_counter() - start
    report = result.eval or {}
    pre, rnd = report["pretrained"][setting.protocol], report["random_init"][setting.protocol]
    row = {"dataset": name.lower(), "setting": setting.name, "method": setting.method,
           "seed": seed, "protocol": setting.protocol, "data_args": data_args,
           "views": setting.views or "default", "accuracy": pre["top1"],
           "random_init": rnd["top1"], "seconds": round(seconds, 1)}
    if "macro_f1" in pre:
        row["macro_f1"] = pre["macro_f1"]
    return row


def _published(setting: Setting, dataset: str) -> str:
    key = "tu" if setting.family == "tu" else setting.name
    return PUBLISHED.get(key, {}).get(dataset, "-")


def summary(rows: list[dict[str, Any]], setting: Setting, dataset: str) -> list[Any]:
    """One table row: mean +- std over seeds of the pre-trained and random-init accuracy."""
    mine = [r for r in rows if r["setting"] == setting.name and r["dataset"] == dataset]
    acc = [100 * r["accuracy"] for r in mine]
    rnd = [100 * r["random_init"] for r in mine]
    macro = [100 * r["macro_f1"] for r in mine if "macro_f1" in r]

    def mean_sd(xs: list[float]) -> str:
        sd = statistics.pstdev(xs) if len(xs) > 1 else 0.0
        return f"{statistics.mean(xs):.2f} +- {sd:.2f}"

    return [dataset, setting.name, setting.method, setting.protocol, mean_sd(acc),
            " ".join(f"{a:.2f}" for a in acc), mean_sd(macro) if macro else "-",
            f"{statistics.mean(rnd):.2f}", _published(setting, dataset),
            f"{statistics.mean(r['seconds'] for r in mine):.0f}"]


def folders(args: argparse.Namespace) -> dict[str, list[Path]]:
    """The data folders of each family: the shared defaults (when present) plus the given."""
    out: dict[str, list[Path]] = {"tu": list(args.tu), "planetoid": list(args.planetoid)}
    for family, default in (("tu", "MUTAG"), ("planetoid", "Cora")):
        src = args.shared / family / default
        if args.shared_defaults and src.is_dir():
            out[family].insert(0, src)
    for family, paths in out.items():
        for p in paths:
            if not p.is_dir():
                raise SystemExit(f"{p} is not a folder: give a {family} data set folder "
                                 f"(NAME/raw/ or raw/ inside it)")
    return out


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--tu", nargs="*", type=Path, default=[],
                   help="more TU folders (each holding raw/NAME_A.txt ...)")
    p.add_argument("--planetoid", nargs="*", type=Path, default=[],
                   help="more Planetoid folders (each holding raw/ind.NAME.*)")
    p.add_argument("--no-shared", dest="shared_defaults", action="store_false",
                   help="leave out MUTAG and Cora from --shared")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=None, help="default: the data set's budget")
    p.add_argument("--device", default="cpu")
    p.add_argument("--shared", type=Path, default=SHARED)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--quick", action="store_true", help="1 seed, 2 epochs (smoke test)")
    args = p.parse_args()
    if args.quick:
        args.seeds, args.epochs = args.seeds[:1], 2
    return args


def main() -> None:
    args = parse_args()
    data = folders(args)
    rows: list[dict[str, Any]] = []
    done: list[tuple[Setting, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.settings:
            setting = SETTINGS[key]
            for src in data[setting.family]:
                folder = Path(tmp) / "data" / setting.name / src.name
                shutil.copytree(src, folder)
                for seed in args.seeds:
                    rows.append(run_one(setting, folder, seed, Path(tmp) / "runs", args.device,
                                        args.epochs))
                    print(rows[-1], flush=True)
                done.append((setting, rows[-1]["dataset"]))
    table = markdown_table(["data", "setting", "method", "protocol", "accuracy % (mean +- std)",
                            "per seed", "macro-F1 %", "random init %", "published",
                            "train+eval s / seed"],
                           [summary(rows, s, d) for s, d in done])
    save("graph", args, torch.device(args.device), table, rows,
         [f"seeds {args.seeds}, {torch.get_num_threads()} torch threads"])


if __name__ == "__main__":
    RESULTS.mkdir(exist_ok=True)
    main()
