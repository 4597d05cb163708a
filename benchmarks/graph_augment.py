"""Graph augmentation throughput: graphs/s of each batched augmentation against the same
augmentation applied graph by graph in the PyG transform style.

Batched: the ``anyssl.modalities.graph`` augmentation on one collated ``Batch`` (default 256
MUTAG graphs, ~18 nodes and ~40 directed edges each, with MUTAG's one-hot node and edge labels)
on ``--device`` with ``--threads`` torch threads (default 2). Per graph: a Python function on
each ``Data`` doing the same thing with the same ratio (what a ``BaseTransform`` would do in a
dataset), on the CPU, then ``Batch.from_data_list`` of the results, since the encoder needs a
batch; the transform-only rate is reported too. MUTAG is read from
``/work/shared/datasets/tu/MUTAG`` copied to a temporary folder (cycled to fill the batch);
without it, random graphs of the same size are used.

    .venv/bin/python benchmarks/graph_augment.py            # 256 graphs, 2 threads, CPU
    .venv/bin/python benchmarks/graph_augment.py --quick    # 64 graphs, < 1 min
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from _common import (
    common_parser,
    contention_limit,
    contention_note,
    markdown_table,
    per_second,
    save,
    setup,
)
from torch_geometric.data import Batch, Data
from torch_geometric.utils import dropout_edge, subgraph

from anyssl.modalities.graph import augment  # noqa: F401  (registers the augmentations)
from anyssl.views import parse_spec

MUTAG = Path(__file__).resolve().parents[1] / "../shared/datasets/tu/MUTAG"


# ---- the per-graph reference: one Data at a time, PyG transform style ----------------------
def _keep_nodes(data: Data, keep: torch.Tensor) -> Data:
    out = copy.copy(data)
    out.edge_index, out.edge_attr = subgraph(keep, data.edge_index, data.edge_attr,
                                             relabel_nodes=True, num_nodes=data.num_nodes)
    out.x = data.x[keep]
    return out


def node_drop_one(data: Data, ratio: float) -> Data:
    n = data.num_nodes
    drop = min(int(ratio * n), n - 1)
    return _keep_nodes(data, torch.randperm(n)[drop:].sort().values)


def edge_perturb_one(data: Data, ratio: float) -> Data:
    n, e = data.num_nodes, data.num_edges
    k = int(ratio * e)
    kept = torch.randperm(e)[k:].sort().values
    out = copy.copy(data)
    out.edge_index = torch.cat([data.edge_index[:, kept], torch.randint(0, n, (2, k))], dim=1)
    attr = data.edge_attr
    out.edge_attr = torch.cat([attr[kept], attr.new_zeros(k, *attr.shape[1:])])
    return out


def attr_mask_one(data: Data, ratio: float) -> Data:
    n = data.num_nodes
    idx = torch.randperm(n)[:int(ratio * n)]
    out = copy.copy(data)
    out.x = data.x.clone()
    out.x[idx] = 0.5 + 0.5 * torch.randn(idx.numel(), data.x.shape[1])
    return out


def subgraph_one(data: Data, ratio: float) -> Data:
    """GraphCL's loop (``unsupervised_TU/aug.py``), with the neighbour set updated."""
    n = data.num_nodes
    src, dst = data.edge_index
    chosen = [int(torch.randint(n, (1,)))]
    frontier = set(dst[src == chosen[0]].tolist()) - set(chosen)
    while len(chosen) < max(1, int(ratio * n)) and frontier:
        options = sorted(frontier)
        chosen.append(options[int(torch.randint(len(options), (1,)))])
        frontier = (frontier | set(dst[src == chosen[-1]].tolist())) - set(chosen)
    return _keep_nodes(data, torch.tensor(sorted(chosen)))


def feature_mask_one(data: Data, ratio: float) -> Data:
    out = copy.copy(data)
    out.x = data.x.clone()
    out.x[:, torch.rand(data.x.shape[1]) < ratio] = 0
    return out


def edge_drop_one(data: Data, ratio: float) -> Data:
    out = copy.copy(data)
    out.edge_index, mask = dropout_edge(data.edge_index, p=ratio)
    out.edge_attr = data.edge_attr[mask]
    return out


