"""In-memory image datasets: digits (the default), splits, IDX files, Fashion-MNIST."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from anyssl.modalities.image.datasets import (
    DataPathError,
    TensorImageDataset,
    check_split,
    digits,
    resize_images,
    split_indices,
)
from anyssl.modalities.image.datasets_files import (
    FASHION_MNIST_DIR,
    fashion_mnist,
    path,
    read_idx,
)


def write_idx(file: Path, arr: np.ndarray) -> None:
    """Reference IDX writer (magic 0 0 type ndim, big-endian int32 dims, raw data)."""
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}[arr.dtype]
    payload = struct.pack(">BBBB", 0, 0, code, arr.ndim)
    payload += struct.pack(f">{arr.ndim}i", *arr.shape) + arr.tobytes()
    file.write_bytes(gzip.compress(payload) if file.suffix == ".gz" else payload)


def _mnist_like(n: int, seed: int, side: int = 28) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, side, side), dtype=np.uint8),
            rng.integers(0, 10, n).astype(np.uint8))


# ---- digits ------------------------------------------------------------------------------------
def test_digits_shapes_and_splits() -> None:
    train, test = digits("train"), digits("test")
    assert (len(train), len(test)) == (1347, 450)
    img, label = train[0]
    assert img.shape == (1, 32, 32) and img.dtype == torch.uint8 and isinstance(label, int)
    assert train.encoder_kwargs == {"in_channels": 1, "image_size": 32}
    assert train.num_classes == 10 and len(train.targets) == 1347
    counts = np.bincount(test.targets, minlength=10)
    assert counts.min() >= 43 and counts.max() <= 47  # stratified: ~45 per class
    assert int(train.images.max()) >= 250 and int(train.images.min()) == 0


def test_digits_split_is_fixed_and_independent_of_seed() -> None:
    a, b = digits("test", seed=0), digits("test", seed=123)
    assert torch.equal(a.images, b.images) and a.targets == b.targets
    train = digits("train")
    all_imgs = torch.cat([train.images, a.images]).flatten(1)
    assert len({tuple(r.tolist()) for r in all_imgs[:, ::3]}) >= 1790  # (almost) no overlap


def test_digits_are_the_upsampled_sklearn_digits() -> None:
    from sklearn.datasets import load_digits

    d = load_digits()
    ds = digits("train")
    down = F.avg_pool2d(ds.images.float(), 4)  # N x 1 x 8 x 8
    # find the sklearn digit each stored image comes from (by correlation) for a few samples
    ref = torch.from_numpy(d.images).float().flatten(1) * 255 / 16
    for i in range(0, 1347, 271):
        corr = torch.corrcoef(torch.cat([down[i].flatten()[None], ref]))[0, 1:]
        best = int(corr.nan_to_num(-1).argmax())
        assert corr[best] > 0.95 and d.target[best] == ds.targets[i]


def test_check_split() -> None:
    assert check_split("val") == "test"
    with pytest.raises(ValueError, match="'train' or 'test'"):
        check_split("dev")


# ---- helpers -----------------------------------------------------------------------------------
def test_split_indices_is_seeded_stratified_and_disjoint() -> None:
    labels = [0] * 50 + [1] * 30 + [-1] * 20
    tr, te = split_indices(labels, 0.2, seed=0)
    assert len(te) == 10 + 6 + 4 and len(tr) == 80
    assert set(tr).isdisjoint(te) and set(tr) | set(te) == set(range(100))
    assert np.array_equal(te, split_indices(labels, 0.2, seed=0)[1])
    assert not np.array_equal(te, split_indices(labels, 0.2, seed=1)[1])
    with pytest.raises(ValueError, match="test_fraction"):
        split_indices(labels, 1.5, seed=0)


def test_tensor_dataset_and_resize() -> None:
    imgs = torch.randint(0, 256, (5, 3, 10, 12), dtype=torch.uint8)
    ds = TensorImageDataset(imgs)
    assert ds.targets == [-1] * 5 and ds.num_classes is None
    assert ds.encoder_kwargs == {"in_channels": 3, "image_size": 10}
    small = resize_images(imgs, 6)
    assert small.shape == (5, 3, 6, 6) and small.dtype == torch.uint8
    flat = torch.full((1, 1, 9, 9), 77, dtype=torch.uint8)
    assert torch.equal(resize_images(flat, 4), torch.full((1, 1, 4, 4), 77, dtype=torch.uint8))
    with pytest.raises(ValueError, match="uint8"):
        TensorImageDataset(imgs.float())
    with pytest.raises(ValueError, match="labels"):
        TensorImageDataset(imgs, [0, 1])


# ---- IDX ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path: Path, suffix: str) -> None:
    images, labels = _mnist_like(7, 0)
    write_idx(tmp_path / f"a-images-idx3-ubyte{suffix}", images)
    write_idx(tmp_path / f"a-labels-idx1-ubyte{suffix}", labels)
    back = read_idx(tmp_path / f"a-images-idx3-ubyte{suffix}")
    assert back.dtype == np.uint8 and np.array_equal(back, images)
    assert np.array_equal(read_idx(tmp_path / f"a-labels-idx1-ubyte{suffix}"), labels)
    ints = np.arange(6, dtype=">i4").reshape(2, 3)
    write_idx(tmp_path / "ints-idx2", ints)
    assert np.array_equal(read_idx(tmp_path / "ints-idx2"), ints)


def test_idx_folder_with_train_and_test_files(tmp_path: Path) -> None:
    (tr_x, tr_y), (te_x, te_y) = _mnist_like(20, 0), _mnist_like(8, 1)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", tr_x)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", tr_y)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", te_x)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", te_y)
    train, test = path(tmp_path, "train"), path(tmp_path, "test")
    assert (len(train), len(test)) == (20, 8)
    img, label = test[3]
    assert img.shape == (1, 28, 28) and torch.equal(img[0], torch.from_numpy(te_x[3]))
    assert label == int(te_y[3]) and train.encoder_kwargs["image_size"] == 28
    assert path(tmp_path, "train", image_size=14)[0][0].shape == (1, 14, 14)


def test_single_idx_file_without_labels(tmp_path: Path) -> None:
    images, _ = _mnist_like(10, 0, side=6)
    write_idx(tmp_path / "my-images-idx3-ubyte", images)
    train = path(tmp_path / "my-images-idx3-ubyte", "train")
    test = path(tmp_path / "my-images-idx3-ubyte", "test")
    assert (len(train), len(test)) == (8, 2)
    assert train.num_classes is None and set(train.targets) == {-1}


def test_bad_idx_files(tmp_path: Path) -> None:
    bad = tmp_path / "x-images-idx3-ubyte"
    bad.write_bytes(b"\x12\x34\x08\x03" + b"\x00" * 20)
    with pytest.raises(DataPathError, match="magic"):
        path(bad)
    images, _ = _mnist_like(4, 0, side=5)
    write_idx(bad, images)
    bad.write_bytes(bad.read_bytes()[:-10])
    with pytest.raises(DataPathError, match="truncated"):
        path(bad)


# ---- Fashion-MNIST -----------------------------------------------------------------------------
def test_fashion_mnist_from_root(tmp_path: Path) -> None:
    for prefix, n in (("train", 12), ("t10k", 5)):
        x, y = _mnist_like(n, n)
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", y)
    ds = fashion_mnist("test", root=tmp_path)
    assert len(ds) == 5 and ds.num_classes == 10 and ds.classes[9] == "Ankle boot"


def test_fashion_mnist_missing_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(DataPathError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist("train", root=tmp_path / "nowhere")


@pytest.mark.skipif(not FASHION_MNIST_DIR.exists(),
                    reason="Debian package dataset-fashion-mnist is not installed")
def test_real_fashion_mnist() -> None:
    train, test = fashion_mnist("train"), fashion_mnist("test")
    assert (len(train), len(test)) == (60000, 10000)
    assert train[0][0].shape == (1, 28, 28) and set(test.targets) == set(range(10))
