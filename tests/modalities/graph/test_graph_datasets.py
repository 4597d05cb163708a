"""Registered graph datasets: the digits defaults, tu / planetoid / path, offline errors."""

from __future__ import annotations

import logging
import shutil
import urllib.error
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch_geometric.io.fs
from sklearn.datasets import load_digits
from torch_geometric.data import Data
from torch_geometric.utils import is_undirected, to_undirected

from anyssl.modalities.graph import datasets as gd
from anyssl.modalities.graph import datasets_digits as dd
from anyssl.modalities.graph.data import GraphDataset, NodeDataset
from anyssl.modalities.graph.data_checks import GraphDataError
from anyssl.modalities.graph.pyg_files import DatasetDownloadError, RawFolderError
from anyssl.registry import DATASETS

SHARED = (Path(__file__).resolve().parents[3] / "../shared/datasets").resolve()


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No network (PyG downloads through ``torch_geometric.io.fs.cp``) and a private cache."""
    def no_network(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torch_geometric.io.fs, "cp", no_network)
    monkeypatch.setenv("ANYSSL_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def shared_copy(tmp_path: Path, family: str) -> Path:
    src = SHARED / family
    if not src.is_dir():
        pytest.skip(f"shared dataset folder {src} not found")
    dst = tmp_path / "data" / family
    shutil.copytree(src, dst)
    return dst


def write_tu(root: Path, name: str, graphs: list[tuple[int, list[tuple[int, int]]]],
             labels: list[int], skip: str | None = None) -> Path:
    """TU text files for ``graphs`` = [(num_nodes, undirected edges)] (1-based ids on disk)."""
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    a, ind, start = [], [], 1
    for gi, (n, edges) in enumerate(graphs):
        ind += [gi + 1] * n
        for u, v in edges:
            a += [(u + start, v + start), (v + start, u + start)]
        start += n
    files = {"A": "\n".join(f"{u}, {v}" for u, v in a),
             "graph_indicator": "\n".join(map(str, ind)),
             "graph_labels": "\n".join(map(str, labels))}
    for key, text in files.items():
        if key != skip:
            (raw / f"{name}_{key}.txt").write_text(text + "\n")
    return raw


def star_and_paths(n: int = 20) -> tuple[list[tuple[int, list[tuple[int, int]]]], list[int]]:
    graphs = [(4, [(0, 1), (0, 2), (0, 3)]) if i % 2 else (3, [(0, 1), (1, 2)])
              for i in range(n)]
    return graphs, [1 if i % 2 else -1 for i in range(n)]  # TU labels -1 / 1


# ---- digits-graphs --------------------------------------------------------------------------
def test_digits_graphs_are_8_neighbour_pixel_graphs() -> None:
    assert DATASETS.get("digits-graphs", "graph") is dd.digits_graphs
    train, test = dd.digits_graphs("train"), dd.digits_graphs("test")
    assert len(train) + len(test) == 1797
    assert sorted(train.indices + test.indices) == list(range(1797))
    target = load_digits().target
    counts = np.bincount(target)
    assert np.bincount(test.targets).tolist() == [round(0.1 * c) for c in counts]  # stratified
    assert train.targets == target[train.indices].tolist()
    assert train.encoder_kwargs == {"in_dim": 3, "level": "graph"} and train.num_classes == 10
    images = load_digits().images
    for k in (0, 5, 700):  # brute-force reference: loop over pixels
        data, _ = train[k]
        img = images[train.indices[k]]
        pix = [(r, c) for r in range(8) for c in range(8) if img[r, c] > 0]
        ref_x = torch.tensor([[img[r, c] / 16, r / 7, c / 7] for r, c in pix], dtype=torch.float32)
        ref_e = {(i, j) for i, p in enumerate(pix) for j, q in enumerate(pix)
                 if i != j and max(abs(p[0] - q[0]), abs(p[1] - q[1])) == 1}
        assert torch.allclose(data.x, ref_x)
        assert set(map(tuple, data.edge_index.t().tolist())) == ref_e
        assert data.edge_index.shape[1] == len(ref_e)
    for data, _ in (*train, *test):
        assert data.num_nodes > 0 and is_undirected(data.edge_index, num_nodes=data.num_nodes)


# ---- digits-knn -----------------------------------------------------------------------------
def test_digits_knn_is_one_symmetric_knn_graph() -> None:
    ds = dd.digits_knn("train")
    assert isinstance(ds, NodeDataset) and len(ds) == 1
    data, label = ds[0]
    assert data.num_nodes == 1797 and data.x.shape == (1797, 64)
    assert ds.encoder_kwargs == {"in_dim": 64, "level": "node"} and ds.num_classes == 10
    ei = data.edge_index
    assert is_undirected(ei, num_nodes=1797) and not bool((ei[0] == ei[1]).any())
    assert int(torch.bincount(ei[0], minlength=1797).min()) >= 10
    dist = torch.cdist(data.x[:5], data.x).index_fill_(1, torch.arange(5), float("inf"))
    for i in range(5):  # every node's 10 nearest neighbours are its neighbours
        assert set(dist[i].topk(10, largest=False).indices.tolist()) <= set(
            ei[1][ei[0] == i].tolist())
    m = ds.masks
    assert [int(m[k].sum()) for k in ("train", "val", "test")] == pytest.approx(
        [180, 180, 1437], abs=12)
    assert not bool((m["train"] & m["test"]).any() | (m["train"] & m["val"]).any()
                    | (m["val"] & m["test"]).any())
    assert torch.equal(label, torch.as_tensor(load_digits().target)[m["train"]])
    assert torch.equal(dd.digits_knn("test")[0][0].node_mask, m["test"])


# ---- TU -------------------------------------------------------------------------------------
def test_tu_mutag_from_a_copy_of_the_shared_folder(tmp_path: Path) -> None:
    root = shared_copy(tmp_path, "tu")
    train, test = gd.tu("MUTAG", "train", root=root), gd.tu("MUTAG", "test", root=root)
    assert len(train) + len(test) == 188
    assert train.encoder_kwargs == {"in_dim": 7, "level": "graph"} and train.num_classes == 2
    assert not (root / "MUTAG" / "processed").exists()  # PyG processed in the cache
    assert (tmp_path / "cache" / "tu" / ".staged").is_dir()
    via_path = gd.path(root, "test")
    assert via_path.indices == test.indices and torch.equal(via_path[0][0].x, test[0][0].x)
    via_raw = gd.path(root / "MUTAG" / "raw", "test")
    assert via_raw.indices == test.indices


def test_tu_synthetic_folder_without_node_labels_gets_degree_features(tmp_path: Path) -> None:
    graphs, labels = star_and_paths()
    write_tu(tmp_path / "tu", "TOY", graphs, labels)
    train = gd.tu("TOY", root=tmp_path / "tu")
    test = gd.tu("TOY", "test", root=tmp_path / "tu")
    assert len(train) + len(test) == 20 and train.num_classes == 2
    assert train.encoder_kwargs["in_dim"] == 4  # one-hot degree 0..3 (the star's centre)
    for data, label in train:
        assert data.x.argmax(1).tolist() == ([3, 1, 1, 1] if label == 1 else [1, 2, 1])
    again = gd.tu("TOY", root=tmp_path / "tu")  # the staged, processed copy is reused
    assert again.indices == train.indices


def test_tu_folder_missing_a_file_names_it(tmp_path: Path) -> None:
    graphs, labels = star_and_paths()
    write_tu(tmp_path / "tu", "TOY", graphs, labels, skip="graph_indicator")
    with pytest.raises(RawFolderError, match=r"has no TOY_graph_indicator\.txt; a TU folder "
                                             r"needs TOY_A\.txt, TOY_graph_indicator\.txt"):
        gd.tu("TOY", root=tmp_path / "tu")
    with pytest.raises(RawFolderError, match=r"TOY_graph_indicator\.txt"):
        gd.path(tmp_path / "tu")


def test_tu_offline_download_error_says_how_to_point_at_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetDownloadError) as err:
        gd.tu("PROTEINS")
    msg = str(err.value)
    assert "\n" not in msg and "could not download tu dataset 'PROTEINS'" in msg
    assert "network is unreachable" in msg and "--data /path/to/ROOT" in msg
    assert "PROTEINS_graph_indicator.txt" in msg and str(tmp_path / "cache") in msg
    assert not (tmp_path / "cache" / "tu" / "PROTEINS").exists()  # nothing half-made left
    with pytest.raises(ValueError, match="bad dataset name"):
        gd.tu("../etc")


def test_tu_download_goes_to_the_cache_and_is_found_there(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    graphs, labels = star_and_paths()
    src = write_tu(tmp_path / "src", "TOY", graphs, labels)

    def fake_download(url: str, to: str, extract: bool = False) -> None:  # PyG's fs.cp
        assert url.endswith("/TOY.zip") and extract
        shutil.copytree(src, Path(to) / "TOY")

    monkeypatch.setattr(torch_geometric.io.fs, "cp", fake_download)
    first = gd.tu("TOY")
    cached = tmp_path / "cache" / "tu" / "TOY"
    assert (cached / "raw" / "TOY_A.txt").is_file() and (cached / "processed").is_dir()
    monkeypatch.setattr(torch_geometric.io.fs, "cp", None)  # a second call must not download
    again = gd.tu("TOY")
    assert again.indices == first.indices and not (tmp_path / "cache" / "tu" / ".staged").exists()


# ---- Planetoid ------------------------------------------------------------------------------
def test_planetoid_cora_public_and_random_splits(tmp_path: Path) -> None:
    root = shared_copy(tmp_path, "planetoid")
    train = gd.planetoid("Cora", "train", root=root)
    test = gd.planetoid("cora", "test", root=root)
    data = train[0][0]
    assert data.num_nodes == 2708 and train.encoder_kwargs == {"in_dim": 1433, "level": "node"}
    assert int(train.masks["train"].sum()) == 140 and int(test.masks["test"].sum()) == 1000
    assert train[0][1].shape == (140,) and test[0][1].shape == (1000,)
    assert train.num_classes == 7 and train.suggested_epochs == 200
    sums = data.x.sum(1)  # row-normalised bag of words
    assert torch.allclose(sums[sums > 0], torch.ones(int((sums > 0).sum())))
    assert not (root / "Cora" / "processed").exists()
    rnd = gd.planetoid("Cora", root=root, split_mode="random", split_seed=1).masks
    fractions = [int(rnd[k].sum()) / 2708 for k in ("train", "val", "test")]
    assert fractions == pytest.approx([0.1, 0.1, 0.8], abs=0.01)
    assert bool((rnd["train"] | rnd["val"] | rnd["test"]).all())
    via_path = gd.path(root)
    assert torch.equal(via_path[0][0].node_mask, train.masks["train"])


def test_planetoid_offline_and_bad_names(tmp_path: Path) -> None:
    with pytest.raises(DatasetDownloadError, match=r"could not download planetoid dataset "
                                                   r"'PubMed'.*ind\.pubmed\.graph"):
        gd.planetoid("pubmed")
    with pytest.raises(ValueError, match="unknown Planetoid dataset 'Reddit'; choose one of: "
                                         "Cora, CiteSeer, PubMed"):
        gd.planetoid("Reddit")


# ---- path: .pt files and detection ----------------------------------------------------------
def test_path_pt_files_graph_and_node_level(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    graphs = [Data(x=torch.randn(3, 2), edge_index=to_undirected(torch.tensor([[0], [1]])),
                   y=torch.tensor([i % 2])) for i in range(20)]
    torch.save(graphs, tmp_path / "graphs.pt")
    with caplog.at_level(logging.WARNING):
        ds = gd.path(tmp_path / "graphs.pt")
    assert "weights_only=False" not in caplog.text  # Data loads with weights_only=True
    assert Data in torch.serialization.get_safe_globals()  # PyG's own allow-list intact
    assert isinstance(ds, GraphDataset) and ds.encoder_kwargs["in_dim"] == 2
    k = ds.indices[0]
    assert torch.equal(ds[0][0].x, graphs[k].x)
    node = Data(x=torch.randn(50, 3), edge_index=torch.tensor([[0, 1], [1, 0]]),
                y=torch.arange(50) % 2)
    torch.save(node, tmp_path / "node.pt")
    nd = gd.path(str(tmp_path / "node.pt"), "test", split_mode="random")
    assert isinstance(nd, NodeDataset) and nd[0][1].shape == (40,)
    graphs[0].meta = Fraction(1, 2)  # not loadable with weights_only=True
    torch.save(graphs, tmp_path / "other.pt")
    with pytest.raises(GraphDataError, match="pickled objects beyond PyG's Data"):
        gd.path(tmp_path / "other.pt", "test")  # never unpickled with weights_only=False
    torch.save({"a": torch.ones(2)}, tmp_path / "dict.pt")
    with pytest.raises(ValueError, match="holds a dict"):
        gd.path(tmp_path / "dict.pt")


def test_path_detection_errors(tmp_path: Path) -> None:
    with pytest.raises(RawFolderError, match="does not exist"):
        gd.path(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RawFolderError, match="holds no graph dataset"):
        gd.path(tmp_path / "empty")
    graphs, labels = star_and_paths()
    write_tu(tmp_path / "two", "AAA", graphs, labels)
    write_tu(tmp_path / "two", "BBB", graphs, labels)
    with pytest.raises(RawFolderError, match=r"several datasets \(AAA, BBB\)"):
        gd.path(tmp_path / "two")
    assert len(gd.path(tmp_path / "two", name="BBB")) == 18
