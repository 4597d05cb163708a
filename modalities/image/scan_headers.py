"""Reading image headers: one file's (``read_header``), the verdict on what it found
(``judge_header``), and many files' in a pool of processes (``read_headers``).

Pillow parses headers in Python, holding the GIL, so threads do not read them faster; processes
do. They are forked on Linux: a forked worker starts in milliseconds, where a spawned one would
import torch again (over a second). Below ``PARALLEL_MIN`` headers (a few thousand: about what
starting the pool costs) this process reads them alone. A worker reads under the parent's pixel
limit, and the results come back in list order, so the verdicts are those of one process.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import re
import sys
import warnings
from collections.abc import Generator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from anyssl.modalities.image.datasets import DataPathError
from anyssl.modalities.image.scan_cache import Header, Key

__all__ = ["CHUNK", "PARALLEL_MIN", "SPAWN_MIN", "judge_header", "max_pixels", "pool_size",
           "read_header", "read_headers", "usable_cores"]

log = logging.getLogger(__name__)
#: Headers to read from which a pool of forked processes is used (benchmarks/folder_scan.py).
PARALLEL_MIN = 4000
#: The same where processes are spawned (not Linux): each imports the library first.
SPAWN_MIN = 100_000
#: Files per task sent to a worker.
CHUNK = 512


# ---- one file -----------------------------------------------------------------------------------
def max_pixels() -> int | None:
    """The pixel limit of the decompression-bomb guard: Pillow's ``Image.MAX_IMAGE_PIXELS``."""
    from PIL import Image

    return Image.MAX_IMAGE_PIXELS


def _too_large(file: Path | str, pixels: int | str, limit: int | None) -> DataPathError:
    return DataPathError(f"image {file} has {pixels} pixels, over the {limit:,}-pixel limit "
                         "that guards against decompression bombs; it was not decoded: resize it "
                         "or remove it")


def _too_small(file: Path | str, w: int, h: int, min_size: int) -> DataPathError:
    return DataPathError(f"image {file} is {w}x{h} px, smaller than min_size={min_size} px "
                         f"on a side; remove it, or pass -d min_size={max(1, min(w, h))} to "
                         "upscale it")


def read_header(file: str) -> tuple[Header, Key | None]:
    """Read ``file``'s header only (Pillow reads a few bytes) and say what it found: a
    ``Header`` (``scan_cache``: ``[width, height]``, ``[pixels]`` over Pillow's pixel limit, or
    why it cannot be read, ``"\\0"`` standing for the file's name), and the file's ``Key``
    (size, mtime_ns) when that answer depends on the file's bytes alone, so it may be cached;
    None after a system error (permission refused ...), which may not last. Call it from one
    thread: it sets a warnings filter (Pillow warns, not raises, between 1x and 2x its limit)."""
    from PIL import Image

    key: Key | None = None
    try:
        st = os.stat(file)
        key = (st.st_size, st.st_mtime_ns)
        if st.st_size == 0:
            return "image \0 is empty (0 bytes); remove it or replace it", key
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as im:
                return list(im.size), key
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        found = re.search(r"\((\d+) pixels\)", str(err))
        if found:
            return [int(found.group(1))], key
        return str(_too_large("\0", "too many", max_pixels())), None
    except Image.UnidentifiedImageError:
        return ("cannot read image \0: Pillow cannot identify it (not an image, or a corrupt "
                "header); remove or convert it"), key
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        lasting = not isinstance(err, OSError) or err.errno is None  # Pillow's, not the OS's
        return f"cannot read image \0: {err}; remove or convert it", key if lasting else None


def judge_header(file: Path | str, header: Header, min_size: int,
                 limit: int | None) -> DataPathError | None:
    """The error ``probe_image`` raises for a file whose header ``read_header`` found, under
    ``min_size`` and the pixel ``limit`` (Pillow's rule: refused over ``limit`` pixels, a side
    of 0 counting as 1); None when the image passes."""
    if isinstance(header, str):
        return DataPathError(header.replace("\0", str(file)))
    if len(header) == 1:
        return _too_large(file, f"{header[0]:,}", limit)
    w, h = header
    pixels = max(1, w) * max(1, h)
    if limit is not None and pixels > limit:
        return _too_large(file, f"{pixels:,}", limit)
    return _too_small(file, w, h, min_size) if min(w, h) < min_size else None


# ---- many files ---------------------------------------------------------------------------------
def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _fork() -> bool:
    return sys.platform.startswith("linux")


def pool_size(n: int, workers: int) -> int:
    """Processes that read ``n`` headers given ``workers``: 1 (this one) below the threshold,
    and in a daemonic process (a DataLoader worker), which may not start processes."""
    if workers < 2 or n < (PARALLEL_MIN if _fork() else SPAWN_MIN) \
            or multiprocessing.current_process().daemon:
        return 1
    return min(workers, -(-n // CHUNK))


def _read_chunk(files: list[str], limit: int | None) -> list[tuple[Header, Key | None]]:
    """``read_header`` of each file, in a worker process, under the parent's pixel ``limit``."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = limit  # this worker's own copy of Pillow
    return [read_header(f) for f in files]


def _pooled(files: Sequence[str], which: Sequence[int],
            processes: int) -> Generator[tuple[int, Header, Key | None], None, None]:
    """``read_headers`` in ``processes`` workers, chunk by chunk in list order. When the
    consumer stops early, the chunks not yet started are cancelled."""
    from PIL import Image

    Image.preinit()  # the common format plugins, imported once before the fork
    size = max(1, min(CHUNK, -(-len(which) // (4 * processes))))
    chunks = [which[k:k + size] for k in range(0, len(which), size)]
    context = multiprocessing.get_context("fork" if _fork() else None)
    pool = ProcessPoolExecutor(processes, mp_context=context)
    try:
        found = pool.map(_read_chunk, [[files[i] for i in c] for c in chunks],
                         itertools.repeat(Image.MAX_IMAGE_PIXELS))
        for chunk, results in zip(chunks, found, strict=False):
            for i, (header, key) in zip(chunk, results, strict=True):
                yield i, header, key
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def read_headers(files: Sequence[str], which: Sequence[int],
                 workers: int) -> Generator[tuple[int, Header, Key | None], None, None]:
    """``(i, *read_header(files[i]))`` for each index ``i`` of ``which`` (ascending), in order:
    in up to ``workers`` processes when there are enough (``pool_size``), else in this one. If
    the pool breaks (a worker killed, no fork allowed), the rest are read here."""
    done, processes = 0, pool_size(len(which), workers)
    if processes > 1:
        pooled = _pooled(files, which, processes)
        try:
            for item in pooled:
                yield item
                done += 1
        except (OSError, BrokenProcessPool) as err:
            log.warning("reading image headers in %d processes failed (%s: %s); reading the "
                        "rest in this one", processes, type(err).__name__, err)
        finally:
            pooled.close()  # shuts the pool down, also when the consumer stops early
    for i in which[done:]:
        yield (i, *read_header(files[i]))
