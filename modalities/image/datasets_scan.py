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
- ``probe_files`` checks a whole list the same way and, for a big folder, fast: headers are read
  in a pool of processes (``scan_headers``) and what was found is cached across runs
  (``scan_cache``, keyed by each file's path, size and mtime), so a second start re-reads only
  files that changed. The verdicts (kept files, errors, their order and messages) are those of
  ``probe_image`` file by file; ``min_size`` and the pixel limit are applied afresh every run.
- A file whose header is fine but whose pixel data is damaged (a truncated PNG or JPEG) is only
  found when it is decoded (``datasets_files.load_image``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from anyssl.modalities.image.datasets import DataPathError
from anyssl.modalities.image.scan_cache import CACHE_MIN_FILES, Header, Key, ScanCache, ScanStats
from anyssl.modalities.image.scan_headers import (
    _too_large,
    _too_small,
    judge_header,
    max_pixels,
    pool_size,
    read_header,
    read_headers,
    usable_cores,
)

__all__ = ["IMAGE_EXTENSIONS", "MIN_SIZE", "FolderScan", "ScanStats", "check_size",
           "max_pixels", "probe_files", "probe_image", "scan_folder", "walk_images"]

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
def check_size(file: Path | str, size: tuple[int, int], min_size: int = 1) -> None:
    """Refuse an image of ``size = (width, height)`` over ``max_pixels()`` or with a side
    below ``min_size``."""
    w, h = size
    limit = max_pixels()
    if limit is not None and w * h > limit:
        raise _too_large(file, f"{w:,} x {h:,} = {w * h:,}", limit)
    if min(w, h) < min_size:
        raise _too_small(file, w, h, min_size)


def probe_image(file: Path, min_size: int = MIN_SIZE) -> tuple[int, int]:
    """Read ``file``'s header only and return its ``(width, height)``; refuse what the module
    docstring lists with a ``DataPathError``. Call it from one thread (``read_header``)."""
    header, _ = read_header(str(file))
    err = judge_header(file, header, min_size, max_pixels())
    if err is not None:
        raise err
    assert isinstance(header, list) and len(header) == 2  # the others always fail
    return header[0], header[1]


def probe_files(files: Sequence[Path], min_size: int = MIN_SIZE, skip: bool = False, *,
                workers: int | None = None, cache: bool | None = None,
                stats: ScanStats | None = None) -> tuple[list[int], list[DataPathError]]:
    """Check every file as ``probe_image`` does. Returns ``(kept indices, errors)`` in list
    order; without ``skip`` the first bad file in list order raises its error with the hint
    ``-d on_error=skip`` added.

    Long lists are read in up to ``workers`` processes (default: the cores this process may
    use; see ``scan_headers``), with the results of one. What was read is cached across runs
    (``scan_cache``): ``cache=None`` caches lists of ``CACHE_MIN_FILES`` files or more,
    ``True`` any list, ``False`` none. Give a ``ScanStats`` as ``stats`` to learn what the
    check did; ``stats.note()`` says it in one line when it took noticeable time.
    """
    start = time.perf_counter()
    workers = usable_cores() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, or None for the usable cores; got {workers}")
    stats = ScanStats() if stats is None else stats
    names, limit = [str(f) for f in files], max_pixels()
    use_cache = len(names) >= CACHE_MIN_FILES if cache is None else cache
    store = ScanCache(names) if use_cache else None
    headers = store.lookup(limit) if store else [None] * len(names)
    misses = [i for i, h in enumerate(headers) if h is None]
    fresh: dict[int, tuple[Header, Key]] | None = {} if store else None
    reads = read_headers(names, misses, workers)
    stats.files, stats.cached, stats.read = len(names), len(names) - len(misses), 0
    stats.processes = pool_size(len(misses), workers)
    stats.cache_file = store.path if store else None
    try:
        return _verdicts(files, headers, reads, fresh, min_size, limit, skip, stats)
    finally:
        reads.close()  # stops the pool when the first bad file raised
        stats.cache_error = store.save(fresh) if store and fresh is not None else None
        stats.written = bool(store and store.written)
        stats.seconds = time.perf_counter() - start


def _verdicts(files: Sequence[Path], headers: list[Header | None],
              reads: Iterator[tuple[int, Header, Key | None]],
              fresh: dict[int, tuple[Header, Key]] | None, min_size: int, limit: int | None,
              skip: bool, stats: ScanStats) -> tuple[list[int], list[DataPathError]]:
    """``probe_files``'s loop: each file's header, cached or the next one read (the reads
    come in list order), judged; what was read and may be cached goes into ``fresh`` (None:
    no cache)."""
    kept: list[int] = []
    errors: list[DataPathError] = []
    for i, cached in enumerate(headers):
        header = cached
        if header is None:
            _, header, key = next(reads)
            stats.read += 1
            if fresh is not None and key is not None:
                fresh[i] = (header, key)
        err = judge_header(files[i], header, min_size, limit)
        if err is None:
            kept.append(i)
        elif not skip:
            raise DataPathError(f"{err}, or pass -d on_error=skip") from None
        else:
            errors.append(err)
    return kept, errors
