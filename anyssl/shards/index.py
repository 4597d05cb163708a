"""The sample index of one WebDataset tar: each sample's key and its members' data offsets, read
from the tar headers only (no member data), so a reader can fetch any sample by offset.

Naming follows WebDataset: a member's key is its path with the basename cut at its first ``"."``
and its extension is the rest, lowercased (``"a/b/000001.seg.png"`` -> key ``"a/b/000001"``,
extension ``"seg.png"``). The members of one sample must be adjacent in the tar, as WebDataset
requires: a key that reappears after another key, or repeats an extension it already has, starts
a separate sample. Directory entries, links and other non-regular members, and members whose
basename has no extension or starts with ``"."``, are skipped.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from anyssl.shards.spec import ShardError

__all__ = ["BLOCK", "SampleRef", "ShardIndex", "index_shard", "split_name"]

#: The tar block size: headers and member data start at multiples of it.
BLOCK = 512


@dataclass(frozen=True)
class SampleRef:
    """One sample inside a shard: its key and, per extension, its member's ``(data offset,
    size)`` in bytes from the start of the tar file."""

    key: str
    members: dict[str, tuple[int, int]]


@dataclass(frozen=True)
class ShardIndex:
    """The samples of one shard in tar order. ``truncated`` is True when the scan stopped at a
    corrupt or short header, or at a member whose data runs past the end of the file, instead of
    the end-of-archive (zero) block: then only the samples surely whole before it are listed."""

    path: Path
    samples: list[SampleRef]
    truncated: bool


def split_name(name: str) -> tuple[str, str] | None:
    """``(key, extension)`` of a member path, or None when its basename has no extension (or no
    stem before the first ``"."``): WebDataset's ``base_plus_ext``, extension lowercased."""
    folder, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    if not stem or not dot or not ext:
        return None
    return (f"{folder}/{stem}" if folder else stem), ext.lower()


def _group(members: list[tarfile.TarInfo], size: int, clean_end: bool
           ) -> tuple[list[SampleRef], bool]:
    """Adjacent members of one key -> samples, and whether the shard is truncated.

    The scan is cut at the first member whose data runs past ``size`` bytes, or (not
    ``clean_end``) after the last header read; the sample open at the cut is kept only when the
    next member is known to start another sample, since its remaining members may be lost."""
    samples: list[SampleRef] = []
    key, current = "", dict[str, tuple[int, int]]()
    for m in members:
        named = split_name(m.name) if m.isreg() else None
        if m.offset_data + m.size > size:
            if current and named is not None and (named[0] != key or named[1] in current):
                samples.append(SampleRef(key, current))
            return samples, True
        if named is None:
            continue
        k, ext = named
        if current and (k != key or ext in current):
            samples.append(SampleRef(key, current))
            current = {}
        key, current[ext] = k, (m.offset_data, m.size)
    if current and clean_end:
        samples.append(SampleRef(key, current))
    return samples, not clean_end


def _ends_cleanly(path: Path, offset: int) -> bool:
    """Whether the block where the header scan stopped is the end-of-archive zero block."""
    with open(path, "rb") as f:
        f.seek(offset)
        block = f.read(BLOCK)
    return len(block) == BLOCK and not any(block)


def index_shard(path: Path) -> ShardIndex:
    """Index one shard from its headers (``tarfile`` seeks over member data, reading none).

    A corrupt or short header, or a member whose data runs past the end of the file, ends the
    scan: the samples surely whole before it are returned with ``truncated=True`` (the sample
    open at a bad header is dropped: its other members may have followed). A file that cannot be
    opened at all raises ``ShardError`` naming it."""
    path = Path(path)
    try:
        size = os.path.getsize(path)
        tar = tarfile.open(path, mode="r:")  # noqa: SIM115 (closed below)
    except tarfile.ReadError:  # the first header is already bad (or the file is empty)
        return ShardIndex(path, [], True)
    except OSError as e:
        raise ShardError(f"shard {path}: cannot be read ({e})") from e
    members: list[tarfile.TarInfo] = []
    with tar:
        try:
            while (m := tar.next()) is not None:  # one header at a time; a bad one ends it
                members.append(m)
            stop = tar.offset  # where the header that ended the scan starts
        except tarfile.ReadError:  # the previous member's data runs past the end of the file
            stop = size
    samples, truncated = _group(members, size, _ends_cleanly(path, stop))
    return ShardIndex(path, samples, truncated)
