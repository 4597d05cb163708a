"""CIFAR-10, CIFAR-100 (Krizhevsky 2009) and STL-10 (Coates et al. 2011) through torchvision.

They download into ``root`` (default ``~/.cache/anyssl/datasets``) on first use; offline, a
folder already holding torchvision's files (``cifar-10-batches-py`` ...) is read instead, and
``--data /path/to/cifar-10-batches-py`` works through the ``path`` dataset. All images are
loaded into one uint8 tensor.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from anyssl.modalities.image.datasets import (
    DatasetDownloadError,
    TensorImageDataset,
    check_split,
    resize_images,
)
from anyssl.registry import DATASETS

__all__ = ["DEFAULT_ROOT", "cifar10", "cifar100", "stl10", "torchvision_folder"]

DEFAULT_ROOT = "~/.cache/anyssl/datasets"

# name -> (torchvision class, title, extracted folder, archive)
_SPECS = {
    "cifar10": ("CIFAR10", "CIFAR-10", "cifar-10-batches-py", "cifar-10-python.tar.gz"),
    "cifar100": ("CIFAR100", "CIFAR-100", "cifar-100-python", "cifar-100-python.tar.gz"),
    "stl10": ("STL10", "STL-10", "stl10_binary", "stl10_binary.tar.gz"),
}


def _open(key: str, root: Path, split: str, download: bool) -> Any:
    """The torchvision dataset object; a failed load or download raises one-line errors."""
    import torchvision.datasets as tvd

    cls_name, title, folder, archive = _SPECS[key]
    kwargs: dict[str, Any] = (
        {"split": split} if key == "stl10" else {"train": split == "train"}
    )
    try:
        return getattr(tvd, cls_name)(str(root), download=download, **kwargs)
    except (OSError, RuntimeError, EOFError, tarfile.TarError) as err:
        reason = (str(err).splitlines() or [""])[0] or type(err).__name__
        action = "nor download it" if download else "(download=False)"
        raise DatasetDownloadError(
            f"cannot load {title} from {root} {action} ({reason}); offline, "
            f"extract {archive} so that {root / folder} exists (or pass root=PARENT_FOLDER), "
            f"or pass --data /path/to/{folder}"
        ) from None


def _load(key: str, split: str, root: str | Path | None, download: bool,
          image_size: int | None, unlabeled: bool = False) -> TensorImageDataset:
    s = check_split(split)
    r = Path(root if root is not None else DEFAULT_ROOT).expanduser()
    tv_split = "train+unlabeled" if key == "stl10" and s == "train" and unlabeled else s
    ds = _open(key, r, tv_split, download)
    data = torch.from_numpy(np.ascontiguousarray(ds.data))
    if key != "stl10":  # CIFAR stores N x H x W x C, STL-10 N x C x H x W
        data = data.permute(0, 3, 1, 2)
    targets = ds.labels if key == "stl10" else ds.targets
    images = resize_images(data.contiguous(), image_size)
    return TensorImageDataset(images, np.asarray(targets), len(ds.classes), list(ds.classes))


@DATASETS.register("cifar10", scope="image")
def cifar10(split: str = "train", seed: int = 0, root: str | Path | None = None,
            download: bool = True, image_size: int | None = None) -> TensorImageDataset:
    """CIFAR-10: 50,000 train / 10,000 test 32x32 RGB images, 10 classes (torchvision)."""
    return _load("cifar10", split, root, download, image_size)


@DATASETS.register("cifar100", scope="image")
def cifar100(split: str = "train", seed: int = 0, root: str | Path | None = None,
             download: bool = True, image_size: int | None = None) -> TensorImageDataset:
    """CIFAR-100: 50,000 train / 10,000 test 32x32 RGB images, 100 classes (torchvision)."""
    return _load("cifar100", split, root, download, image_size)


@DATASETS.register("stl10", scope="image")
def stl10(split: str = "train", seed: int = 0, root: str | Path | None = None,
          download: bool = True, image_size: int | None = None,
          unlabeled: bool = False) -> TensorImageDataset:
    """STL-10: 5,000 train / 8,000 test 96x96 RGB images, 10 classes (torchvision);
    ``unlabeled=True`` adds the 100,000 unlabeled images (label -1) to the train split."""
    return _load("stl10", split, root, download, image_size, unlabeled)


def torchvision_folder(p: Path, split: str, image_size: int | None) -> TensorImageDataset | None:
    """Load ``p`` when it is (or directly holds) an extracted torchvision CIFAR/STL-10 folder,
    without downloading; None when it is neither."""
    for key, (_, _, folder, _) in _SPECS.items():
        if p.name == folder and p.is_dir():
            return _load(key, split, p.parent, False, image_size)
        if (p / folder).is_dir():
            return _load(key, split, p, False, image_size)
    return None
