"""anyssl next to lightly: the same methods, backbone and data trained with each library and
evaluated by one code (kNN and linear probe on frozen features), with the training wall time.

* Data: a seeded, stratified subset of Fashion-MNIST's training images (``--train-size``,
  pre-training and the kNN bank / probe training set) and the 10,000 test images, 28x28 uint8,
  written once under ``benchmarks/data/`` as an .npz and IDX files from the same arrays.
* Backbone: ``_backbone.PeerCNN`` (anyssl's ``smallcnn`` in plain torch, checked to be identical
  to it), registered in anyssl as ``peer_cnn`` (``_peer_plugin``) and used as is by lightly.
* anyssl: ``anyssl.api.train`` with its own defaults for everything else, in this process.
* lightly 1.6.0 (``_lightly_side.py`` in ``.venv-lightly``): lightly's heads, losses, transforms,
  ``update_momentum``/``cosine_schedule`` and LARS, set to what anyssl's run used (its
  ``config.yaml``, method object and view recipe: ``_recipe.py``), with the faster of 0 and 2
  DataLoader workers. What differs inside is printed (``_differences.py``).
* Both train at ``torch.set_num_threads(2)``; wall time is the training loop only.

Set-up (once, in the repository root)::

    python3 -m venv .venv-lightly && .venv-lightly/bin/pip install torch==2.14.1 \\
        torchvision==0.29.1 && .venv-lightly/bin/pip install lightly==1.6.0

Run::

    .venv/bin/python benchmarks/peers/lightly_side_by_side.py            # 5 epochs, tens of min
    .venv/bin/python benchmarks/peers/lightly_side_by_side.py --quick    # smoke run, minutes
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))  # benchmarks/, for _common

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _anyssl_side import SideRun, run_anyssl  # noqa: E402
from _backbone import PeerCNN, embed_images, weights_checksum  # noqa: E402
from _common import (  # noqa: E402
    Contention,
    contention_note,
    markdown_table,
    others_share,
    save,
    str_list,
)
from _differences import ALWAYS, method_differences  # noqa: E402
from _peer_data import Subset, missing_fashion_mnist, prepare  # noqa: E402

VENV = ROOT / ".venv-lightly"
SETUP = ("python3 -m venv .venv-lightly && .venv-lightly/bin/pip install torch==2.14.1 "
         "torchvision==0.29.1 && .venv-lightly/bin/pip install lightly==1.6.0")
LIGHTLY_VERSION = "1.6.0"
METHODS = ("mocov2", "simclr", "byol")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", type=str_list, default=list(METHODS),
                   help=f"comma-separated, of {','.join(METHODS)} (default: all)")
    p.add_argument("--epochs", type=int, default=None, help="default 5 (--quick: 1)")
    p.add_argument("--batch-size", type=int, default=256, help="default 256")
    p.add_argument("--train-size", type=int, default=None,
                   help="training images, stratified (default 10000; --quick: 1000)")
    p.add_argument("--test-size", type=int, default=None,
                   help="test images (default all 10000; --quick: 1000)")
    p.add_argument("--seed", type=int, default=0, help="subset, weights, order, views")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 epoch, 1,000 train and 1,000 test images")
    p.add_argument("--threads", type=int, default=2, help="torch threads of each side")
    p.add_argument("--lightly-workers", default="auto",
                   help="lightly DataLoader workers: auto (faster of 0 and 2) or a count")
    p.add_argument("--probe-steps", type=int, default=None,
                   help="timed steps per worker count in the auto measurement (20; quick 4)")
    p.add_argument("--max-contention", type=float, default=0.10,
                   help="others' CPU share above which a side's timing is flagged")
    p.add_argument("--max-wait", type=float, default=None,
                   help="seconds to wait for a quiet machine before each side (120; quick 5)")
    p.add_argument("--out", type=Path, default=None, help="JSON to write (default: "
                   "benchmarks/results/lightly_side_by_side-cpu[-quick].json)")
    args = p.parse_args(argv)
    q = args.quick
    args.epochs = args.epochs or (1 if q else 5)
    args.train_size = args.train_size or (1000 if q else 10_000)
    args.test_size = args.test_size or (1000 if q else 10_000)
    args.probe_steps = args.probe_steps or (4 if q else 20)
    args.max_wait = (5.0 if q else 120.0) if args.max_wait is None else args.max_wait
    if args.lightly_workers != "auto" and not args.lightly_workers.isdigit():
        p.error(f"--lightly-workers: auto or a count, got {args.lightly_workers!r}")
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown or not args.methods:
        p.error(f"--methods: unknown {unknown}; choose from {','.join(METHODS)}")
    return args


def check_prerequisites() -> str:
    """The lightly version in ``.venv-lightly``; a one-line exit when it or the data is missing."""
    python = VENV / "bin" / "python"
    if not python.is_file():
        raise SystemExit(f"error: {VENV} is missing; create it in {ROOT} with: {SETUP}")
    probe = subprocess.run([str(python), "-c", "import lightly; print(lightly.__version__)"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        raise SystemExit(f"error: lightly does not import in {VENV}; install it with: "
                         f".venv-lightly/bin/pip install lightly=={LIGHTLY_VERSION}")
    reason = missing_fashion_mnist()
    if reason:
        raise SystemExit(f"error: {reason}")
    return probe.stdout.strip()


def check_same_as_smallcnn(seed: int) -> None:
    """``PeerCNN`` must be anyssl's ``smallcnn``: same parameter names, shapes, seeded init."""
    from anyssl.modalities.image.encoders import SmallCNN

    torch.manual_seed(seed)
    ours = PeerCNN(1, 28, 32).state_dict()
    torch.manual_seed(seed)
    theirs = SmallCNN(1, 28, 32).state_dict()
    if ours.keys() != theirs.keys() or any(not torch.equal(ours[k], theirs[k]) for k in ours):
        raise SystemExit("error: benchmarks/peers/_backbone.py no longer matches anyssl's "
                         "SmallCNN (modalities/image/encoders.py); update PeerCNN")


