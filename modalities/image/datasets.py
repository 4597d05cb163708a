"""Image datasets: the in-memory tensor dataset, the embedded ``digits`` default and helpers.

Every factory is called as ``f(split="train"|"test", seed=0, **kw)`` and returns a map-style
dataset of ``(uint8 C x H x W tensor, int label)`` with ``encoder_kwargs`` (``in_channels``,
``image_size``), ``num_classes`` (None when unlabeled) and ``targets``; the label is -1 for
unlabeled samples. Folder/IDX datasets live in ``datasets_files.py``, the torchvision-backed
CIFAR/STL-10 in ``datasets_torchvision.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from anyssl.registry import DATASETS
from anyssl.splits import check_split, split_indices

__all__ = [
    "DIGITS_SPLIT_SEED", "DataPathError", "DatasetDownloadError", "TensorImageDataset",
    "check_split", "digits", "resize_images", "split_indices",
]

#: The digits train/test split is fixed by this seed, whatever the training seed.
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_SIZE = 450


class DataPathError(ValueError):
    """A data path that does not exist, holds no images, or cannot be read."""


class DatasetDownloadError(ValueError):
    """A dataset that is neither on disk nor downloadable (no network)."""


class TensorImageDataset(Dataset[tuple[Tensor, int]]):
    """Images held in memory as one uint8 tensor.

    Shape:
        images: ``N x C x H x W`` uint8; items are ``(C x H x W uint8, int label)``.
    """

    def __init__(self, images: Tensor, targets: Sequence[int] | np.ndarray | None = None,
                 num_classes: int | None = None, classes: Sequence[str] | None = None) -> None:
        if images.dim() != 4 or images.dtype != torch.uint8:
            raise ValueError(f"images must be an N x C x H x W uint8 tensor, got "
                             f"{tuple(images.shape)} {images.dtype}")
        n = images.shape[0]
        labels = [-1] * n if targets is None else [int(t) for t in targets]
        if len(labels) != n:
            raise ValueError(f"{n} images but {len(labels)} labels")
        self.images = images
        self.targets: list[int] = labels
        self.suggested_epochs: int | None = None  # a run's length when the config sets none
        self.num_classes = num_classes
        self.classes = list(classes) if classes is not None else None
        self.encoder_kwargs = {"in_channels": int(images.shape[1]),
                               "image_size": int(min(images.shape[-2:]))}

    @property
    def eval_options(self) -> dict[str, dict[str, Any]]:
        """Fine-tuning's light augmentation (crop and flip at the image size, SimCLR's)."""
        from anyssl.modalities.image.recipes import finetune_augment

        return {"finetune": {"augment": finetune_augment(self.encoder_kwargs["image_size"])}}

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.images[index], self.targets[index]

    def subset(self, indices: Sequence[int] | np.ndarray) -> TensorImageDataset:
        """The samples at ``indices`` (same classes and num_classes)."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return TensorImageDataset(self.images[idx], [self.targets[int(i)] for i in idx],
                                  self.num_classes, self.classes)


def resize_images(images: Tensor, size: int | None) -> Tensor:
    """Resize a uint8 ``N x C x H x W`` tensor to ``size x size`` once, bilinear with
    antialiasing (no-op when ``size`` is None or already the size)."""
    if size is None or tuple(images.shape[-2:]) == (size, size):
        return images
    if size < 1:
        raise ValueError(f"image_size must be >= 1, got {size}")
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False,
                        antialias=True)
    return out.round_().clamp_(0, 255).to(torch.uint8)


@lru_cache(maxsize=2)
def _digits_all(image_size: int) -> tuple[Tensor, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images).float().div_(16.0).unsqueeze(1)  # N x 1 x 8 x 8 in [0, 1]
    x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return (x * 255.0).round_().clamp_(0, 255).to(torch.uint8), np.asarray(d.target)


#: Training length of a run on digits that sets no epochs: about a minute on 2 CPU cores.
DIGITS_EPOCHS = 30


@DATASETS.register("digits", scope="image")
def digits(split: str = "train", seed: int = 0, image_size: int = 32) -> TensorImageDataset:
    """sklearn's 1,797 real 8x8 handwritten digits, upsampled to 32x32, 1 channel, 10 classes.

    Values 0..16 are scaled to [0, 1] and upsampled once (bilinear), then stored as uint8. The
    split is stratified, 1,347 train / 450 test, fixed by ``DIGITS_SPLIT_SEED`` (the training
    ``seed`` does not change it, so every run evaluates on the same test set).
    """
    from sklearn.model_selection import train_test_split

    s = check_split(split)
    images, y = _digits_all(image_size)
    train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=DIGITS_TEST_SIZE,
                                           stratify=y, random_state=DIGITS_SPLIT_SEED)
    idx = np.sort(train_idx if s == "train" else test_idx)
    classes = [str(i) for i in range(10)]
    data = TensorImageDataset(images, y, 10, classes).subset(idx)
    data.suggested_epochs = DIGITS_EPOCHS
    return data
