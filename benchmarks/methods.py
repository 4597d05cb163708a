"""Every method on every modality's embedded default data, one table: the modality's protocols
on the pre-trained encoder next to the same encoder at its random initial weights.

One budget per modality: the embedded default's own suggested epochs (the README's main job is
one such run), the same epochs and seed for every method on it, each method with its own
defaults (recipe, optimizer, heads), so a row says what a method gives on that data at that
budget out of the box, not what it can reach when tuned. A method that cannot serve a modality
is listed with the one-line reason the CLI gives.

    .venv/bin/python benchmarks/methods.py                 # every modality, every method
    .venv/bin/python benchmarks/methods.py --modalities graph --methods simclr dino
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import RESULTS, markdown_table, save

MODALITIES = ("image", "timeseries", "graph", "text")


def methods_of(modality: str) -> list[str]:
    """The methods ``anyssl list methods --modality`` shows for ``modality``."""
    import anyssl.modalities  # noqa: F401  (registers the built-in modalities)
    from anyssl.modality import get_modality

    return get_modality(modality).available_methods()


def run_one(modality: str, method: str, epochs: int | None, seed: int, out: Path,
            device: str) -> dict[str, Any]:
    """Train and evaluate one (modality, method); a row with every protocol's top-1."""
    from anyssl.api import train

    row: dict[str, Any] = {"modality": modality, "method": method, "epochs": epochs,
                           "seed": seed}
    start = time.perf_counter()
    try:
        result = train(modality=modality, method=method, epochs=epochs, seed=seed,
                       out=str(out / f"{modality}-{method}"), device=device)
    except (ValueError, TypeError, RuntimeError) as err:  # what the CLI turns into exit 2
        row["error"] = str(err).splitlines()[0][:160]
        return row
    row["seconds"] = round(time.perf_counter() - start, 1)
    row["epochs"] = result_epochs(result.run_dir)
    report = result.eval or {}
    for side in ("pretrained", "random_init"):
        for protocol, metrics in (report.get(side) or {}).items():
            if isinstance(metrics, dict) and "top1" in metrics:
                row[f"{side}:{protocol}"] = float(metrics["top1"])
    return row


def result_epochs(run_dir: Path) -> int | None:
    """The epochs a run trained (its ``config.yaml``), the data's suggestion when none was set."""
    import yaml

    config = yaml.safe_load((Path(run_dir) / "config.yaml").read_text())
    return config.get("epochs") if isinstance(config, dict) else None


def table_row(row: dict[str, Any]) -> list[Any]:
    """``modality | method | protocol: pre-trained (random init) ... | s``."""
    if "error" in row:
        return [row["modality"], row["method"], "-", f"n/a: {row['error']}", "-"]
    cells = []
    for key in sorted(k for k in row if k.startswith("pretrained:")):
        protocol = key.split(":", 1)[1]
        rnd = row.get(f"random_init:{protocol}")
        gain = "" if rnd is None else f" ({100 * rnd:.1f} random init)"
        cells.append(f"{protocol} {100 * row[key]:.1f}{gain}")
    return [row["modality"], row["method"], row["epochs"], "; ".join(cells),
            f"{row['seconds']:.0f}"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--modalities", nargs="+", default=list(MODALITIES), choices=MODALITIES)
    p.add_argument("--methods", nargs="+", default=None, help="default: every method served")
    p.add_argument("--epochs", type=int, default=None,
                   help="default: the embedded default's suggested epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--quick", action="store_true", help="1 epoch each (smoke test)")
    args = p.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for modality in args.modalities:
            epochs = 1 if args.quick else args.epochs
            for method in args.methods or methods_of(modality):
                rows.append(run_one(modality, method, epochs, args.seed, Path(tmp),
                                    args.device))
                print(rows[-1], flush=True)
    table = markdown_table(["modality", "method", "epochs", "accuracy % (protocol: pre-trained, "
                            "random init)", "train+eval s"], [table_row(r) for r in rows])
    save("methods", args, torch.device(args.device), table, rows,
         [f"seed {args.seed}; each method's own defaults on the embedded default data",
          f"{torch.get_num_threads()} torch threads"])


if __name__ == "__main__":
    RESULTS.mkdir(exist_ok=True)
    main()
