"""InfoGraph's own code (``fanyun-sun/InfoGraph``, ``unsupervised/``; a checkout passed with
``--official``, not committed) on MUTAG, scored with anyssl's SVM protocol after every epoch.

Each seed trains the official ``Encoder`` (``gin.py``), ``FF`` heads (``model.py``) and
``local_global_loss_`` (``losses.py``, JSD) with the README's command (3 GIN layers of 32, Adam
lr 0.001, batch 128, 20 epochs, no prior) on every graph of the set, as its ``main.py`` does,
and scores the embeddings of all graphs with ``anyssl.eval.svm.svm_cv`` (RBF SVC, C by inner
5-fold search, 10-fold stratified CV: the protocol of anyssl's ``tu-*`` rows) before training
and after each epoch, as ``main.py`` logs its own SVC. The table gives the last epoch (what
anyssl reports) and the best epoch (the most favourable reading of ``main.py``'s log).

Command: ``python benchmarks/peers/infograph_side_by_side.py --official DIR --tu DIR
--seeds 0 1 2 3 4`` (``results/infograph_side_by_side-cpu.json``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parents[1] / "results"


def train_official(checkout: Path, dataset: Any, seed: int, epochs: int) -> list[float]:
    """One seed of ``main.py``'s loop; the SVM accuracy before training and after each epoch."""
    sys.path.insert(0, str(checkout / "unsupervised"))
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]  # losses.py
    from gin import Encoder
    from losses import local_global_loss_
    from model import FF
    from torch_geometric.loader import DataLoader

    from anyssl.eval.svm import svm_cv

    torch.manual_seed(seed)
    np.random.seed(seed)
    data = dataset.shuffle()  # main.py: TUDataset(...).shuffle()
    loader = DataLoader(data, batch_size=128)
    encoder = Encoder(max(data.num_features, 1), 32, 3)
    local_d, global_d = FF(96), FF(96)
    modules = torch.nn.ModuleList([encoder, local_d, global_d])
    for m in modules.modules():  # InfoGraph.init_emb
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(m.weight.data)
            if m.bias is not None:
                m.bias.data.fill_(0.0)
    opt = torch.optim.Adam(modules.parameters(), lr=0.001)

    def score() -> float:
        modules.eval()
        emb, y = encoder.get_embeddings(loader)
        return float(svm_cv(emb, y, folds=10, seed=seed, kernel="rbf")["mean"])

    accs = [score()]
    for _ in range(epochs):
        modules.train()
        for batch in loader:
            opt.zero_grad()
            y, m = encoder(batch.x, batch.edge_index, batch.batch)
            loss = local_global_loss_(local_d(m), global_d(y), batch.edge_index, batch.batch,
                                      "JSD")
            loss.backward()
            opt.step()
        accs.append(score())
    return accs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--official", type=Path, required=True, help="InfoGraph checkout")
    p.add_argument("--tu", type=Path, required=True, help="folder holding MUTAG/raw")
    p.add_argument("--name", default="MUTAG")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from torch_geometric.datasets import TUDataset

    work = Path(tempfile.mkdtemp(prefix="infograph-sbs-"))
    shutil.copytree(args.tu / args.name, work / args.name)  # PyG writes processed/
    dataset = TUDataset(str(work), args.name)
    rows = []
    for seed in args.seeds:
        accs = train_official(args.official, dataset, seed, args.epochs)
        rows.append({"seed": seed, "per_epoch": accs, "last": accs[-1], "best": max(accs[1:]),
                     "random_init": accs[0]})
        print(json.dumps(rows[-1]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "infograph_side_by_side-cpu.json").write_text(json.dumps(rows, indent=1))
    for key in ("random_init", "last", "best"):
        xs = [100 * r[key] for r in rows]
        print(f"official {key}: {statistics.mean(xs):.2f} +- {statistics.pstdev(xs):.2f}")


if __name__ == "__main__":
    main()
