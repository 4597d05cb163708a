"""Image-text pairs whose images are decoded on access, and the rule that picks it.

Memory. A manifest's images decode to ``N x 3 x S x S`` bytes: 15 MB for 10,000 pairs at
64 px, 150 GB for a million at 224 px. ``-d cache=auto`` (the default) decodes every image once,
up front, into memory while that size (counted over the whole manifest, both splits) stays
within ``-d cache_limit_gib`` (default 2); above it the images are decoded on access, in the
DataLoader's worker processes (``FilePairDataset``, ``file_backed``: the trainer gives it
workers). ``-d cache=memory`` always decodes up front, ``-d cache=none`` always on access. An
``.npz`` is one array already and always stays in memory; the tokenized captions always do.

Both paths give the same pixels for the same file (``images.load_image``). Up front, every
file's header is checked in both (on access: in parallel and cached across runs, as an image
folder is): a missing, empty, non-image or too small file raises, or with ``-d on_error=skip``
is left out and counted in a note. A file whose pixel data turns out damaged only when decoded
(a truncated JPEG) is left out up front by the in-memory path; on access it raises, or with
``skip`` its pair (image, captions and label together) is replaced by the next readable pair,
with a warning, as the image folder dataset does: a batch keeps its size and an image never
gets another image's captions.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import get_worker_info

from anyssl.modalities.image.datasets import DataPathError
from anyssl.modalities.image.datasets_scan import MIN_SIZE, ScanStats, probe_files
from anyssl.modalities.image_text.images import ImageReadError, load_image, probe_file
from anyssl.modalities.image_text.manifest_rows import check_on_error
from anyssl.modalities.image_text.pairs import GENERIC_TEMPLATES, PairDataset
from anyssl.modalities.text.tokenizer import Tokenizer

__all__ = ["CACHE_LIMIT_GIB", "CACHE_MODES", "FilePairDataset", "cache_note", "check_cache",
           "check_files", "decoded_bytes", "keep_in_memory"]

log = logging.getLogger(__name__)
CACHE_MODES = ("auto", "memory", "none")
#: ``cache=auto`` decodes up front while the decoded images stay within this many GiB.
CACHE_LIMIT_GIB = 2.0
#: Threads decoding a batch in the training process (workers decode one image at a time).
_THREADS = 8
T = TypeVar("T")


def check_cache(cache: str) -> str:
    """``auto``, ``memory`` or ``none``; anything else raises naming the choices."""
    if cache not in CACHE_MODES:
        raise ValueError(f"cache must be one of {', '.join(CACHE_MODES)}, got {cache!r}")
    return cache


def decoded_bytes(n: int, size: int) -> int:
    """Bytes of ``n`` images decoded to ``3 x size x size`` uint8."""
    return n * 3 * size * size


def keep_in_memory(cache: str, n: int, size: int, limit_gib: float = CACHE_LIMIT_GIB) -> bool:
    """Whether ``n`` images of ``size`` px are decoded up front (see the module docstring)."""
    if check_cache(cache) != "auto":
        return cache == "memory"
    if limit_gib < 0:
        raise ValueError(f"cache_limit_gib must be >= 0, got {limit_gib}")
    return decoded_bytes(n, size) <= limit_gib * 2**30


def cache_note(cache: str, n: int, size: int, limit_gib: float) -> str:
    """The one line a run prints when its images are decoded on access."""
    gib = decoded_bytes(n, size) / 2**30
    why = ("-d cache=none" if cache == "none" else
           f"{n:,} x 3 x {size} x {size} = {gib:.1f} GiB decoded, over -d cache_limit_gib="
           f"{limit_gib:g}")
    return (f"images are decoded on access in the loader workers ({why}; -d cache=memory "
            "decodes them all up front)")


def check_files(files: Sequence[Path], wheres: Sequence[str], on_error: str,
                min_size: int = MIN_SIZE) -> tuple[list[int], list[str]]:
    """Check every file's header (``probe_files``: parallel, cached across runs): the kept
    positions and the notes. A bad file raises the in-memory path's ``ImageReadError`` (same
    message), or with ``on_error="skip"`` is left out and counted."""
    stats = ScanStats()  # says so in a note when the check took a while
    kept, _ = probe_files(files, min_size, skip=True, stats=stats)
    notes = [n for n in [stats.note()] if n]
    good = set(kept)
    bad = [i for i in range(len(files)) if i not in good]
    if not bad:
        return kept, notes
    first = (probe_file(files[bad[0]], wheres[bad[0]], min_size)
             or ImageReadError(f"{wheres[bad[0]]}: cannot read image {files[bad[0]]}",
                               files[bad[0]], wheres[bad[0]]))
    if on_error == "raise":
        raise ImageReadError(f"{first}; or pass -d on_error=skip", first.path, first.where)
    return kept, [*notes, f"skipped {len(bad)} of {len(files)} images that are missing or "
                  f"unreadable (first: {first.where}, {first.path.name})"]


class FilePairDataset(PairDataset):
    """Image files decoded on access to ``3 x image_size x image_size`` uint8 (in DataLoader
    workers: ``file_backed``), with their captions tokenized in memory; otherwise a
    ``PairDataset`` (same attributes but ``images``; same items as the in-memory path).

    ``on_error`` says what a file that fails to decode at access time does (module docstring).
    Batches fetched in the training process (``num_workers=0``, evaluation) are decoded by a
    few threads (``__getitems__``); ``load_images`` decodes any chosen items.
    """

    file_backed = True

    def __init__(self, files: Sequence[Path], image_size: int,
                 captions: Sequence[Sequence[str]], tokenizer: Tokenizer, context_length: int,
                 targets: Sequence[int] | None = None, class_names: Sequence[str] | None = None,
                 prompt_templates: Sequence[str] = GENERIC_TEMPLATES, notes: Sequence[str] = (),
                 suggested_epochs: int | None = None, rows: Sequence[int] | None = None,
                 on_error: str = "raise") -> None:
        if image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        #: the paths as one bytes array: compact, and no per-item objects for forked workers
        #: to copy while touching their reference counts
        self.paths = np.array([os.fsencode(f) for f in files], dtype=np.bytes_)
        self.image_size, self.on_error = image_size, check_on_error(on_error)
        self._set_pairs(len(files), image_size, captions, tokenizer, context_length, targets,
                        class_names, prompt_templates, notes, suggested_epochs, rows)

    def file(self, index: int) -> Path:
        """The image file of item ``index``."""
        return Path(os.fsdecode(bytes(self.paths[index])))

    def _image(self, index: int) -> tuple[int, Tensor]:
        """``(item used, its image)``: ``index``'s, or with ``skip`` the next readable one."""
        n = len(self)
        for k in range(n if self.on_error == "skip" else 1):
            j = (index + k) % n
            try:
                return j, load_image(self.file(j), self.image_size)
            except ImageReadError as err:
                if self.on_error == "raise":
                    raise DataPathError(f"{err} (item {j}, source row {self.rows[j]}); or pass "
                                        "-d on_error=skip") from None
                log.warning("skipped an image pair that cannot be decoded, using the next "
                            "one: %s", err)
        raise DataPathError(f"none of the {n} images can be decoded; check the data")

    def _item(self, used: tuple[int, Tensor]) -> tuple[dict[str, Tensor], int]:
        j, image = used
        return {"image": image, "text": self.text[j].long()}, int(self.targets[j])

    def __getitem__(self, index: int) -> tuple[dict[str, Tensor], int]:
        return self._item(self._image(int(index)))

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[dict[str, Tensor], int]]:
        """A batch of items (the DataLoader's batched fetch), decoded by threads when fetched
        in the training process."""
        return [self._item(u) for u in _map(self._image, [int(i) for i in indices])]

    def load_images(self, indices: Sequence[int] | Tensor) -> Tensor:
        """The images of items ``indices`` decoded now: B x 3 x S x S uint8 (with ``skip``, an
        undecodable one is its replacement's, as in ``__getitem__``)."""
        picks = [int(i) for i in torch.as_tensor(indices, dtype=torch.long).reshape(-1)]
        if not picks:
            return torch.zeros(0, 3, self.image_size, self.image_size, dtype=torch.uint8)
        return torch.stack([img for _, img in _map(self._image, picks)])


def _map(fn: Callable[[int], T], items: list[int]) -> list[T]:
    """``fn`` over ``items``: a few threads in the main process (Pillow releases the GIL while
    decoding), one at a time inside a DataLoader worker (the workers are the parallelism)."""
    if get_worker_info() is not None or len(items) < 2:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(_THREADS, len(items), os.cpu_count() or 1)) as pool:
        return list(pool.map(fn, items))
