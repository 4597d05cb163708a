"""Finding image files and checking their headers before anything is decoded.

- ``walk_images`` lists the images under a folder. Directory symlinks are followed, but one that
  leads back to the folder it sits in or to an ancestor (a loop, ``cat/loop -> ..``) is skipped,
  a folder reached twice is read once, and a link that cannot be resolved (``a -> b -> a``) is
  skipped; all of these are counted. Hidden files and folders (``.name``) are ignored.
- ``probe_image`` opens only an image's header (Pillow reads a few bytes) and refuses, with a
  ``DataPathError`` naming the file: a zero-byte file, a file Pillow cannot identify (text named
  ``.png``, a corrupt header), an image over ``Image.MAX_IMAGE_PIXELS`` pixels (Pillow's
  decompression-bomb limit, about 89.5 Mpx: such a file is never decoded) and an image whose
  shorter side is below ``min_size`` (default ``MIN_SIZE`` = 8 px, the side of sklearn's digits,
  the smallest real image set: a 1 x 1 px image is refused, not stretched into a flat colour).
- A file whose header is fine but whose pixel data is damaged (a truncated PNG or JPEG) is only
  found when it is decoded (``datasets_files.load_image``).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from anyssl.modalities.image.datasets import DataPathError

__all__ = ["IMAGE_EXTENSIONS", "MIN_SIZE", "FolderScan", "check_size", "max_pixels",
           "probe_files", "probe_image", "scan_folder", "walk_images"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".pbm", ".tif",
                    ".tiff", ".webp")
#: Shortest accepted image side in pixels (sklearn's digits are 8 x 8).
MIN_SIZE = 8


# ---- walking folders ----------------------------------------------------------------------------
def _within(path: str, ancestor: str) -> bool:
    """Whether ``ancestor`` is ``path`` itself or one of its ancestors (real paths)."""
    return path == ancestor or path.startswith(ancestor.rstrip(os.sep) + os.sep)


def walk_images(folder: Path, recursive: bool = True) -> tuple[list[Path], int]:
    """Image files under ``folder`` (sorted) and the number of symlinks skipped (see module)."""
    files: list[Path] = []
    skipped, seen = 0, set()
    stack = [(folder, os.path.realpath(folder))]
    while stack:
        here, real = stack.pop()
        if real in seen:
            skipped += 1
            continue
        seen.add(real)
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                if e.is_dir():  # follows symlinks
                    target = os.path.realpath(e.path)
                    if _within(real, target):  # leads back up: a loop
                        skipped += 1
                    elif recursive:
                        stack.append((Path(e.path), target))
                elif e.is_file() and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS:
                    files.append(Path(e.path))
            except OSError:  # ELOOP: a link that never resolves
                skipped += 1
    return sorted(files), skipped


@dataclass
class FolderScan:
    """Files, labels (-1 unlabeled), class names and the symlinks skipped of a folder."""

    files: list[Path]
    labels: list[int]
    classes: list[str]
    skipped_links: int = 0


def scan_folder(root: Path) -> FolderScan:
    """The images of a folder: class subfolders (searched recursively) give labels in
    sorted-name order; without any, the images directly in ``root`` get label -1. A subfolder
    that is a symlink to ``root`` or above it is a loop and skipped (counted)."""
    real_root = os.path.realpath(root)
    scan = FolderScan([], [], [])
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    for d in subdirs:
        if _within(real_root, os.path.realpath(d)):
            scan.skipped_links += 1
            continue
        found, skipped = walk_images(d)
        scan.skipped_links += skipped
        if found:
            scan.files += found
            scan.labels += [len(scan.classes)] * len(found)
            scan.classes.append(d.name)
    if not scan.files:
        scan.files, skipped = walk_images(root, recursive=False)
        scan.labels = [-1] * len(scan.files)
        scan.skipped_links += skipped
    if not scan.files:
        raise DataPathError(f"no images found in {root}; put images (extensions: "
                            f"{' '.join(IMAGE_EXTENSIONS)}) in it or in class subfolders")
    return scan


# ---- header checks ------------------------------------------------------------------------------
def max_pixels() -> int | None:
    """The pixel limit of the decompression-bomb guard: Pillow's ``Image.MAX_IMAGE_PIXELS``."""
    from PIL import Image

    return Image.MAX_IMAGE_PIXELS


def _too_large(file: Path, pixels: int | str, limit: int | None) -> DataPathError:
    return DataPathError(f"image {file} has {pixels} pixels, over the {limit:,}-pixel limit "
                         "that guards against decompression bombs; it was not decoded: resize it "
                         "or remove it")


def check_size(file: Path, size: tuple[int, int], min_size: int = 1) -> None:
    """Refuse an image of ``size = (width, height)`` over ``max_pixels()`` or with a side
    below ``min_size``."""
    w, h = size
    limit = max_pixels()
    if limit is not None and w * h > limit:
        raise _too_large(file, f"{w:,} x {h:,} = {w * h:,}", limit)
    if min(w, h) < min_size:
        raise DataPathError(f"image {file} is {w}x{h} px, smaller than min_size={min_size} px "
                            f"on a side; remove it, or pass -d min_size={max(1, min(w, h))} to "
                            "upscale it")


def probe_image(file: Path, min_size: int = MIN_SIZE) -> tuple[int, int]:
    """Read ``file``'s header only and return its ``(width, height)``; refuse what the module
    docstring lists with a ``DataPathError``. Call it from one thread: it sets a warnings
    filter (Pillow warns, not raises, between 1x and 2x its pixel limit)."""
    from PIL import Image

    try:
        if file.stat().st_size == 0:
            raise DataPathError(f"image {file} is empty (0 bytes); remove it or replace it")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as im:
                size = im.size
    except DataPathError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        found = re.search(r"\((\d+) pixels\)", str(err))
        raise _too_large(file, f"{int(found.group(1)):,}" if found else "too many",
                         max_pixels()) from None
    except Image.UnidentifiedImageError:
        raise DataPathError(f"cannot read image {file}: Pillow cannot identify it (not an image, "
                            "or a corrupt header); remove or convert it") from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise DataPathError(f"cannot read image {file}: {err}; remove or convert it") from None
    check_size(file, size, min_size)
    return size


def probe_files(files: Sequence[Path], min_size: int = MIN_SIZE,
                skip: bool = False) -> tuple[list[int], list[DataPathError]]:
    """Probe every file (``probe_image``). Returns ``(kept indices, errors)``; without ``skip``
    the first bad file raises its error with the hint ``-d on_error=skip`` added."""
    kept: list[int] = []
    errors: list[DataPathError] = []
    for i, f in enumerate(files):
        try:
            probe_image(f, min_size)
        except DataPathError as err:
            if not skip:
                raise DataPathError(f"{err}, or pass -d on_error=skip") from None
            errors.append(err)
            continue
        kept.append(i)
    return kept, errors
