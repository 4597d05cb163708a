"""The ``shards`` dataset: images read from WebDataset shards (``--data
"shards/train-{000000..000127}.tar"``, a folder of ``.tar`` files or one ``.tar``; the modality
resolves any such ``--data`` to it), the format img2dataset and ``anyssl shards`` write.

Each sample's image member (``jpg``, ``jpeg``, ``png`` or ``webp``) is decoded on access, in the
DataLoader workers, to the fixed storage size an image folder uses (``datasets_folder``: the
shorter side resized, the centre square kept, transparency on white; ``-d image_size`` /
``-d crop_size``, else chosen by the device), except that shards written at a smaller square
than that default (``meta.image_size`` of the manifest) keep their size. Images are RGB, or
grayscale (1 channel) when the manifest says so (``meta.channels``, written by ``anyssl
shards`` from grayscale data) or, without one, when the first image is grayscale.

Labels, the held-out split and the epoch order are ``shard_data``'s: ``-d test=SPEC`` names
held-out shards, else a stratified ``-d test_fraction`` (seeded by ``-d split_seed``, as image
folders). A corrupt sample is replaced by the next readable one of its shard and counted
(``-d on_error=skip``, the default here) or stops the run naming shard and key
(``-d on_error=raise``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from anyssl.modalities.image.datasets import DataPathError
from anyssl.modalities.image.datasets_folder import _to_rgb, check_on_error, storage_sizes
from anyssl.modalities.image.datasets_scan import MIN_SIZE, check_size
from anyssl.modalities.image.geometry import CenterCrop
from anyssl.modalities.image.recipes import finetune_augment
from anyssl.modalities.image.shard_data import (
    DEFAULT_SHUFFLE_WINDOW,
    ShardSubset,
    class_ids,
    open_shards,
    raw_label,
    scan_members,
    shard_meta,
)
from anyssl.registry import DATASETS
from anyssl.shards import ShardSet, read_with_fallback
from anyssl.splits import check_split, split_indices

__all__ = ["IMAGE_MEMBERS", "ShardImageDataset", "decode_image", "image_bytes", "shard_sizes",
           "shards"]

#: The member extensions read as the image, in order of preference.
IMAGE_MEMBERS = ("jpg", "jpeg", "png", "webp")
_GRAY = ("1", "L", "LA", "I", "I;16", "F")


def image_bytes(members: dict[str, bytes]) -> bytes:
    """The sample's image member; ``ValueError`` when it has none."""
    for ext in IMAGE_MEMBERS:
        if ext in members:
            return members[ext]
    raise ValueError(f"no image member (.{', .'.join(IMAGE_MEMBERS)}); it has "
                     f"{', '.join('.' + e for e in sorted(members)) or 'no members'}")


def decode_image(data: bytes, size: int, channels: int = 3, min_size: int = 1) -> Tensor:
    """Decode image bytes to ``channels x size x size`` uint8 as an image folder decodes a file
    (``datasets_folder.load_image``; 1 channel: Pillow's grayscale conversion)."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as im:
        check_size("the image member", im.size, min_size)
        if im.format == "JPEG":  # decode big JPEGs at a reduced scale still >= size
            im.draft("RGB" if channels == 3 else "L", (size, size))
        pic = _to_rgb(im)
        pic = pic if channels == 3 else pic.convert("L")
    fitted = ImageOps.fit(pic, (size, size), method=Image.Resampling.BILINEAR)
    arr = np.asarray(fitted, dtype=np.uint8).reshape(size, size, channels)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def _channels(shards: ShardSet, meta: dict[str, Any]) -> int:
    """1 for grayscale shards (the manifest's ``channels``, else the first image's mode)."""
    if meta.get("channels") in (1, 3):
        return int(meta["channels"])
    from PIL import Image

    for i in range(min(len(shards), 8)):
        try:
            with Image.open(io.BytesIO(image_bytes(shards.read(i)[1]))) as im:
                return 1 if im.mode in _GRAY else 3
        except Exception:  # a bad first sample: look at the next
            continue
    return 3


def shard_sizes(image_size: int | None, crop_size: int | None, device: str | None,
                written: int | None) -> tuple[int, int, str]:
    """``storage_sizes`` (``datasets_folder``), but shards written as a square smaller than the
    device's default stored size keep that size (nothing is upsampled by default)."""
    stored, view, why = storage_sizes(image_size, crop_size, device)
    if image_size is None and crop_size is None and written is not None and written < stored:
        return written, written, "the size the shards were written at"
    return stored, view, why


