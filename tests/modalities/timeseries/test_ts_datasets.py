"""Time-series datasets: SeriesDataset, z-normalization, the gunpoint / path / ucr factories
(TS2Vec's normalization modes: ``test_ts_normalize.py``; pre-training sections:
``test_ts_sections.py``)."""

from __future__ import annotations

import io
import math
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from anyssl.modalities.timeseries import datasets as tsd
from anyssl.modalities.timeseries.datasets import (
    DATA_DIR,
    SeriesDataset,
    gunpoint,
    split_indices,
    ts2vec_epochs,
    znormalize,
)
from anyssl.modalities.timeseries.io_text import read_tsv
from anyssl.modalities.timeseries.normalize import apply_stats, fit_stats
from anyssl.registry import DATASETS

NAN = float("nan")


# ---- normalization and the dataset ----------------------------------------------------------
def test_znormalize_matches_hand_math_and_keeps_nan() -> None:
    x = torch.tensor([[[1.0, NAN, 3.0, 5.0], [2.0, 2.0, 2.0, NAN]]])  # 1 x 2 x 4
    z = znormalize(x)
    obs = torch.tensor([1.0, 3.0, 5.0])
    ref = (obs - obs.mean()) / obs.std(unbiased=False)
    torch.testing.assert_close(z[0, 0, [0, 2, 3]], ref)
    assert torch.isnan(z[0, 0, 1]) and torch.isnan(z[0, 1, 3])
    assert torch.equal(z[0, 1, :3], torch.zeros(3))  # constant channel -> 0, not NaN
    assert torch.equal(znormalize(torch.full((1, 1, 3), 0.1)), torch.zeros(1, 1, 3))
    many = torch.randn(5, 2, 7).masked_fill(torch.rand(5, 2, 7) < 0.2, NAN)
    torch.testing.assert_close(znormalize(many, chunk=2), znormalize(many), equal_nan=True)


def test_series_dataset_attributes_and_items() -> None:
    x = np.array([[[1, 2, 3, NAN]], [[4, 4, 6, 8]], [[0, 1, 0, 1]]], dtype=np.float32)
    ds = SeriesDataset(x, [1, 0, -1], ["a", "b"], normalize="none")
    assert len(ds) == 3 and ds.num_classes == 2 and ds.classes == ["a", "b"]
    assert ds.encoder_kwargs == {"in_channels": 1, "length": 4}
    item, label = ds[1]
    assert item.dtype == torch.float32 and item.shape == (1, 4) and label == 0
    assert torch.equal(item, torch.tensor([[4.0, 4, 6, 8]]))  # "none" keeps raw values
    batch, labels = default_collate([ds[i] for i in range(3)])
    assert batch.shape == (3, 1, 4) and labels.tolist() == [1, 0, -1]
    assert SeriesDataset(x).num_classes is None and SeriesDataset(x).targets == [-1, -1, -1]
    torch.testing.assert_close(SeriesDataset(x, normalize=False).series, torch.from_numpy(x),
                               equal_nan=True)
    torch.testing.assert_close(SeriesDataset(x, normalize=True).series,
                               znormalize(torch.from_numpy(x)), equal_nan=True)


def test_series_dataset_bad_input() -> None:
    x = np.zeros((2, 1, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="unknown normalize 'minmax'; choose one of: auto, "):
        SeriesDataset(x, normalize="minmax")
    with pytest.raises(ValueError, match="N x C x T"):
        SeriesDataset(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="2 series but 3 labels"):
        SeriesDataset(x, [0, 1, 0])
    with pytest.raises(ValueError, match=r"labels must be -1 \(unlabeled\) or in 0..1"):
        SeriesDataset(x, [0, 2], ["a", "b"])


def test_ts2vec_epochs_budget() -> None:
    assert ts2vec_epochs(50, 1, 150) == math.ceil(200 / 6)  # 7,500 values: 200 iterations
    assert ts2vec_epochs(1000, 1, 101) == math.ceil(600 / 125)  # 101,000 values: 600
    assert ts2vec_epochs(5, 2, 10) == 200  # fewer than 8 series: one step an epoch


# ---- gunpoint -------------------------------------------------------------------------------
def test_gunpoint_splits_labels_and_normalization() -> None:
    train, test = DATASETS.get("gunpoint", "timeseries")(split="train"), gunpoint(split="test")
    assert (len(train), len(test)) == (50, 150)
    for ds in (train, test):
        assert ds.encoder_kwargs == {"in_channels": 1, "length": 150}
        assert ds.num_classes == 2 and ds.classes == ["1", "2"]
        assert ds.normalize == "none" and "normalize=none (default, as TS2Vec)" in ds.notes[0]
        x = gunpoint(split="train" if ds is train else "test", normalize="zscore").series
        assert not torch.isnan(x).any()
        torch.testing.assert_close(x.mean(-1), torch.zeros(len(ds), 1), atol=1e-5, rtol=0)
        torch.testing.assert_close(x.std(-1, unbiased=False), torch.ones(len(ds), 1),
                                   atol=1e-4, rtol=0)
    for ds, split in ((train, "TRAIN"), (test, "TEST")):  # ids agree with the raw labels
        raw = read_tsv(DATA_DIR / f"GunPoint_{split}.tsv").labels or []
        assert [ds.classes[t] for t in ds.targets] == raw
    assert train.suggested_epochs == math.ceil(200 / 6)
    raw_x = read_tsv(DATA_DIR / "GunPoint_TRAIN.tsv").X
    assert torch.equal(train.series, torch.from_numpy(raw_x))  # TS2Vec keeps GunPoint as released
    assert train.pretrain_set is None  # 150 equal-length steps: pre-training reads them as they are


# ---- path -----------------------------------------------------------------------------------
def test_path_folder_pads_both_splits_to_one_length(tmp_path: Path) -> None:
    root = tmp_path / "Toy"
    root.mkdir()
    (root / "Toy_TRAIN.tsv").write_text("10\t1\t2\t3\n2\t4\t5\t7\n")
    (root / "Toy_TEST.tsv").write_text("2\t1\t2\t3\t4\t5\n")
    train = DATASETS.get("path", "timeseries")(root=str(root), split="train", seed=3)
    test = tsd.path(root=root, split="test", normalize=False)
    assert train.encoder_kwargs == test.encoder_kwargs == {"in_channels": 1, "length": 5}
    assert train.classes == test.classes == ["2", "10"]
    assert train.targets == [1, 0] and test.targets == [0]
    assert torch.isnan(train.series[:, :, 3:]).all() and not torch.isnan(test.series).any()


def test_path_single_file_is_split_stratified_and_fixed(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 6, 2)), np.array([0] * 10 + [1] * 10)
    np.savez(tmp_path / "all.npz", X=x, y=y)
    train = tsd.path(root=tmp_path / "all.npz", split="train", seed=0)
    test = tsd.path(root=tmp_path / "all.npz", split="test", seed=7)  # seed does not move it
    assert (len(train), len(test)) == (16, 4) and sorted(test.targets) == [0, 0, 1, 1]
    tr_idx, te_idx = split_indices(list(y), 0.2, 0)
    raw = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1))).float()
    assert train.normalize == test.normalize == "channel"  # unnamed multivariate data
    stats = fit_stats(raw[tr_idx], "channel")  # from the training part only
    torch.testing.assert_close(test.series, apply_stats(raw[te_idx], stats))
    assert set(tr_idx.tolist()) | set(te_idx.tolist()) == set(range(20))
    assert train.encoder_kwargs == {"in_channels": 2, "length": 6}