def wait_quiet(args: argparse.Namespace) -> None:
    """Wait up to ``--max-wait`` s for other processes to use under ``--max-contention``."""
    deadline = time.monotonic() + args.max_wait
    while others_share() > args.max_contention and time.monotonic() < deadline:
        time.sleep(4.0)


def run_lightly(recipe: dict[str, Any], subset: Subset, args: argparse.Namespace,
                work: Path) -> SideRun:
    """``_lightly_side.py`` in ``.venv-lightly`` on the recipe; its features and report."""
    t0 = time.perf_counter()
    name = f"lightly-{recipe['method']}"
    recipe_file, out = work / f"{name}.json", work / f"{name}.npz"
    recipe_file.write_text(json.dumps(recipe))
    cmd = [str(VENV / "bin" / "python"), str(HERE / "_lightly_side.py"), "--recipe",
           str(recipe_file), "--data", str(subset.npz), "--out", str(out), "--workers",
           str(args.lightly_workers), "--probe-steps", str(args.probe_steps), "--threads",
           str(args.threads)]
    if subprocess.run(cmd, check=False).returncode != 0:
        raise SystemExit(f"error: the lightly side failed for {recipe['method']} (output above)")
    with np.load(out) as z:
        train_x, test_x, meta = z["train_x"], z["test_x"], json.loads(str(z["meta"]))
    meta["process_s"] = time.perf_counter() - t0
    return SideRun("lightly", train_x, test_x, meta["train_s"], meta["process_s"],
                   meta["steps"], meta["batch_size"], meta["last_loss"], meta)


def evaluate(train_x: np.ndarray, test_x: np.ndarray, subset: Subset, seed: int
             ) -> dict[str, float]:
    """The one evaluation of both sides: weighted kNN (k=200, T=0.07) and the linear probe."""
    from anyssl.eval import knn_classify, linear_probe

    t0 = time.perf_counter()
    knn = knn_classify(train_x, subset.y_train, test_x, subset.y_test, k=200, temperature=0.07,
                       device="cpu")
    linear = linear_probe(train_x, subset.y_train, test_x, subset.y_test, device="cpu",
                          seed=seed)
    return {"knn_top1": knn["top1"], "linear_top1": linear["top1"],
            "linear_weight_decay": linear["weight_decay"], "eval_s": time.perf_counter() - t0}


