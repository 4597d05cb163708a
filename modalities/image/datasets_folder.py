"""Folders of image files: decoded on access (in DataLoader workers) to a fixed storage size,
which the run's device chooses unless ``-d image_size`` / ``-d crop_size`` say otherwise.

Storage. Each image's shorter side is resized to the stored size and the centre square kept
(Pillow, bilinear with antialiasing; transparency composited on white, then RGB). The views are
then cut from that square on the device, batched (``RandomResizedCrop`` semantics inside it). A
fixed square is what lets one uint8 tensor hold the batch and every crop run on the GPU at
once; its price is the strip outside the centre square (an eighth of each side of a 4:3 photo),
which torchvision's per-image ``RandomResizedCrop`` on the whole decoded image can reach. The
alternative, squashing the whole image into the square, keeps the strips but stretches every
crop by the image's aspect ratio on top of the crop's own; the centre square is what ImageNet
evaluation uses and keeps objects undistorted.

Sizes. With neither given, a GPU run stores 256 px for 224 px views (ImageNet's resize-256,
crop-224) and a CPU run 73 px for 64 px views (the same 8:7 ratio at a size a CPU can train);
a note says which. ``image_size`` alone stores and views at that size (as before);
``crop_size`` alone stores 8/7 of it (views of 64 px or more). Evaluation sees the centre
``crop_size`` square of the stored image (``eval_transform``), as ImageNet's centre crop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from anyssl.modalities.image.datasets import DataPathError, split_indices
from anyssl.modalities.image.datasets_scan import (
    MIN_SIZE,
    FolderScan,
    ScanStats,
    check_size,
    probe_files,
    scan_folder,
)
from anyssl.modalities.image.geometry import CenterCrop
from anyssl.modalities.image.recipes import finetune_augment

__all__ = ["CPU_VIEW_SIZE", "GPU_VIEW_SIZE", "ImageFolderDataset", "check_on_error",
           "folder_dataset", "load_image", "storage_sizes"]

log = logging.getLogger(__name__)
#: View (crop) size of a folder run that sets none: ImageNet's 224 on a GPU, 64 on the CPU.
GPU_VIEW_SIZE, CPU_VIEW_SIZE = 224, 64
#: Views of at least this size are cut from an image stored 8/7 larger (256 for 224).
STORE_LARGER_FROM = 64


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


def _stored_for(view: int) -> int:
    """The stored side for ``view`` px crops: 8/7 larger from ``STORE_LARGER_FROM`` px up."""
    return round(view * 256 / 224) if view >= STORE_LARGER_FROM else view


def _on_gpu(device: str | None) -> bool:
    """Whether the run trains on a GPU (``auto`` means: when one is visible)."""
    spec = device or "auto"
    return spec.startswith("cuda") or (spec == "auto" and torch.cuda.is_available())


def storage_sizes(image_size: int | None, crop_size: int | None, device: str | None = None
                  ) -> tuple[int, int, str]:
    """``(stored side, view side, why)`` of a folder run (see the module docstring)."""
    for name, value in (("image_size", image_size), ("crop_size", crop_size)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if image_size is not None and crop_size is not None:
        if crop_size > image_size:
            raise ValueError(f"crop_size {crop_size} is larger than image_size {image_size}; "
                             "views are cut from the stored image: lower -d crop_size")
        return image_size, crop_size, "-d image_size and -d crop_size"
    if image_size is not None:
        return image_size, image_size, "-d image_size"
    if crop_size is not None:
        return _stored_for(crop_size), crop_size, "-d crop_size"
    if _on_gpu(device):
        return _stored_for(GPU_VIEW_SIZE), GPU_VIEW_SIZE, "the GPU default, ImageNet's"
    return (_stored_for(CPU_VIEW_SIZE), CPU_VIEW_SIZE,
            f"the CPU default; a GPU run stores {_stored_for(GPU_VIEW_SIZE)} px for "
            f"{GPU_VIEW_SIZE} px views")


class ImageFolderDataset(Dataset[tuple[Tensor, int]]):
    """Image files decoded on access to ``3 x image_size x image_size`` uint8 (``file_backed``:
    the trainer gives it loader workers), for views of ``crop_size`` px.

    Every file's header is checked at construction (``datasets_scan.probe_files``, in parallel
    and cached across runs: unreadable, empty, over the decompression-bomb limit, a side below
    ``min_size``). ``on_error="raise"``
    (the default) raises the first bad file; ``"skip"`` leaves bad files out and counts them in
    ``notes``. A file whose pixel data turns out damaged when decoded (a truncated PNG/JPEG)
    raises then, or with ``"skip"`` is replaced by the next readable image, with a warning.

    Shape:
        items are ``(3 x image_size x image_size uint8, int label)``; label -1 if unlabeled.
    """

    file_backed = True

    def __init__(self, files: list[Path], targets: list[int], classes: list[str],
                 image_size: int, on_error: str = "raise", min_size: int = MIN_SIZE,
                 notes: Sequence[str] = (), where: str = "the image folder",
                 crop_size: int | None = None) -> None:
        if image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        self.on_error, self.min_size = check_on_error(on_error), min_size
        stats = ScanStats()  # parallel and cached (datasets_scan); says so when it took a while
        kept, errors = probe_files(files, min_size, skip=on_error == "skip", stats=stats)
        self.files, self.targets = [files[i] for i in kept], [targets[i] for i in kept]
        self.notes = [*notes, *filter(None, [stats.note()])]
        if errors:
            self.notes.append(f"skipped {len(errors)} of {len(files)} images in {where} that "
                              f"cannot be used (first: {errors[0]})")
        if not self.files:
            raise DataPathError(f"{where} holds no usable images" + (
                f" ({len(errors)} skipped; first: {errors[0]})" if errors else
                "; add images or change -d test_fraction"))
        self.classes, self.image_size = classes, image_size
        self.crop_size = image_size if crop_size is None else crop_size
        self.num_classes = len(classes) if classes else None
        self.encoder_kwargs = {"in_channels": 3, "image_size": self.crop_size}
        #: evaluation sees the centre crop_size square (nothing to do when stored at it)
        self.eval_transform = CenterCrop(self.crop_size) if self.crop_size < image_size else None

    @property
    def eval_options(self) -> dict[str, dict[str, Any]]:
        """Fine-tuning's light augmentation (crop and flip at the view size, SimCLR's)."""
        return {"finetune": {"augment": finetune_augment(self.crop_size)}}

    def data_state(self) -> dict[str, Any]:
        """The sizes a checkpoint must rebuild this data with (evaluation on another device or
        folder then sees images as training did)."""
        return {"image_size": self.image_size, "crop_size": self.crop_size}

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


def folder_dataset(root: Path, split: str, sizes: tuple[int, int, str], test_fraction: float,
                   split_seed: int, on_error: str, min_size: int) -> ImageFolderDataset:
    """The ``split`` of an image folder: ``train/`` and ``test/`` (or ``val/``) subfolders when
    present, else a stratified ``test_fraction`` split seeded by ``split_seed``. ``sizes`` is
    ``storage_sizes``'s ``(stored, view, why)``."""
    stored, view, why = sizes
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    where = f"the {split} split of {root}"
    note = (f"image folder: decoded to {stored} px (shorter side, centre square) for {view} px "
            f"views ({why}; -d image_size=STORED -d crop_size=VIEW to change)")
    if (root / "train").is_dir() and test_dir is not None:
        scan = scan_folder(root / "train" if split == "train" else test_dir)
        other = scan_folder(test_dir if split == "train" else root / "train").classes
        names = sorted(set(scan.classes) | set(other))  # same label ids in both splits
        labels = [names.index(scan.classes[t]) if t >= 0 else -1 for t in scan.labels]
        return ImageFolderDataset(scan.files, labels, names, stored, on_error, min_size,
                                  [note, *_link_notes(scan)], where, view)
    scan = scan_folder(root)
    train_idx, test_idx = split_indices(scan.labels, test_fraction, split_seed)
    idx = train_idx if split == "train" else test_idx
    return ImageFolderDataset([scan.files[i] for i in idx], [scan.labels[i] for i in idx],
                              scan.classes, stored, on_error, min_size,
                              [note, *_link_notes(scan)], where, view)


def _link_notes(scan: FolderScan) -> list[str]:
    if not scan.skipped_links:
        return []
    return [f"skipped {scan.skipped_links} symlinks that loop (or lead to a folder already read) "
            "while listing images"]
