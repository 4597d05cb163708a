"""The data both sides of the lightly comparison see: a seeded, stratified subset of the
Fashion-MNIST training images (pre-training, and the kNN bank / linear-probe training set) and
the test images, 28x28 uint8, written once under ``benchmarks/data/`` (git-ignored) as

* ``<name>.npz`` (``x_train`` N x 28 x 28, ``y_train``, ``x_test``, ``y_test``): the lightly side,
* ``<name>/{train,t10k}-{images-idx3,labels-idx1}-ubyte``: anyssl's ``path`` dataset,

from the same arrays; ``prepare`` checks that anyssl reads the IDX files back to exactly them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
DATA_DIR = Path(__file__).resolve().parents[1] / "data"
FULL_TEST = 10_000


@dataclass
class Subset:
    """The arrays of one comparison and where they were written."""

    x_train: np.ndarray  # N x 28 x 28 uint8
    y_train: np.ndarray  # N int64
    x_test: np.ndarray  # M x 28 x 28 uint8
    y_test: np.ndarray  # M int64
    npz: Path
    idx_dir: Path


def missing_fashion_mnist() -> str | None:
    """A one-line reason when the Fashion-MNIST IDX files are not installed, else None."""
    absent = [f for f in FASHION_FILES if not (FASHION_MNIST / f).is_file()]
    if not absent:
        return None
    return (f"Fashion-MNIST not found ({FASHION_MNIST}/{absent[0]} is missing); install it with "
            "'apt-get install dataset-fashion-mnist'")


def stratified(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded, class-stratified ``size``-sample subset (all when size >= N)."""
    if size >= len(labels):
        return np.arange(len(labels))
    from sklearn.model_selection import train_test_split

    idx, _ = train_test_split(np.arange(len(labels)), train_size=size, stratify=labels,
                              random_state=seed)
    return np.sort(idx)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an uncompressed IDX file (MNIST format)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def _read_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    from anyssl.modalities.image.datasets_files import read_idx

    x = read_idx(FASHION_MNIST / f"{split}-images-idx3-ubyte.gz")
    y = read_idx(FASHION_MNIST / f"{split}-labels-idx1-ubyte.gz").astype(np.int64)
    return x, y


def _write(subset: Subset) -> None:
    subset.idx_dir.mkdir(parents=True, exist_ok=True)
    np.savez(subset.npz, x_train=subset.x_train, y_train=subset.y_train,
             x_test=subset.x_test, y_test=subset.y_test)
    for split, x, y in (("train", subset.x_train, subset.y_train),
                        ("t10k", subset.x_test, subset.y_test)):
        write_idx(subset.idx_dir / f"{split}-images-idx3-ubyte", x)
        write_idx(subset.idx_dir / f"{split}-labels-idx1-ubyte", y.astype(np.uint8))


def _matches(subset: Subset) -> bool:
    """True when the files on disk hold exactly ``subset``'s arrays, as each side reads them
    (the .npz with numpy, the IDX folder through anyssl's ``path`` dataset)."""
    if not subset.npz.is_file() or not subset.idx_dir.is_dir():
        return False
    from anyssl.modalities.image.datasets_files import path as path_dataset

    with np.load(subset.npz) as z:
        if any(not np.array_equal(z[k], getattr(subset, k)) for k in
               ("x_train", "y_train", "x_test", "y_test")):
            return False
    for split, x, y in (("train", subset.x_train, subset.y_train),
                        ("test", subset.x_test, subset.y_test)):
        ds: Any = path_dataset(subset.idx_dir, split=split)  # a TensorImageDataset
        images = np.asarray(ds.images[:, 0].numpy())  # N x 28 x 28
        if not (np.array_equal(images, x) and np.array_equal(ds.targets, y)):
            return False
    return True


def prepare(train_size: int, test_size: int, seed: int) -> Subset:
    """The subset of ``train_size`` training and ``test_size`` test images (stratified, seeded),
    written under ``benchmarks/data/`` unless files with the same arrays are there already."""
    x_tr, y_tr = _read_split("train")
    x_te, y_te = _read_split("t10k")
    tr, te = stratified(y_tr, train_size, seed), stratified(y_te, test_size, seed)
    name = f"fashion-mnist-train{len(tr)}-test{len(te)}-seed{seed}"
    subset = Subset(x_tr[tr], y_tr[tr], x_te[te], y_te[te], DATA_DIR / f"{name}.npz",
                    DATA_DIR / name)
    if not _matches(subset):
        _write(subset)
        if not _matches(subset):
            raise SystemExit(f"the subset written to {subset.idx_dir} does not read back "
                             "identically through anyssl's path dataset")
    return subset
