"""TS2Vec's training step on long series at one thread: anyssl against TS2Vec's own code.

Both sides run the same iterations: the crops and timestamp masks are drawn with numpy in the
order of the reference (``yuezhihan/ts2vec``: ``ts2vec.py`` ``fit``, the five ``randint`` of a
batch; ``models/encoder.py`` ``generate_binomial_mask`` for view 1, then view 2), so both sides
encode and contrast the same lengths. One iteration: both views through the encoder, the
hierarchical loss, backward, AdamW, the weight average. Data: ACSF1-shaped (100 series of
1,460 steps) and PigCVP-shaped (104 x 2,000) random walks, or any series file (``--data``).

    .venv/bin/python benchmarks/timeseries_speed.py --iters 5
    .venv/bin/python benchmarks/timeseries_speed.py --data /work/ucr-aeon/ACSF1/ACSF1_TRAIN.ts \\
        --official /tmp/ts2vec --iters 10      # a checkout of yuezhihan/ts2vec (not committed)

Before / after a change: run the script on the older code (e.g. a ``git archive`` of it on
``PYTHONPATH``) with ``--out old.json``, then on the new code with ``--compare old.json``.
Times are CPU seconds of this process (``time.process_time``; one thread) and wall seconds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import RESULTS, markdown_table, save

#: Synthetic data of the shape of two long UCR sets (train split: series x length).
SHAPES = {"acsf1": (100, 1460), "pigcvp": (104, 2000)}


def load(item: str, seed: int) -> tuple[str, np.ndarray]:
    """``(name, N x T x C float32)``: a synthetic shape from ``SHAPES`` or a series file."""
    if item in SHAPES:
        n, t = SHAPES[item]
        walk = np.random.RandomState(seed).randn(n, t, 1).cumsum(axis=1)
        return f"{item}-shaped", ((walk - walk.mean()) / walk.std()).astype(np.float32)
    from anyssl.modalities.timeseries.io import read_series

    x = read_series(item).X  # N x C x T
    return Path(item).stem, np.ascontiguousarray(x.transpose(0, 2, 1), dtype=np.float32)


def geometry(seed: int, iters: int, batch: int, length: int) -> list[dict[str, Any]]:
    """Each iteration's crops and masks, drawn as TS2Vec's ``fit`` draws them after
    ``np.random.seed(seed)`` (temporal_unit 0, so the shortest overlap is 2 steps)."""
    rng, out = np.random.RandomState(seed), []
    for _ in range(iters):
        crop_l = rng.randint(low=2, high=length + 1)
        left = rng.randint(length - crop_l + 1)
        right = left + crop_l
        e_left = rng.randint(left + 1)
        e_right = rng.randint(low=right, high=length + 1)
        offset = rng.randint(low=-e_left, high=length - e_right + 1, size=batch)
        m1 = rng.binomial(1, 0.5, size=(batch, right - e_left)).astype(bool)
        m2 = rng.binomial(1, 0.5, size=(batch, e_right - left)).astype(bool)
        out.append({"l": crop_l, "left": left, "right": right, "e_left": e_left,
                    "e_right": e_right, "offset": offset, "m1": m1, "m2": m2})
    return out


class ReplayCrops:
    """``OverlapCrops`` with the crops and masks of ``geometry`` (one entry per call)."""

    n_views = 2

    def __init__(self, draws: list[dict[str, Any]]) -> None:
        self.draws, self.i = draws, 0

    def __call__(self, x: torch.Tensor) -> list[Any]:
        from anyssl.modalities.timeseries.crops import AlignedView, take_windows

        g = self.draws[self.i % len(self.draws)]
        self.i += 1
        shift = torch.from_numpy(g["offset"])
        x1 = take_windows(x, shift + g["e_left"], g["right"] - g["e_left"])
        x2 = take_windows(x, shift + g["left"], g["e_right"] - g["left"])
        return [AlignedView(x1, g["left"] - g["e_left"], g["l"], torch.from_numpy(g["m1"])),
                AlignedView(x2, 0, g["l"], torch.from_numpy(g["m2"]))]


def time_anyssl(data: np.ndarray, draws: list[dict[str, Any]], args: argparse.Namespace
                ) -> list[tuple[float, float]]:
    """(CPU s, wall s) of each of anyssl's iterations on ``draws``."""
    from anyssl.modalities.timeseries.encoders import TSEncoder
    from anyssl.modalities.timeseries.ts2vec import TS2Vec
    from anyssl.train.precision import autocast

    torch.manual_seed(args.seed)
    x_all = torch.from_numpy(data).transpose(1, 2).contiguous()  # N x C x T
    method = TS2Vec(TSEncoder(in_channels=x_all.shape[1]), ReplayCrops(draws))
    opt = torch.optim.AdamW(method.encoder.parameters(), lr=1e-3)  # TS2Vec's optimizer
    order = torch.randperm(len(x_all)).tolist() * (len(draws) * args.batch // len(x_all) + 1)
    times = []
    for i in range(len(draws)):
        rows = order[i * args.batch:(i + 1) * args.batch]
        cpu, wall = time.process_time(), time.perf_counter()
        with autocast(torch.device("cpu"), args.precision):
            loss, _ = method.training_step((x_all[rows], None))
        opt.zero_grad()
        loss.backward()
        opt.step()
        method.on_step_end(i, len(draws))
        times.append((time.process_time() - cpu, time.perf_counter() - wall))
    return times


def time_official(data: np.ndarray, args: argparse.Namespace) -> list[tuple[float, float]]:
    """(CPU s, wall s) of each iteration of TS2Vec's own ``TS2Vec.fit`` (same seed: same
    crops and masks as ``geometry``)."""
    sys.path.insert(0, str(args.official))
    from ts2vec import TS2Vec as Official  # the checkout's ts2vec.py

    stamps: list[tuple[float, float]] = [(time.process_time(), time.perf_counter())]
    model = Official(input_dims=data.shape[2], device="cpu", batch_size=args.batch,
                     after_iter_callback=lambda *_: stamps.append(
                         (time.process_time(), time.perf_counter())))
    np.random.seed(args.seed)
    stamps[0] = (time.process_time(), time.perf_counter())
    model.fit(data, n_iters=args.warmup + args.iters)
    return [(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(stamps)]


def run(item: str, args: argparse.Namespace) -> dict[str, Any]:
    name, data = load(item, args.seed)
    draws = geometry(args.seed, args.warmup + args.iters, args.batch, data.shape[1])
    ours = time_anyssl(data, draws, args)[args.warmup:]
    row: dict[str, Any] = {
        "data": name, "shape": list(data.shape), "iters": args.iters,
        "mean_overlap": float(np.mean([d["l"] for d in draws[args.warmup:]])),
        "anyssl_cpu_s": sum(t[0] for t in ours) / len(ours),
        "anyssl_wall_s": sum(t[1] for t in ours) / len(ours)}
    if args.official is not None:
        theirs = time_official(data, args)[args.warmup:]
        row["official_cpu_s"] = sum(t[0] for t in theirs) / len(theirs)
        row["official_wall_s"] = sum(t[1] for t in theirs) / len(theirs)
        row["speedup"] = row["official_cpu_s"] / row["anyssl_cpu_s"]
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs="+", default=list(SHAPES),
                   help=f"{', '.join(SHAPES)} (synthetic) or series files (.ts, .tsv, ...)")
    p.add_argument("--iters", type=int, default=5, help="timed iterations per data set")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    p.add_argument("--batch", type=int, default=8, help="TS2Vec's batch size (train.py)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="anyssl's side only: bf16 = CPU autocast (opt-in, changes results)")
    p.add_argument("--official", type=Path, default=None,
                   help="a checkout of yuezhihan/ts2vec: time its TS2Vec.fit side by side")
    p.add_argument("--compare", type=Path, default=None,
                   help="a JSON this script saved (e.g. on older code): print the ratios")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    if args.iters < 1 or args.warmup < 0 or args.batch < 2:
        raise SystemExit("--iters >= 1, --warmup >= 0 and --batch >= 2, please")
    torch.set_num_threads(args.threads)
    args.quick = False
    rows = [run(item, args) for item in args.data]
    old = {}
    if args.compare is not None:
        old = {r["data"]: r for r in json.loads(args.compare.read_text())["results"]}
    table_rows = []
    for r in rows:
        before = old.get(r["data"], {}).get("anyssl_cpu_s")
        table_rows.append([r["data"], f"{r['mean_overlap']:.0f}", f"{r['anyssl_cpu_s']:.3f}",
                           f"{r.get('official_cpu_s', float('nan')):.3f}",
                           f"{r['speedup']:.2f}x" if "speedup" in r else "-",
                           f"{before / r['anyssl_cpu_s']:.2f}x" if before else "-"])
    table = markdown_table(["data", "mean overlap", "anyssl s/iter", "official s/iter",
                            "official / anyssl", "old / new"], table_rows)
    notes = [f"{args.threads} thread(s), batch {args.batch}, {args.iters} iterations after "
             f"{args.warmup} warm-up, precision {args.precision}; CPU seconds per iteration"]
    save(f"timeseries_speed-{args.precision}", args, torch.device("cpu"), table, rows, notes)


if __name__ == "__main__":
    RESULTS.mkdir(exist_ok=True)
    main()
