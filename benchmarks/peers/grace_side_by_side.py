"""GRACE's own code (``CRIPAC-DIG/GRACE``, a checkout passed with ``--official``; not committed)
and anyssl's ``grace`` side by side on Cora, scored by one evaluation code.

Each seed trains the official ``Model``/``Encoder`` with ``config.yaml``'s Cora recipe (Adam
lr 5e-4, weight decay 1e-5, 2-layer GCN 128, tau 0.4, edge drop 0.2/0.4, feature drop 0.3/0.4,
200 epochs, the loop of its ``train.py``) and, with ``--anyssl``, anyssl's default ``grace`` run.
Both sides' embeddings of all nodes are then scored twice:

* ``logreg_cv`` on anyssl's seeded 10/10/80 split (the paper's split; ``planetoid-grace`` of
  ``benchmarks/graph.py``),
* GRACE's ``eval.py`` as released: train on a random 10%, test on the other 90%, mean of 3
  draws (the split its published number comes from), re-implemented with the same sklearn calls.

Command: ``python benchmarks/peers/grace_side_by_side.py --official DIR --planetoid DIR
--seeds 0 1 2 3 4 [--anyssl]`` (``results/grace_side_by_side-cpu.json``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parents[1] / "results"
CORA: dict[str, Any] = {
    "learning_rate": 5e-4, "num_hidden": 128, "num_proj_hidden": 128, "num_layers": 2,
    "drop_edge_rate_1": 0.2, "drop_edge_rate_2": 0.4, "drop_feature_rate_1": 0.3,
    "drop_feature_rate_2": 0.4, "tau": 0.4, "num_epochs": 200, "weight_decay": 1e-5}


def official_embeddings(checkout: Path, data: Any, seed: int) -> np.ndarray:
    """Train GRACE's own model on ``data`` for one seed (its ``train.py`` loop); N x 128."""
    sys.path.insert(0, str(checkout))
    from model import Encoder, Model, drop_feature
    from torch_geometric.nn import GCNConv
    from torch_geometric.utils import dropout_edge

    c = CORA
    torch.manual_seed(seed)
    encoder = Encoder(data.num_features, c["num_hidden"], torch.nn.functional.relu,
                      base_model=GCNConv, k=c["num_layers"])
    model = Model(encoder, c["num_hidden"], c["num_proj_hidden"], c["tau"])
    opt = torch.optim.Adam(model.parameters(), lr=c["learning_rate"],
                           weight_decay=c["weight_decay"])
    for _ in range(c["num_epochs"]):
        model.train()
        opt.zero_grad()
        e1 = dropout_edge(data.edge_index, p=c["drop_edge_rate_1"])[0]  # = dropout_adj's edges
        e2 = dropout_edge(data.edge_index, p=c["drop_edge_rate_2"])[0]
        z1 = model(drop_feature(data.x, c["drop_feature_rate_1"]), e1)
        z2 = model(drop_feature(data.x, c["drop_feature_rate_2"]), e2)
        model.loss(z1, z2, batch_size=0).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return model(data.x, data.edge_index).numpy()


def anyssl_embeddings(planetoid: Path, seed: int, work: Path) -> np.ndarray:
    """anyssl's default ``grace`` run on Cora for one seed; embeddings of all nodes."""
    from anyssl.api import load_run, train
    from anyssl.modalities.graph.data import NodeDataset

    result = train(modality="graph", method="grace", data=str(planetoid / "Cora"), seed=seed,
                   data_args={"split_mode": "random", "split_seed": seed}, eval=False,
                   out=str(work / f"anyssl-{seed}"))
    run = load_run(result.checkpoint)
    ds = run.parts.train_set
    assert isinstance(ds, NodeDataset)
    whole = ds.data.clone()
    del whole.node_mask  # no mask: the encoder returns every node, in the graph's order
    with torch.no_grad():
        z = run.encoder.eval()(whole)
    return np.asarray(z)


def grace_eval(z: np.ndarray, y: np.ndarray, draws: int = 3) -> dict[str, Any]:
    """GRACE's ``eval.label_classification``: 10% train / 90% test, mean of ``draws``."""
    from sklearn.model_selection import train_test_split

    from anyssl.modalities.graph.protocols import logreg_cv

    scores = []
    for draw in range(draws):
        tr, te = train_test_split(np.arange(len(y)), test_size=0.9, random_state=draw)
        scores.append(logreg_cv(z[tr], y[tr], z[te], y[te])["micro_f1"])
    return {"mean": float(np.mean(scores)), "draws": [float(s) for s in scores]}


def split_eval(z: np.ndarray, y: np.ndarray, seed: int) -> float:
    """``logreg_cv`` on anyssl's seeded 10/10/80 split (train 10%, test 80%)."""
    from anyssl.modalities.graph.data import random_node_split
    from anyssl.modalities.graph.protocols import logreg_cv

    masks = random_node_split(torch.as_tensor(y), seed)
    tr, te = masks["train"].numpy(), masks["test"].numpy()
    return float(logreg_cv(z[tr], y[tr], z[te], y[te])["micro_f1"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--official", type=Path, required=True, help="GRACE checkout")
    p.add_argument("--planetoid", type=Path, required=True, help="folder holding Cora/raw")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--anyssl", action="store_true", help="also train anyssl's grace")
    p.add_argument("--no-official", action="store_true", help="anyssl's side alone")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS / "grace_side_by_side-cpu.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from torch_geometric.datasets import Planetoid
    from torch_geometric.transforms import NormalizeFeatures

    work = Path(tempfile.mkdtemp(prefix="grace-sbs-"))
    shutil.copytree(args.planetoid / "Cora", work / "Cora")  # PyG writes processed/ beside raw/
    data = Planetoid(str(work), "Cora", transform=NormalizeFeatures())[0]
    y = data.y.numpy()
    rows = []
    for seed in args.seeds:
        sides = {} if args.no_official else {
            "official": lambda s=seed: official_embeddings(args.official, data, s)}
        if args.anyssl:
            sides["anyssl"] = lambda s=seed: anyssl_embeddings(work, s, work)
        for side, fn in sides.items():
            start = time.perf_counter()
            z = fn()
            seconds = time.perf_counter() - start
            row = {"side": side, "seed": seed, "train_s": round(seconds, 1),
                   "split_10_10_80": split_eval(z, y, seed), "grace_eval_10_90": grace_eval(z, y)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"config": CORA, "rows": rows}, indent=1))
    for side in sorted({r["side"] for r in rows}):
        a = [r["split_10_10_80"] for r in rows if r["side"] == side]
        b = [r["grace_eval_10_90"]["mean"] for r in rows if r["side"] == side]
        print(f"{side}: 10/10/80 {100 * np.mean(a):.2f} +- {100 * np.std(a):.2f}   "
              f"eval.py 10/90 {100 * np.mean(b):.2f} +- {100 * np.std(b):.2f}")


if __name__ == "__main__":
    main()
