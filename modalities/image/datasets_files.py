"""Image datasets read from disk: a folder of images (ImageFolder-like or flat), IDX files
(MNIST / Fashion-MNIST format), and ``fashion-mnist`` from Debian's package.

Folder images are decoded and resized in ``__getitem__`` (so in DataLoader workers) to a fixed
storage size: the shorter side is scaled to ``image_size`` and the center cropped (Pillow,
bilinear with antialiasing); transparent images are composited on white, then made RGB.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Sequence
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
from anyssl.modalities.image.datasets_scan import (
    IMAGE_EXTENSIONS,
    MIN_SIZE,
    FolderScan,
    check_size,
    probe_files,
    scan_folder,
)
from anyssl.registry import DATASETS

__all__ = [
    "FASHION_MNIST_DIR", "IMAGE_EXTENSIONS", "ImageFolderDataset", "fashion_mnist", "load_image",
    "path", "read_idx", "scan_folder",
]

log = logging.getLogger(__name__)
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")
DEFAULT_STORAGE_SIZE = 64
_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    code: np.dtype(t) for code, t in
    ((0x08, "u1"), (0x09, "i1"), (0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8"))
}


# ---- image folders ------------------------------------------------------------------------------
def _to_rgb(im: Any) -> Any:
    """RGB copy of a Pillow image; transparency is composited on white."""
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def load_image(file: Path, size: int, min_size: int = 1) -> Tensor:
    """Decode ``file`` to a ``3 x size x size`` uint8 tensor (shorter side to ``size``, center
    crop). Raises ``DataPathError`` when Pillow cannot read it, when it is over the
    decompression-bomb limit (checked before decoding) or has a side below ``min_size``."""
    from PIL import Image, ImageOps

    try:
        with Image.open(file) as im:
            check_size(file, im.size, min_size)
            if im.format == "JPEG":  # decode big JPEGs at a reduced scale still >= size
                im.draft("RGB", (size, size))
            rgb = _to_rgb(im)
        fitted = ImageOps.fit(rgb, (size, size), method=Image.Resampling.BILINEAR)
    except DataPathError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
        raise DataPathError(f"cannot read image {file}: {err}; remove or convert it") from None
    arr = np.asarray(fitted, dtype=np.uint8)  # size x size x 3
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def check_on_error(on_error: str) -> str:
    """``"raise"`` or ``"skip"``; anything else raises."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    return on_error


class ImageFolderDataset(Dataset[tuple[Tensor, int]]):
    """Image files decoded on access to ``3 x image_size x image_size`` uint8.

    Every file's header is checked at construction (``datasets_scan.probe_image``: unreadable,
    empty, over the decompression-bomb limit, a side below ``min_size``). ``on_error="raise"``
    (the default) raises the first bad file; ``"skip"`` leaves bad files out and counts them in
    ``notes``. A file whose pixel data turns out damaged when decoded (a truncated PNG/JPEG)
    raises then, or with ``"skip"`` is replaced by the next readable image, with a warning.

    Shape:
        items are ``(3 x image_size x image_size uint8, int label)``; label -1 if unlabeled.
    """

    def __init__(self, files: list[Path], targets: list[int], classes: list[str],
                 image_size: int, on_error: str = "raise", min_size: int = MIN_SIZE,
                 notes: Sequence[str] = (), where: str = "the image folder") -> None:
        if image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        self.on_error, self.min_size = check_on_error(on_error), min_size
        kept, errors = probe_files(files, min_size, skip=on_error == "skip")
        self.files, self.targets = [files[i] for i in kept], [targets[i] for i in kept]
        self.notes = list(notes)
        if errors:
            self.notes.append(f"skipped {len(errors)} of {len(files)} images in {where} that "
                              f"cannot be used (first: {errors[0]})")
        if not self.files:
            raise DataPathError(f"{where} holds no usable images" + (
                f" ({len(errors)} skipped; first: {errors[0]})" if errors else
                "; add images or change -d test_fraction"))
        self.classes, self.image_size = classes, image_size
        self.num_classes = len(classes) if classes else None
        self.encoder_kwargs = {"in_channels": 3, "image_size": image_size}

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        n = len(self.files)
        for k in range(n if self.on_error == "skip" else 1):
            j = (index + k) % n
            try:
                return load_image(self.files[j], self.image_size, self.min_size), self.targets[j]
            except DataPathError as err:
                if self.on_error == "raise":
                    raise DataPathError(f"{err}, or pass -d on_error=skip") from None
                log.warning("skipped an image that cannot be decoded, using the next one: %s",
                            err)
        raise DataPathError(f"none of the {n} images can be decoded; check the folder")


def _folder_dataset(root: Path, split: str, image_size: int, test_fraction: float,
                    split_seed: int, on_error: str, min_size: int) -> ImageFolderDataset:
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    where = f"the {split} split of {root}"
    if (root / "train").is_dir() and test_dir is not None:
        scan = scan_folder(root / "train" if split == "train" else test_dir)
        other = scan_folder(test_dir if split == "train" else root / "train").classes
        names = sorted(set(scan.classes) | set(other))  # same label ids in both splits
        labels = [names.index(scan.classes[t]) if t >= 0 else -1 for t in scan.labels]
        return ImageFolderDataset(scan.files, labels, names, image_size, on_error, min_size,
                                  _link_notes(scan), where)
    scan = scan_folder(root)
    train_idx, test_idx = split_indices(scan.labels, test_fraction, split_seed)
    idx = train_idx if split == "train" else test_idx
    return ImageFolderDataset([scan.files[i] for i in idx], [scan.labels[i] for i in idx],
                              scan.classes, image_size, on_error, min_size, _link_notes(scan),
                              where)


def _link_notes(scan: FolderScan) -> list[str]:
    if not scan.skipped_links:
        return []
    return [f"skipped {scan.skipped_links} symlinks that loop (or lead to a folder already read) "
            "while listing images"]


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
         test_fraction: float = 0.2, split_seed: int = 0, on_error: str = "raise",
         min_size: int = MIN_SIZE) -> Dataset[tuple[Tensor, int]]:
    """Images from disk: a folder of class subfolders or of unlabeled images, IDX files, or a
    torchvision CIFAR/STL-10 folder (``cifar-10-batches-py`` ...).

    A folder with ``train/`` and ``test/`` (or ``val/``) uses them; otherwise a stratified
    ``test_fraction`` split seeded by ``split_seed`` (fixed, not the training ``seed``). Folder
    images are stored at ``image_size`` (default 64); IDX and CIFAR keep theirs unless given.
    Folder images are checked first (``ImageFolderDataset``): ``on_error="skip"`` leaves out
    unreadable ones and counts them; images with a side below ``min_size`` px are refused.
    """
    from anyssl.modalities.image.datasets_torchvision import torchvision_folder

    s = check_split(split)
    p = Path(str(root).removeprefix("file:")).expanduser()
    if not p.exists():
        raise DataPathError(f"data path {p} does not exist; give a folder of images, IDX files "
                            "or a registered dataset name")
    if (tv := torchvision_folder(p, s, image_size)) is not None:
        return tv
    if _find_idx(p):
        return _idx_dataset(p, s, image_size, test_fraction, split_seed)
    if p.is_file():
        raise DataPathError(f"{p} is a file; give a folder of images (accepted extensions: "
                            f"{' '.join(IMAGE_EXTENSIONS)}) or an '*-images-idx3-ubyte' file")
    size = DEFAULT_STORAGE_SIZE if image_size is None else image_size
    return _folder_dataset(p, s, size, test_fraction, split_seed, check_on_error(on_error),
                           min_size)


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
