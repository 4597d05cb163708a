"""Random access to the samples of a list of shards, and the skip-and-count read that datasets
over shards use so one corrupt sample does not stop a run."""

from __future__ import annotations

import bisect
import logging
import multiprocessing
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from itertools import accumulate
from multiprocessing.context import get_spawning_popen
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import torch
from torch.utils.data import get_worker_info

from anyssl.shards.index import ShardIndex, index_shard
from anyssl.shards.manifest import manifest_counts
from anyssl.shards.order import epoch_order
from anyssl.shards.spec import ShardError

__all__ = ["COUNTER_SLOTS", "MAX_OPEN", "ON_ERROR", "ShardSet", "read_with_fallback"]

T = TypeVar("T")
log = logging.getLogger("anyssl.shards")
#: Slots of the skip counter: one per process that reads (the training process, then its loader
#: workers by id), each written by its own process only, so no lock is needed.
COUNTER_SLOTS = 256
#: Shards whose index and open file a process keeps (least recently used dropped first). The
#: epoch order reads one or two shards at a time per worker, so a few suffice.
MAX_OPEN = 8
ON_ERROR = ("skip", "raise")


class ShardSet:
    """Random access to the samples of ``shards``; global index = the shards' samples
    concatenated in the given order.

    Counts come from ``counts``, else from the manifest beside each shard when it lists that
    shard with its current file size (no scan at start), else from indexing the shard (headers
    only). Indexes and open files are per process (keyed by ``os.getpid()``, so a forked
    DataLoader worker opens its own) and LRU-bounded by ``MAX_OPEN``; nothing open is pickled.
    ``skipped`` is a shared-memory array created here (``COUNTER_SLOTS`` int64 slots: this
    process, then one per loader worker), so DataLoader workers, forked or spawned, add to the
    count the training process reads with ``skipped_count()``.
    """

    def __init__(self, shards: Sequence[Path], counts: Sequence[int] | None = None,
                 on_error: str = "skip") -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}; got {on_error!r}")
        self.shards = [Path(p) for p in shards]
        self.on_error = on_error
        self._pid, self._indexes, self._files = 0, OrderedDict[int, ShardIndex](), \
            OrderedDict[int, BinaryIO]()
        self.counts = list(counts) if counts is not None else self._count()
        if len(self.counts) != len(self.shards) or any(c < 0 for c in self.counts):
            raise ValueError(f"need one count >= 0 per shard: {len(self.shards)} shards, "
                             f"counts {self.counts[:8]}")
        self.shard_starts: list[int] = [0, *accumulate(self.counts)]
        self.skipped: Any = multiprocessing.RawArray("q", COUNTER_SLOTS)
        self._warned: set[int] = set()

    def _count(self) -> list[int]:
        """Counts from the manifests, indexing the shards they do not list."""
        listed = manifest_counts(self.shards)
        return [len(self.index(s).samples) if c is None else c for s, c in enumerate(listed)]

    def __len__(self) -> int:
        return self.shard_starts[-1]

    def __getstate__(self) -> dict[str, Any]:
        """No open files or indexes; the shared counter travels only to a process being spawned
        (a plain pickle carries its current counts into a fresh counter)."""
        state = dict(self.__dict__, _pid=0, _indexes=OrderedDict(), _files=OrderedDict())
        if get_spawning_popen() is None:
            state["skipped"] = list(self.skipped)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state["skipped"], list):
            state["skipped"] = multiprocessing.RawArray("q", state["skipped"])
        self.__dict__.update(state)

    # ---- per-process caches ---------------------------------------------------------------
    def _fresh(self) -> None:
        """Forget the caches of another process (a forked worker inherits its parent's)."""
        if self._pid != os.getpid():
            self._pid, self._indexes, self._files = os.getpid(), OrderedDict(), OrderedDict()

    def index(self, shard: int) -> ShardIndex:
        """The index of shard number ``shard`` (built on first use in this process)."""
        self._fresh()
        if shard in self._indexes:
            self._indexes.move_to_end(shard)
        else:
            self._indexes[shard] = index_shard(self.shards[shard])
            if len(self._indexes) > MAX_OPEN:
                self._indexes.popitem(last=False)
        return self._indexes[shard]

    def _file(self, shard: int) -> BinaryIO:
        self._fresh()
        if shard in self._files:
            self._files.move_to_end(shard)
        else:
            self._files[shard] = open(self.shards[shard], "rb")  # noqa: SIM115 (kept open)
            if len(self._files) > MAX_OPEN:
                self._files.popitem(last=False)[1].close()
        return self._files[shard]

    # ---- access -----------------------------------------------------------------------------
    def locate(self, index: int) -> tuple[int, int]:
        """``(shard number, sample number in that shard)`` of global index ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range for {len(self)} samples")
        shard = bisect.bisect_right(self.shard_starts, index) - 1
        return shard, index - self.shard_starts[shard]

    def describe(self, index: int) -> str:
        """Where sample ``index`` lives, for messages: ``"shard train-000003.tar, key 000042"``
        (``"sample N"`` instead of the key when the shard's index does not hold it)."""
        shard, j = self.locate(index)
        name = self.shards[shard].name
        try:
            samples = self.index(shard).samples
        except ShardError:
            samples = []
        return f"shard {name}, key {samples[j].key}" if j < len(samples) \
            else f"shard {name}, sample {j}"

    def read(self, index: int, exts: Sequence[str] | None = None
             ) -> tuple[str, dict[str, bytes]]:
        """``(key, {extension: member bytes})`` of sample ``index`` (only the members in
        ``exts`` when given: the small text members without the image, say). ``ShardError``
        naming the shard file and the key (or position) when the shard does not hold the sample
        (it is truncated, or shorter than its count says) or a member cannot be read whole."""
        shard, j = self.locate(index)
        idx = self.index(shard)
        if j >= len(idx.samples):
            cut = " (truncated)" if idx.truncated else ""
            raise ShardError(f"{self.describe(index)}: missing, the shard holds "
                             f"{len(idx.samples)} readable "
                             f"samples{cut} but is counted as {self.counts[shard]}")
        ref = idx.samples[j]
        f, out = self._file(shard), {}
        try:
            for ext, (offset, size) in ref.members.items():
                if exts is not None and ext not in exts:
                    continue
                f.seek(offset)
                out[ext] = f.read(size)
                if len(out[ext]) != size:
                    raise ShardError(f"{self.describe(index)}: member .{ext} cut short "
                                     f"({len(out[ext])} of {size} bytes)")
        except OSError as e:  # the location is worked out only for a message
            raise ShardError(f"{self.describe(index)}: cannot be read ({e})") from e
        return ref.key, out

    def epoch_order(self, seed: int, epoch: int, window: int) -> torch.Tensor:
        """This set's order of ``epoch`` (see ``anyssl.shards.order.epoch_order``)."""
        return epoch_order(self.shard_starts, seed, epoch, window)

    def skipped_count(self) -> int:
        """Samples replaced after an error so far, by this process and its loader workers."""
        return int(sum(self.skipped))

    def _skip(self, index: int, shard: int, error: Exception) -> None:
        """Count one skipped sample; warn once per shard and process."""
        worker = get_worker_info()
        self.skipped[0 if worker is None else (worker.id + 1) % COUNTER_SLOTS] += 1
        if shard not in self._warned:
            self._warned.add(shard)
            log.warning("skipping unreadable samples of shard %s (first: %s: %s); "
                        "-d on_error=raise stops instead", self.shards[shard],
                        self.describe(index), error)


def read_with_fallback(shards: ShardSet, index: int,
                       decode: Callable[[str, dict[str, bytes]], T],
                       allowed: Callable[[int], bool] | None = None) -> T:
    """``decode(*shards.read(index))``, or, when reading or decoding fails:

    * ``on_error="raise"``: ``ShardError`` naming the shard file and key, and the reason;
    * ``on_error="skip"``: the next readable sample of the same shard (cyclically), each failed
      one counted in ``shards.skipped`` (and a warning once per shard). So a batch keeps its
      size (DDP and the methods need fixed batches) and a bad sample is never used; a shard
      with no readable sample at all raises ``ShardError``.

    ``allowed`` (a global index -> bool) limits the replacements to one split's samples, so a
    held-out sample never stands in for a training one.
    """
    shard, j = shards.locate(index)
    start, n = shards.shard_starts[shard], shards.counts[shard]
    for step in range(n):
        i = start + (j + step) % n
        if step and allowed is not None and not allowed(i):
            continue
        try:
            return decode(*shards.read(i))
        except Exception as e:
            if shards.on_error == "raise":
                reason = str(e) if isinstance(e, ShardError) \
                    else f"{shards.describe(i)}: {type(e).__name__}: {e}"
                raise ShardError(f"{reason}; -d on_error=skip skips such samples") from e
            shards._skip(i, shard, e)
    raise ShardError(f"shard {shards.shards[shard]}: none of its {n} samples (of this split) "
                     "could be read; check or remove the file")
