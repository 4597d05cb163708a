"""What the image and image-text datasets over WebDataset shards share: opening a shard spec,
one pass over the small members (labels, captions) of every sample, labels as class ids, the
held-out split and the epoch order of a split.

Labels. A sample's label is its ``cls`` member (an integer as text) or the ``label`` of its
``json`` member (an integer, or a class name). Names map to ids through the manifest's
``meta.label_names`` when the shards were written by ``anyssl shards``, else through the sorted
names found (numeric order when all are integers); integer labels are ids as they are. A dataset
whose samples carry no label has label -1 everywhere and ``num_classes`` None, as an unlabeled
image folder: the kNN and linear protocols then say the data has no labels.

The small members are read once, when the dataset is built, from the byte offsets of the tar
index (no image member is read) and cached in this process by the shards' paths, sizes and
modification times, so the train and test splits of one run read them once.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor

from anyssl.modalities.image.datasets import DataPathError
from anyssl.shards import ShardError, ShardSet, expand_shards, read_manifest

__all__ = ["DEFAULT_SHUFFLE_WINDOW", "Label", "ShardSubset", "class_ids", "json_member",
           "open_shards", "raw_label", "scan_members", "shard_meta"]

T = TypeVar("T")
#: Samples shuffled together inside the shard-local epoch order (``-d shuffle_window``).
DEFAULT_SHUFFLE_WINDOW = 10_000
_SCANS: OrderedDict[tuple[Any, ...], list[Any]] = OrderedDict()
Label = int | str | None


def open_shards(spec: str | Path | Sequence[str | Path], on_error: str) -> ShardSet:
    """The ``ShardSet`` of a shard spec; a missing shard or manifest problem is one
    ``DataPathError`` line naming it."""
    try:
        return ShardSet(expand_shards(spec), on_error=on_error)
    except ShardError as err:
        raise DataPathError(str(err)) from None


def shard_meta(shards: ShardSet) -> dict[str, Any]:
    """The ``meta`` of the manifest beside the first shard (``{}`` when there is none)."""
    manifest = read_manifest(shards.shards[0].parent) if shards.shards else None
    meta = (manifest or {}).get("meta")
    return meta if isinstance(meta, dict) else {}


def json_member(members: dict[str, bytes]) -> dict[str, Any]:
    """The sample's ``json`` member as a dict (``{}`` when absent); bad JSON raises."""
    if "json" not in members:
        return {}
    obj = json.loads(members["json"].decode("utf-8"))
    if not isinstance(obj, dict):
        raise ValueError(f"the json member is a {type(obj).__name__}, not an object")
    return obj


def raw_label(members: dict[str, bytes]) -> Label:
    """The label a sample carries: ``cls`` (int text) or json ``label`` (int or name); None."""
    if "cls" in members:
        return int(members["cls"].decode("utf-8").strip())
    value = json_member(members).get("label")
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValueError(f"json label {value!r} is neither an integer nor a class name")


def _fingerprint(shards: ShardSet) -> tuple[Any, ...]:
    return tuple((str(p), st.st_size, st.st_mtime_ns) for p in shards.shards
                 for st in [os.stat(p)])


def scan_members(shards: ShardSet, exts: Sequence[str],
                 parse: Callable[[dict[str, bytes]], T]) -> list[T | None]:
    """``parse({ext: bytes})`` of every sample's ``exts`` members, in global index order (None
    for a sample the shard does not hold or that ``parse`` refuses with ``on_error="skip"``;
    with ``"raise"``, a ``DataPathError`` naming the shard and key). Only those members are read;
    the result is cached in this process."""
    key = (_fingerprint(shards), tuple(exts), getattr(parse, "__qualname__", repr(parse)),
           shards.on_error)
    if key in _SCANS:
        _SCANS.move_to_end(key)
        return list(_SCANS[key])
    out: list[T | None] = []
    for s, path in enumerate(shards.shards):
        samples = shards.index(s).samples[: shards.counts[s]]
        with open(path, "rb") as f:
            for ref in samples:
                members = {}
                for ext in exts:
                    if ext in ref.members:
                        offset, size = ref.members[ext]
                        f.seek(offset)
                        members[ext] = f.read(size)
                out.append(_parsed(parse, members, shards, path, ref.key))
        out += [None] * (shards.counts[s] - len(samples))  # a truncated shard
    _SCANS[key] = out
    while len(_SCANS) > 4:
        _SCANS.popitem(last=False)
    return list(out)


