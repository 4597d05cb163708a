"""Image decoding for image-text data. Up to ``-d cache_limit_gib`` of decoded images (see
``lazy``), every image is decoded once, when the dataset is built, into one uint8
``N x 3 x S x S`` tensor, so a bad file is reported up front and a training step only indexes
memory; above it ``lazy.FilePairDataset`` decodes each with ``load_image`` on access.

Handling (the same for files and arrays): grayscale and palette images become RGB (three equal
channels); transparency (RGBA, LA, palette with a transparent colour) is composited on white,
the background the OpenMoji emoji are rendered on; then the shorter side is resized to ``S``
(bilinear with antialiasing) and the center ``S x S`` cropped.

Before decoding, every file's header is checked (``image.datasets_scan.probe_image``): a file
that is empty, not an image, over Pillow's decompression-bomb pixel limit (never decoded) or with
a side below ``min_size`` (default 8 px; a 1 x 1 px image is refused, not stretched) is a bad
row, reported or skipped like a missing file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from anyssl.modalities.image.datasets import DataPathError
from anyssl.modalities.image.datasets_files import load_image as _decode_file
from anyssl.modalities.image.datasets_scan import MIN_SIZE, probe_image

__all__ = ["ImageReadError", "decode_files", "fit_images", "images_from_array", "load_image",
           "probe_file"]


class ImageReadError(DataPathError):
    """An image file that is missing or cannot be decoded; ``path`` and ``where`` (the
    manifest row, e.g. ``"pairs.csv line 7"``) say which."""

    def __init__(self, message: str, path: Path | str, where: str | None = None) -> None:
        super().__init__(message)
        self.path, self.where = Path(path), where


def load_image(path: str | Path, size: int, where: str | None = None) -> Tensor:
    """Decode one file to a ``3 x size x size`` uint8 tensor (see the module docstring).

    Raises:
        ImageReadError: the file is missing or Pillow cannot decode it.
    """
    file = Path(path)
    prefix = f"{where}: " if where else ""
    if not file.is_file():
        raise ImageReadError(f"{prefix}image {file} does not exist; fix the path (relative "
                             "paths start at the manifest's folder)", file, where)
    try:
        return _decode_file(file, size)
    except (DataPathError, EOFError) as err:
        raise ImageReadError(f"{prefix}{err}", file, where) from None


def fit_images(images: Tensor, size: int) -> Tensor:
    """Resize the shorter side to ``size`` (bilinear, antialiased) and center-crop.

    Shape:
        images: ``N x C x H x W`` uint8 -> ``N x C x size x size`` uint8.
    """
    if size < 1:
        raise ValueError(f"image_size must be >= 1, got {size}")
    h, w = images.shape[-2:]
    if (h, w) == (size, size):
        return images
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    out = F.interpolate(images.float(), size=(nh, nw), mode="bilinear", align_corners=False,
                        antialias=True)
    top, left = (nh - size) // 2, (nw - size) // 2
    out = out[..., top:top + size, left:left + size]
    return out.round_().clamp_(0, 255).to(torch.uint8).contiguous()


def images_from_array(array: np.ndarray, size: int, chunk: int = 1024) -> Tensor:
    """uint8 images ``(N,H,W)``, ``(N,H,W,3)`` or ``(N,H,W,4)`` to ``N x 3 x size x size``
    uint8: gray repeated to RGB, alpha composited on white, then ``fit_images``."""
    if array.dtype != np.uint8 or array.ndim not in (3, 4):
        raise ValueError(f"images must be uint8 (N,H,W[,C]), got {array.shape} {array.dtype}")
    parts = []
    for start in range(0, len(array), chunk):
        x = torch.from_numpy(np.array(array[start:start + chunk]))  # a writable copy
        x = x.unsqueeze(-1) if x.dim() == 3 else x
        if x.shape[-1] == 4:  # out = a * rgb + (1 - a) * white
            alpha = x[..., 3:].float() / 255.0
            x = (x[..., :3].float() * alpha + 255.0 * (1.0 - alpha)).round_().to(torch.uint8)
        x = x.expand(*x.shape[:-1], 3) if x.shape[-1] == 1 else x
        parts.append(fit_images(x.permute(0, 3, 1, 2).contiguous(), size))
    if not parts:
        return torch.zeros(0, 3, size, size, dtype=torch.uint8)
    return torch.cat(parts)


def _try_load(size: int) -> Callable[[tuple[Path, str]], Tensor | ImageReadError]:
    def load(item: tuple[Path, str]) -> Tensor | ImageReadError:
        try:
            return load_image(item[0], size, item[1])
        except ImageReadError as err:
            return err
    return load


def probe_file(file: Path, where: str, min_size: int) -> ImageReadError | None:
    """The header check of one file (see the module docstring); None when it passes."""
    prefix = f"{where}: " if where else ""
    if not file.is_file():
        return ImageReadError(f"{prefix}image {file} does not exist; fix the path (relative "
                              "paths start at the manifest's folder)", file, where)
    try:
        probe_image(file, min_size)
    except DataPathError as err:
        return ImageReadError(f"{prefix}{err}", file, where)
    return None


def decode_files(files: Sequence[Path], size: int, wheres: Sequence[str] | None = None,
                 skip: bool = False, workers: int | None = None,
                 min_size: int = MIN_SIZE) -> tuple[Tensor, list[int], list[ImageReadError]]:
    """Check every file's header (in this thread), then decode the good ones (a thread pool;
    Pillow releases the GIL while decoding).

    Returns ``(images N' x 3 x size x size uint8, kept indices, errors)``. Without ``skip`` the
    first bad file raises its ``ImageReadError``; with it, bad files are left out and returned.
    """
    places = list(wheres) if wheres is not None else [str(f) for f in files]
    if len(places) != len(files):
        raise ValueError(f"{len(files)} files but {len(places)} row places")
    results: list[Tensor | ImageReadError | None] = [
        probe_file(f, w, min_size) for f, w in zip(files, places, strict=True)]
    todo = [i for i, r in enumerate(results) if r is None]
    n_workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        decoded = pool.map(_try_load(size), [(files[i], places[i]) for i in todo])
        for i, r in zip(todo, decoded, strict=True):
            results[i] = r
    errors = [r for r in results if isinstance(r, ImageReadError)]
    if errors and not skip:
        raise errors[0]
    kept = [i for i, r in enumerate(results) if isinstance(r, Tensor)]
    good = [r for r in results if isinstance(r, Tensor)]
    images = torch.stack(good) if good else torch.zeros(0, 3, size, size, dtype=torch.uint8)
    return images, kept, errors
