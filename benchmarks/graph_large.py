"""Node-level SSL past memory: peak memory and time of one epoch on sampled subgraphs of a
synthetic stochastic block model graph at growing size, and how well the embeddings find the blocks.

For each ``--nodes`` N and ``--methods`` entry (``grace``; ``dgi`` too once it is registered), a
fresh child process builds the SBM graph (``anyssl.modalities.graph.datasets_sbm``: ``--blocks``
blocks, ``--avg-degree`` x N directed edges, ``--p-in`` of them inside a block, features = block
centre + noise; never an ``N x N`` matrix), the method with its defaults (GCN encoder, GRACE's
views), and trains one epoch on ``sampling.SampledNodes`` items (``--batch-nodes`` seeds,
``--fanout`` neighbours per hop; every node a seed once) with Adam at the method's lr. Then it
embeds ``--probe-nodes`` random nodes by sampled inference, one item at a time, with the trained
and the random-init encoder, and scores the blocks with the linear probe and kNN (half the subset
trains, half tests).

Memory is the child's ``VmHWM`` (peak resident set) for the whole child, and for the epoch alone
(``VmHWM`` reset just before it; graph and CSR included as they stay resident); glibc returns freed
blocks at once (``_child.MMAP_THRESHOLD``), so the peak follows live memory.

    .venv/bin/python benchmarks/graph_large.py                       # 1e4, 1e5, 1e6 nodes
    .venv/bin/python benchmarks/graph_large.py --quick               # 1e4 and 3e4, ~1 min
    .venv/bin/python benchmarks/graph_large.py --nodes 1000000 --max-steps 50   # extrapolated
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from types import SimpleNamespace
from typing import Any, cast

import torch
from _child import emit, proc_status, reset_peak, spawn
from _common import common_parser, int_list, markdown_table, save, setup, str_list

GIB = 2**30


def _train_epoch(method: Any, ds: Any, args: argparse.Namespace) -> tuple[float, int, float]:
    """One epoch (or ``--max-steps`` of it) with Adam at the method's lr: (seconds, steps, last
    loss)."""
    from anyssl.modalities.graph.data import collate
    from anyssl.train.data import mix_seed

    d = method.train_defaults
    opt = torch.optim.Adam(method.parameters(), lr=d["lr"], weight_decay=d["weight_decay"])
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0)).tolist()
    steps = min(len(order), args.max_steps or len(order))
    t0, loss = time.perf_counter(), torch.tensor(float("nan"))
    for step, i in enumerate(order[:steps]):
        method.views.manual_seed(mix_seed(0, step))
        loss, _ = method.training_step(collate([ds[i]]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0, steps, float(loss)


def _probe(encoder: Any, ds: Any, args: argparse.Namespace) -> dict[str, float]:
    """Linear-probe and kNN accuracy of the blocks on ``--probe-nodes`` random nodes, embedded
    by sampled inference (``SampledNodes`` over those nodes, one item at a time)."""
    from torch_geometric.data import Data

    from anyssl.eval import embed, knn_classify, linear_probe
    from anyssl.modalities.graph.data import collate
    from anyssl.modalities.graph.sampling import SampledNodes

    g, n = ds.data, int(ds.data.num_nodes)
    pick = torch.randperm(n, generator=torch.Generator().manual_seed(1))[:args.probe_nodes]
    mask = torch.zeros(n, dtype=torch.bool)
    mask[pick] = True
    base = SimpleNamespace(data=Data(x=g.x, edge_index=g.edge_index, y=g.y, node_mask=mask))
    items = SampledNodes(base, batch_nodes=args.batch_nodes, fanout=args.fanout, seeds=mask,
                         shuffle=False)
    x, y = embed(encoder, items, batch_size=1, collate=collate, device="cpu")
    half = len(y) // 2
    split = (x[:half], y[:half], x[half:], y[half:])
    return {"linear": linear_probe(*split, device="cpu")["top1"],
            "knn": knn_classify(*split, device="cpu")["top1"]}


def child(args: argparse.Namespace) -> None:
    """Build, train one epoch, probe; emit the measurements."""
    from anyssl.build import build_parts
    from anyssl.modalities.graph import datasets_sbm  # noqa: F401  (registers --data sbm)

    t0 = time.perf_counter()
    torch.manual_seed(0)
    data_args = {"num_nodes": args.nodes[0], "num_blocks": args.blocks,
                 "avg_degree": args.avg_degree, "features": args.features,
                 "noise": args.noise, "p_in": args.p_in,
                 "sampler": "neighbor", "batch_nodes": args.batch_nodes, "fanout": args.fanout}
    parts = build_parts("graph", args.method, data="sbm", data_args=data_args, need_test=False,
                        device="cpu")
    method, ds = parts.method, cast(Any, parts.train_set)
    build_s = time.perf_counter() - t0
    random_encoder = __import__("copy").deepcopy(method.encoder)
    rss_before = proc_status("VmRSS")
    reset_peak()
    seconds, steps, loss = _train_epoch(method, ds, args)
    epoch_peak = proc_status("VmHWM")
    result = {"nodes": args.nodes[0], "edges": int(ds.data.edge_index.shape[1]),
              "method": args.method, "items": len(ds), "steps": steps,
              "epoch_s": seconds * len(ds) / steps, "measured_s": seconds, "loss": loss,
              "build_s": build_s, "rss_before_gib": rss_before / GIB,
              "epoch_peak_gib": epoch_peak / GIB}
    t1 = time.perf_counter()
    result["pretrained"] = _probe(method.encoder, ds, args)
    result["random"] = _probe(random_encoder, ds, args)
    result["probe_s"] = time.perf_counter() - t1
    result["peak_gib"] = proc_status("VmHWM") / GIB  # reset at the epoch: max of epoch and probe
    result["peak_gib"] = max(result["peak_gib"], epoch_peak / GIB)
    emit(result)


def parse_args() -> argparse.Namespace:
    p = common_parser(__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int_list, default=[10_000, 100_000, 1_000_000])
    p.add_argument("--methods", type=str_list, default=["grace", "dgi"],
                   help="node-level methods (those not registered are skipped with a note)")
    p.add_argument("--blocks", type=int, default=10)
    p.add_argument("--avg-degree", type=float, default=16.0,
                   help="edges per node (both directions stored: 2 x N x avg_degree / 2)")
    p.add_argument("--features", type=int, default=32)
    p.add_argument("--noise", type=float, default=10.0, help="feature noise std (sbm's 10)")
    p.add_argument("--p-in", type=float, default=0.5,
                   help="share of edges inside a block (sbm's 0.5)")
    p.add_argument("--batch-nodes", type=int, default=1024)
    p.add_argument("--fanout", default="10,10")
    p.add_argument("--probe-nodes", type=int, default=4000)
    p.add_argument("--max-steps", type=int, default=None,
                   help="time this many steps of the epoch and extrapolate (default: all)")
    p.add_argument("--method", help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.nodes, args.probe_nodes = [10_000, 30_000], 2000
    return args


def main() -> None:
    args = parse_args()
    device = setup(args)
    if args.child:
        child(args)
        return
    from anyssl.modalities import graph  # noqa: F401
    from anyssl.registry import METHODS

    known = set(METHODS.names("graph"))
    methods = [m for m in args.methods if m in known]
    notes = [f"skipped {m}: not a registered method" for m in args.methods if m not in known]
    results, rows = [], []
    for n in args.nodes:
        for m in methods:
            flags = [a for a in sys.argv[1:] if a != "--quick"]
            cmd = [sys.executable, __file__, *flags, "--child", "--method", m, "--nodes", str(n),
                   "--probe-nodes", str(args.probe_nodes), "--threads", str(args.threads)]
            r = spawn(cmd, f"{m} at {n} nodes")
            results.append(r)
            est = "" if r["steps"] == r["items"] else f" (est. from {r['steps']})"
            rows.append([m, f"{n:,}", f"{r['edges']:,}", r["items"],
                         f"{r['epoch_s']:.1f}{est}", f"{r['epoch_peak_gib']:.2f}",
                         f"{r['peak_gib']:.2f}", f"{100 * r['pretrained']['linear']:.1f}",
                         f"{100 * r['pretrained']['knn']:.1f}",
                         f"{100 * r['random']['linear']:.1f}", f"{100 * r['random']['knn']:.1f}"])
            print(rows[-1], flush=True)
    table = markdown_table(["method", "nodes", "edges", "items", "epoch s", "epoch peak GiB",
                            "peak GiB", "linear", "kNN", "random linear", "random kNN"], rows)
    notes.append(f"SBM: {args.blocks} blocks, {args.avg_degree:g} edges per node, p_in "
                 f"{args.p_in:g}, features {args.features} with noise {args.noise:g}; batches of "
                 f"{args.batch_nodes} seeds, fanout {args.fanout}; "
                 f"accuracy of the blocks on {args.probe_nodes} nodes (half train, half test); "
                 f"{args.threads} thread(s); chance {100 / args.blocks:.0f}%")
    save("graph_large", args, device, table, results, notes)
    assert all(math.isfinite(r["loss"]) for r in results)


if __name__ == "__main__":
    main()