def _parsed(parse: Callable[[dict[str, bytes]], T], members: dict[str, bytes],
            shards: ShardSet, path: Path, key: str) -> T | None:
    try:
        return parse(members)
    except (ValueError, UnicodeDecodeError) as err:
        if shards.on_error == "raise":
            raise DataPathError(f"shard {path.name}, key {key}: {err}; -d on_error=skip skips "
                                "such samples") from None
        return None


def class_ids(labels: Sequence[Sequence[Label]], names: Sequence[str] | None
              ) -> tuple[list[list[int]], list[str] | None]:
    """Each label list as ids (-1 unlabeled) and the class names, one id space for all lists
    (a train and a test set). ``names`` (the manifest's ``label_names``) fix the order."""
    found = {v for part in labels for v in part if v is not None}
    if not found:
        return [[-1] * len(part) for part in labels], None
    if names is None and all(isinstance(v, int) for v in found):
        ints = [v for v in found if isinstance(v, int)]
        return ([[v if isinstance(v, int) else -1 for v in part] for part in labels],
                [str(i) for i in range(max(ints) + 1)])
    if names is None:
        names = sorted({str(v) for v in found})
        if all(n.lstrip("-").isdigit() for n in names):
            names.sort(key=int)
    ids = {n: i for i, n in enumerate(names)}
    unknown = sorted(str(v) for v in found if isinstance(v, str) and v not in ids)
    if unknown:
        raise DataPathError(f"label {unknown[0]!r} is not one of the manifest's label_names "
                            f"({', '.join(names[:8])}...)")
    return [[-1 if v is None else v if isinstance(v, int) else ids[str(v)] for v in part]
            for part in labels], list(names)


class ShardSubset:
    """The samples at ``indices`` (global, sorted; None: all) of a ``ShardSet``, in the
    shard-local epoch order. Subclasses read their items through ``global_index``."""

    file_backed = True  # the trainer gives it DataLoader workers

    def _init_subset(self, shards: ShardSet, indices: np.ndarray | None, window: int) -> None:
        if window < 0:
            raise ValueError(f"shuffle_window must be >= 0, got {window}")
        self.shards, self.shuffle_window = shards, int(window)
        self.indices = None if indices is None else torch.as_tensor(indices, dtype=torch.long)
        self._reported = 0
        self._mask: Tensor | None = None

    def __len__(self) -> int:
        return len(self.shards) if self.indices is None else int(self.indices.numel())

    def allowed(self, global_index: int) -> bool:
        """Whether ``global_index`` belongs to this split (a corrupt sample's replacement must)."""
        if self.indices is None:
            return True
        if self._mask is None:
            self._mask = torch.zeros(len(self.shards), dtype=torch.bool)
            self._mask[self.indices] = True
        return bool(self._mask[global_index])

    def global_index(self, index: int) -> int:
        """The ``ShardSet`` index of item ``index``."""
        return int(index) if self.indices is None else int(self.indices[index])

    def epoch_order(self, seed: int, epoch: int) -> Tensor:
        """Item order of ``epoch``: the ``ShardSet``'s shard-local order, filtered to this
        split (a pure function of ``seed`` and ``epoch``)."""
        full = self.shards.epoch_order(seed, epoch, self.shuffle_window)
        if self.indices is None:
            return full
        local = torch.full((len(self.shards),), -1, dtype=torch.long)
        local[self.indices] = torch.arange(len(self), dtype=torch.long)
        picked = local[full]  # total: this split's position, or -1
        return picked[picked >= 0]

    def epoch_notes(self) -> list[str]:
        """A note when samples were skipped since the last call (workers included)."""
        n = self.shards.skipped_count()
        if n == self._reported:
            return []
        self._reported = n
        return [f"skipped {n} samples that cannot be read or decoded so far, each replaced by "
                "the next readable sample of its shard (-d on_error=raise stops instead)"]
