"""Registered graph datasets (``scope="graph"``): ``tu`` (``--data tu:MUTAG``), ``planetoid``
(``--data planetoid:Cora``) and ``path`` (``--data DIR_OR_FILE``); the offline defaults
``digits-graphs`` / ``digits-knn`` live in ``datasets_digits.py``.

Every factory is called as ``f(split="train"|"test", seed=0, **kw)``; ``seed`` (the training
seed) never changes a split: splits are fixed by ``split_seed`` so every run evaluates on the
same graphs or nodes. Raw files are read offline from disk (see ``pyg_files`` for where we look
and where PyG's ``processed/`` goes); only when none are found does PyG download them, and a
failed download is a one-line ``DatasetDownloadError`` saying how to point at local files.
"""

from __future__ import annotations

import logging
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import Data
from torch_geometric.data import Dataset as PygDataset
from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
from torch_geometric.data.storage import EdgeStorage, GlobalStorage, NodeStorage
from torch_geometric.datasets import Planetoid, TUDataset
from torch_geometric.transforms import NormalizeFeatures

from anyssl.modalities.graph.data import GraphDataset, NodeDataset, graph_dataset
from anyssl.modalities.graph.data_checks import GraphDataError
from anyssl.modalities.graph.data_tu import check_tu_raw
from anyssl.modalities.graph.pyg_files import (
    DatasetDownloadError,
    RawFolderError,
    cache_dir,
    download,
    find_raw,
    planetoid_files,
    search_folders,
    stage,
    tu_files,
)
from anyssl.modalities.graph.sampling import BATCH_NODES, FANOUT, sampled_dataset
from anyssl.registry import DATASETS

__all__ = ["PLANETOID_NAMES", "DatasetDownloadError", "RawFolderError", "load_planetoid",
           "load_pt", "load_tu", "path", "planetoid", "tu"]

log = logging.getLogger(__name__)
#: Planetoid's citation graphs (Yang et al. 2016), by lower-case name.
PLANETOID_NAMES = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
#: GRACE's (Zhu et al. 2020) training epochs per Planetoid graph.
PLANETOID_EPOCHS = {"Cora": 200, "CiteSeer": 200, "PubMed": 1500}
_SAFE_PYG = [Data, DataEdgeAttr, DataTensorAttr, GlobalStorage, NodeStorage, EdgeStorage]