CASES: list[tuple[str, Callable[[Data, float], Data], float]] = [
    ("node_drop", node_drop_one, 0.1),
    ("edge_perturb", edge_perturb_one, 0.1),
    ("attr_mask", attr_mask_one, 0.1),
    ("subgraph", subgraph_one, 0.2),
    ("feature_mask", feature_mask_one, 0.3),
    ("edge_drop", edge_drop_one, 0.2),
]


# ---- data and timing ----------------------------------------------------------------------
def load_graphs(n: int) -> tuple[list[Data], str]:
    """``n`` MUTAG graphs (cycled), or random graphs of MUTAG's size when it is absent."""
    if (MUTAG / "raw").is_dir():
        from torch_geometric.datasets import TUDataset

        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(MUTAG / "raw", Path(tmp) / "MUTAG" / "raw")
            data = TUDataset(tmp, "MUTAG")
            graphs = [Data(x=data[i].x, edge_index=data[i].edge_index,
                           edge_attr=data[i].edge_attr) for i in range(len(data))]
        return [graphs[i % len(graphs)] for i in range(n)], "MUTAG"
    rng = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        nodes = int(torch.randint(12, 25, (1,), generator=rng))
        pairs = torch.randint(0, nodes, (2, 20), generator=rng)
        ei = torch.cat([pairs, pairs.flip(0)], dim=1)
        out.append(Data(x=torch.eye(7)[torch.randint(0, 7, (nodes,), generator=rng)],
                        edge_index=ei, edge_attr=torch.eye(4)[torch.randint(0, 4, (40,))]))
    return out, "random (MUTAG-sized)"


def per_graph(one: Callable[[Data, float], Data], ratio: float,
              graphs: list[Data]) -> list[Data]:
    """The per-graph augmentation on every graph."""
    return [one(d, ratio) for d in graphs]


def per_graph_collated(one: Callable[[Data, float], Data], ratio: float,
                       graphs: list[Data]) -> Batch:
    """The per-graph augmentation on every graph, collated as a DataLoader would."""
    return Batch.from_data_list(per_graph(one, ratio, graphs))


def main() -> None:
    p = common_parser(__doc__.splitlines()[0])
    p.set_defaults(threads=2)
    p.add_argument("--batch-size", type=int, default=None, help="graphs per batch (default 256)")
    p.add_argument("--block", type=float, default=None,
                   help="seconds of back-to-back calls per timed block (default 1, quick 0.2)")
    args = p.parse_args()
    args.batch_size = args.batch_size or (64 if args.quick else 256)
    args.repeats = args.repeats or (2 if args.quick else 5)
    args.block = args.block or (0.2 if args.quick else 1.0)
    device = setup(args)
    cpu = torch.device("cpu")
    graphs, source = load_graphs(args.batch_size)
    batch = Batch.from_data_list(graphs).to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    n = args.batch_size

    rows, results = [], []
    contention: list[float | None] = []
    for name, one, ratio in CASES:
        spec = f"{name}(ratio={ratio})"
        aug = parse_spec(spec, scope="graph")
        print(f"{spec} ...", flush=True)
        ours = per_second(partial(aug, batch, gen), n, device, args, contention)
        each = per_second(partial(per_graph, one, ratio, graphs), n, cpu, args, contention)
        both = per_second(partial(per_graph_collated, one, ratio, graphs), n, cpu, args,
                            contention)
        results.append({"spec": spec, "batched": ours, "per_graph_collated": both,
                        "per_graph_transform_only": each, "speedup": ours / both})
        rows.append([spec, round(ours), round(both), round(each), f"{ours / both:.1f}x",
                     "yes" if ours / both >= 10 else "no"])
    headers = ["augmentation", "batched graphs/s", "per graph + collate graphs/s",
               "per graph only graphs/s", "batched / per graph + collate", ">= 10x"]
    stats = (f"{batch.num_nodes / n:.1f} nodes, {batch.num_edges / n:.1f} directed edges "
             f"per graph")
    notes = [f"batch of {n} {source} graphs ({stats}), {args.threads} torch threads, batched "
             f"on {args.device}, per graph on the CPU; median of {args.repeats} blocks of "
             f"~{args.block:g} s of calls after {args.warmup} warm-up",
             contention_note(contention, contention_limit(args))]
    payload = {"batch": n, "graphs": source, "nodes_per_graph": batch.num_nodes / n,
               "edges_per_graph": batch.num_edges / n, "rows": results,
               "contention": contention}
    save("graph_augment", args, device, markdown_table(headers, rows), payload, notes)


if __name__ == "__main__":
    main()