def test_path_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"data path .*nowhere does not exist"):
        tsd.path(root=tmp_path / "nowhere", split="train")
    (tmp_path / "two.csv").write_text("1,2\n3,4\n")
    with pytest.raises(ValueError, match=r"two\.csv: 2 series are too few to split"):
        tsd.path(root=tmp_path / "two.csv", split="test")
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        tsd.path(root=tmp_path / "two.csv", split="dev")


# ---- ucr ------------------------------------------------------------------------------------
TOY_TS = "@problemName ArrowHead\n@univariate true\n@classLabel true 0 1\n@data\n{}\n"


def toy_zip(inner: str = "ArrowHead/") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(f"{inner}ArrowHead_TRAIN.ts", TOY_TS.format("1,2,3:0\n3,2,2:1\n0,0,1:0"))
        z.writestr(f"{inner}ArrowHead_TEST.ts", TOY_TS.format("5,4,3:1\n1,1,2:0"))
    return buf.getvalue()


@pytest.fixture()
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point $ANYSSL_DATA and $HOME at empty temporary folders (the cache lives there)."""
    monkeypatch.setenv("ANYSSL_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_ucr_offline_message(homes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, timeout: float = 0) -> Any:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(ValueError) as err:
        DATASETS.get("ucr", "timeseries")(name="ArrowHead", split="train", seed=0)
    text = str(err.value)
    assert "could not download UCR/UEA dataset 'ArrowHead'" in text and "no network" in text
    assert "--data /path/to/ArrowHead (a folder with ArrowHead_TRAIN.ts" in text
    assert str(homes / "data" / "ucr" / "ArrowHead") in text and "\n" not in text
    assert list((homes / "data" / "ucr").iterdir()) == []  # no half folder left


@pytest.mark.parametrize("inner", ["ArrowHead/", ""])
def test_ucr_downloads_once_into_cache(homes: Path, monkeypatch: pytest.MonkeyPatch,
                                       inner: str) -> None:
    calls: list[tuple[str, float]] = []

    def fake(url: str, timeout: float = 0) -> io.BytesIO:
        calls.append((url, timeout))
        return io.BytesIO(toy_zip(inner))

    monkeypatch.setattr(urllib.request, "urlopen", fake)
    train = tsd.ucr(name="ArrowHead", split="train", normalize="none")
    test = tsd.ucr(name="ArrowHead", split="test", normalize="none")
    assert calls == [("https://timeseriesclassification.com/aeon-toolkit/ArrowHead.zip", 60)]
    assert torch.equal(test.series, torch.tensor([[[5.0, 4, 3]], [[1, 1, 2]]]))
    assert train.targets == [0, 1, 0] and test.targets == [1, 0] and train.classes == ["0", "1"]
    cache = homes / "data" / "ucr"
    assert sorted(p.name for p in cache.iterdir()) == ["ArrowHead"]
    assert (cache / "ArrowHead" / "ArrowHead_TRAIN.ts").is_file()


def test_ucr_reads_root_without_network(tmp_path: Path, homes: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(url: str, timeout: float = 0) -> Any:
        raise AssertionError("no download expected")

    monkeypatch.setattr(urllib.request, "urlopen", forbidden)
    with zipfile.ZipFile(io.BytesIO(toy_zip(""))) as z:
        z.extractall(tmp_path / "mine")
    ds = tsd.ucr(name="ArrowHead", split="train", root=tmp_path / "mine")
    assert len(ds) == 3 and ds.num_classes == 2
    with pytest.raises(ValueError, match=r"bad UCR/UEA dataset name '\.\./x'"):
        tsd.ucr(name="../x", split="train")


def test_ucr_bad_zip(homes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=0: io.BytesIO(b"<html>"))
    with pytest.raises(ValueError, match=r"ArrowHead\.zip is not a readable zip"):
        tsd.ucr(name="ArrowHead", split="train")
    assert list((homes / "data" / "ucr").iterdir()) == []