def _check_name(name: str, example: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", name or ""):
        raise ValueError(f"bad dataset name {name!r}; give a name like {example}")
    return name


def _hint(name: str, family: str, needs: str) -> str:
    return (f"point at local files: --data /path/to/ROOT where ROOT/{name}/raw/ holds {needs}, "
            f"or put them in {cache_dir(family) / name / 'raw'}")


# ---- TU -------------------------------------------------------------------------------------
def load_tu(name: str, folders: list[Path], use_node_attr: bool = False) -> TUDataset:
    """PyG's ``TUDataset`` for ``name`` from the first of ``folders`` holding its raw files
    (staged into the cache first and checked by ``data_tu.check_tu_raw`` before PyG first
    processes them), else downloaded into the cache."""
    files = tu_files(name)
    raw = find_raw(folders, files)
    if raw is not None:
        root = stage(raw, name, "tu", files)
        if not (root / name / "processed" / "data.pt").is_file():  # PyG reads the files now
            check_tu_raw(raw, name, need_newline=(root / name / "raw") == raw.resolve())
        return TUDataset(str(root), name, use_node_attr=use_node_attr)
    hint = _hint(name, "tu", files[2].removeprefix("a TU folder needs "))
    return download(lambda r: TUDataset(r, name, use_node_attr=use_node_attr), "tu", name,
                    f"{TUDataset.url}/{name}.zip", hint, files)


@DATASETS.register("tu", scope="graph")
def tu(name: str, split: str = "train", seed: int = 0, root: str | Path | None = None,
       split_seed: int = 0, test_fraction: float = 0.1, use_node_attr: bool = False,
       features: str = "auto", max_degree: int | None = 64,
       pretrain_on: str = "train") -> GraphDataset:
    """A TU graph-classification set (Morris et al. 2020) by name, ``tu:MUTAG``.

    Raw files ``NAME_A.txt``, ``NAME_graph_indicator.txt``, ``NAME_graph_labels.txt`` (+
    optional node/edge labels and attributes) are read with PyG's ``TUDataset`` from ``root``
    (``root/NAME/raw``, ``root/NAME``, ``root/raw`` or ``root``), ``$ANYSSL_DATA/tu/NAME/raw``
    or ``~/.cache/anyssl/tu/NAME/raw``, else downloaded into the cache. Node features are the
    one-hot node labels (plus continuous attributes when ``use_node_attr``, PyG's default off);
    sets without any get degree features (``features`` / ``max_degree``). A seeded stratified
    90/10 split (``split_seed``); GraphCL's 20 epochs and 10-fold SVM protocol.
    ``pretrain_on="all"``: pre-train on every graph (the papers' unsupervised protocol).
    """
    _check_name(name, "MUTAG")
    ds = load_tu(name, search_folders("tu", name, root), use_node_attr)
    return GraphDataset(ds, split, split_seed=split_seed, test_fraction=test_fraction,
                        features=features, max_degree=max_degree, pretrain_on=pretrain_on)


# ---- Planetoid ------------------------------------------------------------------------------
def _planetoid_name(name: str) -> str:
    canon = PLANETOID_NAMES.get((name or "").lower())
    if canon is None:
        raise ValueError(f"unknown Planetoid dataset {name!r}; choose one of: "
                         f"{', '.join(PLANETOID_NAMES.values())}")
    return canon


def load_planetoid(name: str, folders: list[Path]) -> Data:
    """The one graph of a Planetoid set (``Data`` with ``x``, ``edge_index``, ``y`` and the
    public ``train_mask`` / ``val_mask`` / ``test_mask``), read like ``load_tu``."""
    files = planetoid_files(name)
    raw = find_raw(folders, files)
    if raw is not None:
        return Planetoid(str(stage(raw, name, "planetoid", files)), name)[0]
    hint = _hint(name, "planetoid", files[2].removeprefix("a Planetoid folder needs "))
    return download(lambda r: Planetoid(r, name), "planetoid", name, Planetoid.url, hint,
                    files)[0]


def _node_dataset(data: Data, name: str, split: str, split_mode: str, split_seed: int,
                  normalize_features: bool, features: str, sampling: dict[str, Any]) -> Any:
    """A node-level data set, as sampled subgraphs when ``sampling`` (``sampler``,
    ``batch_nodes``, ``fanout``, ``seed``; ``sampling.sampled_dataset``) asks or the graph is
    large."""
    if normalize_features:
        data = NormalizeFeatures()(data.clone())
    ds = NodeDataset(data, split, split_mode=split_mode, split_seed=split_seed,
                     features=features, suggested_epochs=PLANETOID_EPOCHS.get(name, 200))
    return sampled_dataset(ds, split, **sampling)


@DATASETS.register("planetoid", scope="graph")
def planetoid(name: str = "Cora", split: str = "train", seed: int = 0,
              root: str | Path | None = None, split_mode: str = "public", split_seed: int = 0,
              normalize_features: bool = True, features: str = "auto", sampler: str = "auto",
              batch_nodes: int = BATCH_NODES, fanout: Any = FANOUT) -> Any:
    """A Planetoid citation graph (Cora, CiteSeer, PubMed; Yang et al. 2016), node level.

    Raw ``ind.NAME.*`` files are found like ``tu``'s (``root/Cora/raw`` ...). ``split_mode``:
    ``"public"`` = the standard 20-per-class train / 500 val / 1,000 test masks (DGI's
    protocol), ``"random"`` = GRACE's seeded 10/10/80 split (``split_seed``).
    ``normalize_features``: row-normalise the bag-of-words (``T.NormalizeFeatures``), as DGI
    and GRACE do. ``suggested_epochs``: GRACE's 200 (1,500 for PubMed). ``sampler``,
    ``batch_nodes``, ``fanout``: mini-batches of sampled subgraphs (``sampling``; ``auto``:
    above 50,000 nodes).
    """
    canon = _planetoid_name(name)
    folders = search_folders("planetoid", canon, root)
    if root is not None and name != canon:
        folders[:0] = search_folders("planetoid", name, root)[:2]
    data = load_planetoid(canon, folders)
    return _node_dataset(data, canon, split, split_mode, split_seed, normalize_features,
                         features, {"sampler": sampler, "batch_nodes": batch_nodes,
                                    "fanout": fanout, "seed": seed})


# ---- path -----------------------------------------------------------------------------------
def load_pt(p: Path) -> Any:
    """``torch.load`` a ``.pt`` file of ``Data`` objects with ``weights_only=True`` (PyG's
    storage classes allow-listed). A file holding other pickled objects is refused: unpickling
    them could run code from the file."""
    known = torch.serialization.get_safe_globals()
    extra = [c for c in _SAFE_PYG if c not in known]  # leaving the context drops what it added
    try:
        with torch.serialization.safe_globals(extra):
            return torch.load(p, weights_only=True)
    except pickle.UnpicklingError:
        raise GraphDataError(
            f"{p} holds pickled objects beyond PyG's Data that anyssl will not execute; save "
            "plain Data (tensors and numbers) with torch.save, or load the file yourself and pass "
            "the graphs to anyssl.modalities.graph.data.graph_dataset"
        ) from None


def _raw_names(folder: Path) -> dict[str, tuple[str, Path]]:
    """``{name: (family, folder)}`` of the TU / Planetoid raw files directly in ``folder``."""
    out: dict[str, tuple[str, Path]] = {}
    for f in sorted(folder.glob("*_*.txt")):
        for kind in ("A", "graph_indicator", "graph_labels"):
            if f.name.endswith(f"_{kind}.txt"):
                out.setdefault(f.name[: -len(f"_{kind}.txt")], ("tu", folder))
    for f in sorted(folder.glob("ind.*.*")):
        key = f.name.split(".")[1].lower()
        if key in PLANETOID_NAMES:
            out.setdefault(PLANETOID_NAMES[key], ("planetoid", folder))
    return out


def detect(root: Path, name: str | None = None) -> tuple[str, str, Path]:
    """``(family, name, raw folder)`` of the dataset in ``root``: a TU or Planetoid root
    (``root/NAME/raw/``), a ``root/raw/`` folder, or the raw folder itself."""
    found: dict[str, tuple[str, Path]] = {}
    for folder in (root, root / "raw", *sorted(root.glob("*/raw"))):
        for key, value in _raw_names(folder).items():
            found.setdefault(key, value)
    if name is not None:
        found = {k: v for k, v in found.items() if k.lower() == name.lower()}
    if len(found) == 1:
        (key, (family, folder)), = found.items()
        return family, key, folder
    if not found:
        raise RawFolderError(f"{root} holds no graph dataset{f' named {name!r}' if name else ''}; "
                             "give a TU root (NAME/raw/NAME_A.txt, NAME_graph_indicator.txt, "
                             "NAME_graph_labels.txt), a Planetoid root (Cora/raw/ind.cora.*) "
                             "or a .pt file of Data objects")
    raise RawFolderError(f"{root} holds several datasets ({', '.join(sorted(found))}); pick one "
                         "with --data-arg name=NAME")


@DATASETS.register("path", scope="graph")
def path(root: str | Path, split: str = "train", seed: int = 0, name: str | None = None,
         split_seed: int = 0, test_fraction: float = 0.1, split_mode: str = "public",
         use_node_attr: bool = False, normalize_features: bool = True,
         features: str = "auto", max_degree: int | None = 64, sampler: str = "auto",
         batch_nodes: int = BATCH_NODES, fanout: Any = FANOUT, pretrain_on: str = "train") -> Any:
    """Graphs from disk, detected automatically: a TU root (graph level; ``test_fraction``,
    ``use_node_attr``), a Planetoid root (node level; ``split_mode``, ``normalize_features``
    as in ``planetoid``), or a ``.pt`` file saved with ``torch.save`` holding a list
    of ``Data`` (graph level) or one ``Data`` (node level, its masks or a random split).
    ``name`` picks one dataset in a folder holding several. Node level: ``sampler``,
    ``batch_nodes``, ``fanout`` as in ``planetoid``. Graph level: ``pretrain_on`` as in
    ``tu``."""
    sampling = {"sampler": sampler, "batch_nodes": batch_nodes, "fanout": fanout, "seed": seed}
    p = Path(str(root).removeprefix("file:")).expanduser()
    if not p.exists():
        raise RawFolderError(f"data path {p} does not exist; give a TU or Planetoid folder or "
                             "a .pt file of Data objects")
    if p.is_file():
        obj = load_pt(p)
        if isinstance(obj, Data):
            return sampled_dataset(NodeDataset(obj, split, split_mode=split_mode,
                                               split_seed=split_seed, features=features,
                                               max_degree=max_degree), split, **sampling)
        if not isinstance(obj, (list, tuple, PygDataset)):
            raise GraphDataError(f"{p} holds a {type(obj).__name__}; save a list of Data "
                                 "(graph level) or one Data (node level) with torch.save")
        if len(obj) == 0:
            raise GraphDataError(f"{p} holds no graphs (an empty list); save at least one Data")
        return graph_dataset(obj, split, split_seed, test_fraction=test_fraction,
                             features=features, max_degree=max_degree, pretrain_on=pretrain_on)
    family, key, raw = detect(p, name)
    if family == "planetoid":
        data = load_planetoid(key, [raw])
        return _node_dataset(data, key, split, split_mode, split_seed, normalize_features,
                             features, sampling)
    ds = load_tu(key, [raw], use_node_attr)
    return GraphDataset(ds, split, split_seed=split_seed, test_fraction=test_fraction,
                        features=features, max_degree=max_degree, pretrain_on=pretrain_on)
