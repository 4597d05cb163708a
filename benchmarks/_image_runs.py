"""The runs of ``image_tables.py`` and how their results become rows, with the published numbers
whose shape each table reproduces. Not part of the package (benchmarks/ is on ``sys.path``)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: ImageNet linear top-1 of MoCo v2's ablation (Chen et al. 2020, Table 1; ResNet-50, 200 ep).
MOCO_V2_TABLE1 = {"MoCo v1": 60.6, "+ MLP head": 66.2, "+ aug+": 67.3, "+ cosine (MoCo v2)": 67.5}
#: ImageNet top-1 fine-tuned on 1% / 10% of the labels (SimCLR, Chen et al. 2020, Table 7).
SIMCLR_TABLE7 = {0.01: (48.3, 25.4), 0.1: (65.6, 56.4)}  # (SimCLR ResNet-50, supervised)


@dataclass
class Run:
    """One pre-training run: a label, the method and what differs from its defaults."""

    label: str
    method: str
    overrides: dict[str, Any] = field(default_factory=dict)
    protocols: tuple[str, ...] = ("linear", "knn")
    fractions: tuple[float, ...] = ()
    seed: int = 0
    batch_size: int | None = None

    def with_seed(self, seed: int) -> Run:
        return dataclasses.replace(self, seed=seed)

    def describe(self) -> dict[str, Any]:
        return {"method": self.method, "overrides": self.overrides,
                "batch_size": self.batch_size}

    def spec(self, args: argparse.Namespace, data: Path, work: Path) -> dict[str, Any]:
        """The ``anyssl.api.train`` config of this run (plus what the child process needs)."""
        out = work / f"{self.label}-{self.seed}".replace(" ", "_").replace("/", "_")
        return {
            "modality": "image", "method": self.method, "data": str(data),
            "encoder": "smallcnn", "epochs": args.epochs,
            "batch_size": self.batch_size or args.batch_size, "seed": self.seed,
            "device": args.device, "out": str(out), "eval": False, "overwrite": True,
            **self.overrides, "threads": args.threads, "protocols": list(self.protocols),
            "options": {}, "fractions": list(self.fractions),
        }


def _splitbn(args: argparse.Namespace) -> list[Run]:
    return [Run("MoCo v2, split BN + key shuffle (default)", "mocov2"),
            Run("MoCo v2, split_bn=0", "mocov2", {"method_args": {"split_bn": 0}})]


def _ablation(args: argparse.Namespace) -> list[Run]:
    """Cumulative, as MoCo v2's Table 1 reads: v1, then the MLP head (with its temperature
    0.2), then aug+, then the cosine schedule."""
    return [Run("MoCo v1", "mocov1"),
            Run("+ MLP head", "mocov2", {"views": "recipe:mocov1", "schedule": "step"}),
            Run("+ aug+", "mocov2", {"schedule": "step"}),
            Run("+ cosine (MoCo v2)", "mocov2")]


def _semi(args: argparse.Namespace) -> list[Run]:
    return [Run("SimCLR", "simclr", fractions=(0.01, 0.1))]


def _e2e(args: argparse.Namespace) -> list[Run]:
    """End-to-end: in-batch negatives through the trained encoder (SimCLR's NT-Xent) with MoCo
    v2's head width, temperature, views and SGD, as the batch grows; MoCo v2 as its queue grows
    at batch 256."""
    runs = []
    for batch in (64, 128, 256, 512):
        e2e = {"views": "recipe:mocov2", "optimizer": "sgd", "lr": 0.03 * batch / 256,
               "weight_decay": 1e-4, "warmup_epochs": 0.0, "schedule": "cosine",
               "method_args": {"temperature": 0.2, "hidden_dim": 2048, "last_bn": False}}
        runs.append(Run(f"end-to-end, batch {batch}", "simclr", e2e, batch_size=batch))
    for queue in (256, 1024, 4096, 9728):
        runs.append(Run(f"MoCo v2, queue {queue}", "mocov2",
                        {"method_args": {"queue_size": queue}}, batch_size=256))
    return runs


#: The methods of the ``methods`` table: the seed's two baselines, then issue 12's families.
METHOD_NAMES = ("simclr", "mocov2", "byol", "simsiam", "barlowtwins", "vicreg", "mocov3",
                "nnclr", "dino", "swav")


def _methods(args: argparse.Namespace) -> list[Run]:
    """Every method at the same epochs, on the small CNN and on ViT-Ti (4 px patches at 28 px),
    each with its own defaults (recipe, heads, optimizer); ``--encoders`` picks the encoders."""
    return [Run(f"{method}, {encoder}", method, {} if encoder == "smallcnn" else
                {"encoder": encoder}) for encoder in args.encoders
            for method in METHOD_NAMES]


TABLES: dict[str, Callable[[argparse.Namespace], list[Run]]] = {
    "splitbn": _splitbn, "ablation": _ablation, "semi": _semi, "e2e": _e2e,
    "methods": _methods,
}


def _pct(report: dict[str, Any], which: str, protocol: str) -> float:
    return round(100 * float(report[which][protocol]["top1"]), 2)


def _frozen_row(r: dict[str, Any]) -> list[Any]:
    ev = r["eval"]["frozen"]
    return [_pct(ev, "pretrained", "knn"), _pct(ev, "pretrained", "linear"),
            _pct(ev, "random_init", "knn"), _pct(ev, "random_init", "linear")]


def rows_for(table: str, results: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """The table's headers and rows (accuracies in %)."""
    frozen = ["kNN top-1", "linear top-1", "random-init kNN", "random-init linear"]
    if table == "semi":
        headers = ["seed", "labels", "n labels", "SimCLR fine-tuned", "from scratch",
                   "linear probe", "paper: SimCLR / supervised (ImageNet)"]
        rows = []
        for r in results:
            for fraction in (0.01, 0.1):
                ft = r["eval"][f"finetune_{fraction}"]
                paper = SIMCLR_TABLE7[fraction]
                rows.append([r["seed"], f"{fraction:.0%}", ft["pretrained"]["finetune"]["n_labels"],
                             _pct(ft, "pretrained", "finetune"),
                             _pct(ft, "random_init", "finetune"),
                             _pct(r["eval"]["frozen"], "pretrained", "linear"),
                             f"{paper[0]} / {paper[1]}"])
        return headers, rows
    headers = ["run", "seed", *frozen, "train s", "peak MiB"]
    if table == "ablation":
        headers.append("paper (ImageNet linear)")
    rows = []
    for r in results:
        row = [r["run"], r["seed"], *_frozen_row(r), round(r["train_s"]), round(r["peak_mib"])]
        if table == "ablation":
            row.append(MOCO_V2_TABLE1.get(r["run"], "-"))
        rows.append(row)
    return headers, rows


def notes_for(table: str) -> list[str]:
    """What to read next to the table."""
    return {
        "splitbn": ["One process: the default splits BatchNorm into 8 groups (both encoders) and "
                    "shuffles the key batch (facebookresearch/moco's CIFAR-10 demo)."],
        "ablation": ["Paper column: ImageNet linear top-1, MoCo v2 Table 1 (the shape to compare, "
                     "not the values)."],
        "semi": ["From scratch: the same encoder at its random initial weights, fine-tuned on the "
                 "same labels with the same recipe (SimCLR's: Nesterov SGD, crop + flip)."],
        "methods": ["Each method with its own defaults (view recipe, heads, optimizer, lr rule) "
                    "at the same epochs and batch; DINO and SwAV with their multi-crop views."],
        "e2e": ["Peak MiB: the training process's high-water resident memory. MoCo v2 (Chen et "
                "al. 2020), Table 3: at batch 256 MoCo takes 5.0 GB per GPU, end-to-end 7.4 GB, "
                "and end-to-end at batch 4096 an estimated 93 GB; Table 2: MoCo v2 67.5% against "
                "end-to-end (SimCLR) 61.9% at batch 256 and 66.6% at batch 8192 (ImageNet "
                "linear, 200 epochs)."],
    }[table]