def side_result(side: SideRun, scores: dict[str, float], other: float | None) -> dict[str, Any]:
    """One side's scores, timing, contention (``other``) and report, for the JSON."""
    return {"library": side.library, **scores, "train_s": side.train_s, "total_s": side.total_s,
            "steps": side.steps, "images_per_s": side.images_per_s, "last_loss": side.last_loss,
            "contention": other, **side.info}


def row(method: str, res: dict[str, Any]) -> list[Any]:
    """A table row of one side's ``side_result``."""
    note = f"last loss {res['last_loss']:.3f}" if res["last_loss"] is not None else ""
    if res["library"] == "lightly":
        probe = ", ".join(f"{w}: {s:.2f} s/step" for w, s in res["probe_s_per_step"].items())
        note += f"; {res['workers']} workers" + (f" ({probe})" if probe else "")
    return [method, res["library"], f"{100 * res['knn_top1']:.2f}",
            f"{100 * res['linear_top1']:.2f}", f"{res['train_s']:.1f}",
            f"{res['images_per_s']:.0f}", note]


def compare(method: str, subset: Subset, args: argparse.Namespace, work: Path,
            init: float) -> dict[str, Any]:
    """Train ``method`` on both sides and evaluate both feature sets."""
    out: dict[str, Any] = {"method": method}
    wait_quiet(args)
    with Contention() as c:
        mine, recipe = run_anyssl(method, subset, args, work)
    out["anyssl"] = side_result(mine, evaluate(mine.train_x, mine.test_x, subset, args.seed),
                                c.other)
    wait_quiet(args)
    with Contention() as c:
        theirs = run_lightly(recipe, subset, args, work)
    out["lightly"] = side_result(theirs, evaluate(theirs.train_x, theirs.test_x, subset,
                                                  args.seed), c.other)
    out["recipe"], out["differences"] = recipe, method_differences(recipe, theirs.info, init)
    print(f"{method}: anyssl {mine.train_s:.1f} s, lightly {theirs.train_s:.1f} s", flush=True)
    return out


def random_init(subset: Subset, seed: int) -> tuple[dict[str, float], float]:
    """Scores of the seeded initial backbone (the same on both sides) and its checksum."""
    torch.manual_seed(seed)
    net = PeerCNN(1, 28, 32)
    feats = [embed_images(net, torch.from_numpy(x).unsqueeze(1)).numpy()
             for x in (subset.x_train, subset.x_test)]
    return evaluate(feats[0], feats[1], subset, seed), weights_checksum(net)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    version = check_prerequisites()
    torch.set_num_threads(args.threads)
    check_same_as_smallcnn(args.seed)
    subset = prepare(args.train_size, args.test_size, args.seed)
    print(f"data: {len(subset.y_train)} train / {len(subset.y_test)} test images "
          f"({subset.npz.name}); lightly {version}", flush=True)
    base, init = random_init(subset, args.seed)
    with tempfile.TemporaryDirectory(prefix="lightly-side-by-side-") as tmp:
        results = [compare(m, subset, args, Path(tmp), init) for m in args.methods]
    rows = [row(r["method"], r[side]) for r in results for side in ("anyssl", "lightly")]
    rows.append(["random init", "both", f"{100 * base['knn_top1']:.2f}",
                 f"{100 * base['linear_top1']:.2f}", "-", "-", "the seeded initial backbone"])
    headers = ["method", "library", "kNN top-1", "linear top-1", "train wall s", "images/s",
               "notes"]
    seen = [r[s]["contention"] for r in results for s in ("anyssl", "lightly")]
    notes = [f"{args.epochs} epochs, batch {args.batch_size}, seed {args.seed}, "
             f"{args.threads} threads per side; lightly {version}",
             *(d for r in results for d in r["differences"]),
             *(f"always: {d}" for d in ALWAYS), contention_note(seen, args.max_contention)]
    if version != LIGHTLY_VERSION:
        notes.insert(0, f"lightly {version} in {VENV}, not {LIGHTLY_VERSION}")
    save("lightly_side_by_side", args, torch.device("cpu"), markdown_table(headers, rows),
         {"methods": results, "random_init": base, "lightly": version}, notes)


if __name__ == "__main__":
    main()
