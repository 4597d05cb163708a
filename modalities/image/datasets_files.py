"""Image datasets read from disk: the ``path`` dataset (a folder of images, ImageFolder-like or
flat; IDX files in MNIST / Fashion-MNIST format; a torchvision CIFAR/STL-10 folder) and
``fashion-mnist`` from Debian's package. Folders of image files are ``datasets_folder``'s.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from anyssl.modalities.image.datasets import (
    DataPathError,
    TensorImageDataset,
    check_split,
    resize_images,
    split_indices,
)
from anyssl.modalities.image.datasets_folder import (
    ImageFolderDataset,
    check_on_error,
    folder_dataset,
    load_image,
    storage_sizes,
)
from anyssl.modalities.image.datasets_scan import IMAGE_EXTENSIONS, MIN_SIZE, scan_folder
from anyssl.registry import DATASETS

__all__ = [
    "FASHION_MNIST_DIR", "IMAGE_EXTENSIONS", "ImageFolderDataset", "fashion_mnist", "load_image",
    "path", "read_idx", "scan_folder",
]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")
_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    code: np.dtype(t) for code, t in
    ((0x08, "u1"), (0x09, "i1"), (0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8"))
}


# ---- IDX files (MNIST format) ------------------------------------------------------------------
def read_idx(file: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into an array of its stored shape and type."""
    try:
        with (gzip.open(file, "rb") if file.suffix == ".gz" else open(file, "rb")) as f:
            data = f.read()
    except OSError as err:
        raise DataPathError(f"cannot read IDX file {file}: {err}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataPathError(f"{file} is not an IDX file (bad magic number); give MNIST-format "
                            "'*-images-idx3-ubyte[.gz]' files")
    ndim = data[3]
    dims = [int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4)]
    arr = np.frombuffer(data, dtype=_IDX_DTYPES[data[2]], offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise DataPathError(f"IDX file {file} is truncated: header says {dims}, "
                            f"found {arr.size} values")
    return arr.reshape(dims)


def _is_idx_images(f: Path) -> bool:
    return f.is_file() and "idx3" in f.name and not f.name.startswith(".")


def _find_idx(root: Path) -> list[Path]:
    """IDX image files in ``root`` and up to two folder levels below it (not a full walk)."""
    if root.is_file():
        return [root] if _is_idx_images(root) else []
    found = [f for pat in ("*idx3*", "*/*idx3*", "*/*/*idx3*") for f in root.glob(pat)]
    return sorted(f for f in found if _is_idx_images(f))


def _labels_file(images: Path) -> Path | None:
    name = images.name.replace("images", "labels").replace("idx3", "idx1")
    for cand in (name, name.removesuffix(".gz"), name + ".gz"):
        if (images.parent / cand).is_file():
            return images.parent / cand
    return None


def _idx_pair(images_file: Path, image_size: int | None,
              classes: tuple[str, ...] | None = None) -> TensorImageDataset:
    images = read_idx(images_file)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataPathError(f"{images_file} must hold N x H x W uint8 images, got "
                            f"{images.shape} {images.dtype}")
    labels_file = _labels_file(images_file)
    labels = read_idx(labels_file).astype(np.int64) if labels_file else None
    if labels is not None and len(labels) != len(images):
        raise DataPathError(f"{labels_file} has {len(labels)} labels for {len(images)} images")
    x = resize_images(torch.from_numpy(images.copy()).unsqueeze(1), image_size)
    n_cls = None if labels is None else (len(classes) if classes else int(labels.max()) + 1)
    return TensorImageDataset(x, labels, n_cls, classes)


def _idx_dataset(root: Path, split: str, image_size: int | None, test_fraction: float,
                 split_seed: int, classes: tuple[str, ...] | None = None) -> TensorImageDataset:
    found = _find_idx(root)
    train = [f for f in found if f.name.startswith("train")]
    test = [f for f in found if f.name.startswith(("t10k", "test"))]
    if train and test:
        return _idx_pair((train if split == "train" else test)[0], image_size, classes)
    ds = _idx_pair(found[0], image_size, classes)
    train_idx, test_idx = split_indices(ds.targets, test_fraction, split_seed)
    return ds.subset(train_idx if split == "train" else test_idx)


# ---- registered factories ----------------------------------------------------------------------
@DATASETS.register("path", scope="image")
def path(root: str | Path, split: str = "train", seed: int = 0, image_size: int | None = None,
         crop_size: int | None = None, test_fraction: float = 0.2, split_seed: int = 0,
         on_error: str = "raise", min_size: int = MIN_SIZE,
         device: str | None = None) -> Dataset[tuple[Tensor, int]]:
    """Images from disk: a folder of class subfolders or of unlabeled images, IDX files, or a
    torchvision CIFAR/STL-10 folder (``cifar-10-batches-py`` ...).

    A folder with ``train/`` and ``test/`` (or ``val/``) uses them; otherwise a stratified
    ``test_fraction`` split seeded by ``split_seed`` (fixed, not the training ``seed``). Folder
    images are stored at a size the run's ``device`` chooses unless ``image_size`` /
    ``crop_size`` set it (``datasets_folder.storage_sizes``: 256 px for 224 px views on a GPU,
    73 for 64 on the CPU); IDX and CIFAR keep their size unless ``image_size`` is given.
    Folder images are checked first (``ImageFolderDataset``): ``on_error="skip"`` leaves out
    unreadable ones and counts them; images with a side below ``min_size`` px are refused.
    """
    from anyssl.modalities.image.datasets_torchvision import torchvision_folder

    s = check_split(split)
    p = Path(str(root).removeprefix("file:")).expanduser()
    if not p.exists():
        raise DataPathError(f"data path {p} does not exist; give a folder of images, IDX files "
                            "or a registered dataset name")
    tv = torchvision_folder(p, s, image_size)
    if (tv is not None or _find_idx(p)) and crop_size is not None:
        raise ValueError("crop_size applies to folders of image files; IDX and CIFAR/STL-10 "
                         "data are views at their stored size (resize them with -d image_size)")
    if tv is not None:
        return tv
    if _find_idx(p):
        return _idx_dataset(p, s, image_size, test_fraction, split_seed)
    if p.is_file():
        raise DataPathError(f"{p} is a file; give a folder of images (accepted extensions: "
                            f"{' '.join(IMAGE_EXTENSIONS)}) or an '*-images-idx3-ubyte' file")
    return folder_dataset(p, s, storage_sizes(image_size, crop_size, device), test_fraction,
                          split_seed, check_on_error(on_error), min_size)


@DATASETS.register("fashion-mnist", scope="image")
def fashion_mnist(split: str = "train", seed: int = 0, root: str | Path | None = None,
                  image_size: int | None = None) -> TensorImageDataset:
    """Fashion-MNIST (Xiao et al. 2017): 60,000 train / 10,000 test 28x28 grayscale images of
    10 clothing classes, read from Debian's ``dataset-fashion-mnist`` package or ``root``."""
    d = Path(root).expanduser() if root is not None else FASHION_MNIST_DIR
    if not d.exists() or not _find_idx(d):
        raise DataPathError(f"Fashion-MNIST IDX files not found in {d}; run 'apt-get install "
                            "dataset-fashion-mnist' or pass --data PATH to its IDX files")
    return _idx_dataset(d, check_split(split), image_size, 0.2, 0, FASHION_MNIST_CLASSES)
