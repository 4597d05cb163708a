"""CIFAR / STL-10 through torchvision, never downloading: torchvision's classes are replaced
by fakes (offline errors, local folders, layout conversion)."""

from __future__ import annotations

import urllib.error
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd

from anyssl.modalities.image.datasets import DatasetDownloadError
from anyssl.modalities.image.datasets_files import path
from anyssl.modalities.image.datasets_torchvision import cifar10, cifar100, stl10


class _Offline:
    def __init__(self, root: str, download: bool = False, **kw: Any) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


class _FakeCifar:
    calls: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, root: str, train: bool = True, download: bool = False) -> None:
        _FakeCifar.calls.append({"root": root, "train": train, "download": download})
        n = 6 if train else 4
        self.data = np.zeros((n, 32, 32, 3), dtype=np.uint8)
        self.data[..., 0] = 200  # red channel, stored H x W x C like torchvision
        self.targets = list(range(n))
        self.classes = [f"c{i}" for i in range(10)]


class _FakeSTL:
    def __init__(self, root: str, split: str = "train", download: bool = False) -> None:
        n = {"train": 5, "test": 8, "train+unlabeled": 9}[split]
        self.data = np.zeros((n, 3, 96, 96), dtype=np.uint8)
        self.labels = np.array([i % 10 if i < 5 else -1 for i in range(n)])
        self.classes = [f"s{i}" for i in range(10)]


@pytest.mark.parametrize("factory,cls", [(cifar10, "CIFAR10"), (cifar100, "CIFAR100"),
                                         (stl10, "STL10")])
def test_offline_download_error_says_what_to_do(monkeypatch, tmp_path: Path, factory,
                                                cls: str) -> None:
    monkeypatch.setattr(tvd, cls, _Offline)
    with pytest.raises(DatasetDownloadError, match="--data /path/to/") as err:
        factory("train", root=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "name resolution" in msg and str(tmp_path) in msg
    assert isinstance(err.value, ValueError)


def test_corrupt_local_files_are_reported(monkeypatch, tmp_path: Path) -> None:
    def corrupt(*a: Any, **kw: Any) -> None:
        raise RuntimeError("Dataset not found or corrupted.\nYou can use download=True")

    monkeypatch.setattr(tvd, "CIFAR10", corrupt)
    expected = r"nor download it \(Dataset not found or corrupted\.\); offline"
    with pytest.raises(DatasetDownloadError, match=expected):
        cifar10("test", root=tmp_path)


def test_cifar_layout_is_converted(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tvd, "CIFAR10", _FakeCifar)
    ds = cifar10("test", root=tmp_path)
    img, label = ds[2]
    assert len(ds) == 4 and img.shape == (3, 32, 32) and img.dtype == torch.uint8
    assert img[:, 0, 0].tolist() == [200, 0, 0] and label == 2
    assert ds.num_classes == 10 and ds.encoder_kwargs == {"in_channels": 3, "image_size": 32}
    assert cifar10("train", root=tmp_path, image_size=16)[0][0].shape == (3, 16, 16)


def test_stl10_splits(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tvd, "STL10", _FakeSTL)
    assert len(stl10("train", root=tmp_path)) == 5 and len(stl10("test", root=tmp_path)) == 8
    both = stl10("train", root=tmp_path, unlabeled=True)
    assert len(both) == 9 and both.targets.count(-1) == 4
    assert both[0][0].shape == (3, 96, 96)


def test_path_to_local_cifar_folder_does_not_download(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tvd, "CIFAR10", _FakeCifar)
    (tmp_path / "cifar-10-batches-py").mkdir()
    _FakeCifar.calls.clear()
    a = path(tmp_path / "cifar-10-batches-py", "train")
    b = path(tmp_path, "test")
    assert (len(a), len(b)) == (6, 4)
    assert [c["download"] for c in _FakeCifar.calls] == [False, False]
    assert all(Path(c["root"]) == tmp_path for c in _FakeCifar.calls)