class ShardImageDataset(ShardSubset, Dataset[tuple[Tensor, int]]):
    """Images of WebDataset shards decoded on access to ``channels x image_size x image_size``
    uint8 for views of ``crop_size`` px (see the module docstring).

    Shape:
        items are ``(C x image_size x image_size uint8, int label)``; label -1 if unlabeled.
    """

    def __init__(self, shards: ShardSet, indices: np.ndarray | None, classes: list[str] | None,
                 image_size: int, crop_size: int | None = None, channels: int = 3,
                 shuffle_window: int = DEFAULT_SHUFFLE_WINDOW, min_size: int = MIN_SIZE,
                 notes: Sequence[str] = ()) -> None:
        if image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        self._init_subset(shards, indices, shuffle_window)
        self.classes, self.image_size, self.channels = classes, image_size, channels
        self.min_size, self.notes = min_size, list(notes)
        self.suggested_epochs: int | None = None  # a run's length when the config sets none
        self._ids = {name: i for i, name in enumerate(classes or [])}
        self.crop_size = image_size if crop_size is None else crop_size
        self.num_classes = len(classes) if classes else None
        self.encoder_kwargs = {"in_channels": channels, "image_size": self.crop_size}
        #: evaluation sees the centre crop_size square (nothing to do when stored at it)
        self.eval_transform = CenterCrop(self.crop_size) if self.crop_size < image_size else None

    @property
    def eval_options(self) -> dict[str, dict[str, Any]]:
        """Fine-tuning's light augmentation (crop and flip at the view size, SimCLR's)."""
        return {"finetune": {"augment": finetune_augment(self.crop_size)}}

    def data_state(self) -> dict[str, Any]:
        """The sizes a checkpoint must rebuild this data with."""
        return {"image_size": self.image_size, "crop_size": self.crop_size}

    def _label(self, members: dict[str, bytes]) -> int:
        value = raw_label(members)
        if value is None:
            return -1
        return value if isinstance(value, int) else self._ids[value]

    def _decode(self, key: str, members: dict[str, bytes]) -> tuple[Tensor, int]:
        image = decode_image(image_bytes(members), self.image_size, self.channels, self.min_size)
        return image, self._label(members)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return read_with_fallback(self.shards, self.global_index(index), self._decode,
                                  self.allowed)


def _labels(shards: ShardSet, meta: dict[str, Any]) -> list[int | str | None]:
    if meta.get("labeled") is False:  # anyssl shards wrote it: no label to look for
        return [None] * len(shards)
    return scan_members(shards, ("cls", "json"), raw_label)


@DATASETS.register("shards", scope="image",
                   description="WebDataset tars: dir/train-{000000..000127}.tar, a folder, a .tar")
def shards(root: str | Path, split: str = "train", seed: int = 0, image_size: int | None = None,
           crop_size: int | None = None, test_fraction: float = 0.2, split_seed: int = 0,
           on_error: str = "skip", min_size: int = MIN_SIZE, device: str | None = None,
           shuffle_window: int = DEFAULT_SHUFFLE_WINDOW,
           test: str | None = None) -> ShardImageDataset:
    """The ``split`` of the WebDataset shards ``root`` names (see the module docstring):
    ``test`` names held-out shards, else a stratified ``test_fraction`` split seeded by
    ``split_seed`` (not the training ``seed``); sizes as an image folder's."""
    s, on_error = check_split(split), check_on_error(on_error)
    train_set = open_shards(root, on_error)
    test_set = open_shards(test, on_error) if test is not None else None
    data = test_set if s == "test" and test_set is not None else train_set
    meta = shard_meta(train_set)
    parts = [train_set] if test_set is None else [train_set, test_set]
    ids, classes = class_ids([_labels(p, shard_meta(p)) for p in parts], meta.get("label_names"))
    indices = None
    if test_set is None:
        train_idx, test_idx = split_indices(ids[0], test_fraction, split_seed)
        indices = train_idx if s == "train" else test_idx
    n = len(data) if indices is None else len(indices)
    if n == 0:
        raise DataPathError(f"the {s} split of shards {root} holds no samples; give more "
                            "shards or change -d test_fraction")
    written = meta.get("image_size")
    stored, view, why = shard_sizes(image_size, crop_size, device,
                                    written if isinstance(written, int) else None)
    note = (f"shards: the {s} split holds {n:,} of {len(data):,} samples in "
            f"{len(data.shards)} shards, decoded to {stored} px (shorter side, centre square) "
            f"for {view} px views ({why}; -d image_size=STORED -d crop_size=VIEW to change)")
    ds = ShardImageDataset(data, indices, classes, stored, view, _channels(data, meta),
                           shuffle_window, min_size, [note])
    epochs = meta.get("suggested_epochs")  # the source's (anyssl shards copies it)
    ds.suggested_epochs = epochs if isinstance(epochs, int) else None
    return ds
