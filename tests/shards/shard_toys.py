"""Small WebDataset tars for the shard tests, written with plain ``tarfile``."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

Sample = tuple[str, dict[str, bytes]]


def payload(key: str, ext: str) -> bytes:
    """Distinct bytes per member, of varying length (some over one 512-byte block)."""
    return (f"{key}|{ext}|" * (1 + sum(map(ord, key + ext)) % 90)).encode()


def samples(first: int, count: int, exts: tuple[str, ...] = ("jpg", "cls")) -> list[Sample]:
    return [(f"s{i:05d}", {e: payload(f"s{i:05d}", e) for e in exts})
            for i in range(first, first + count)]


def write_tar(path: Path, items: list[Sample], extra: list[tarfile.TarInfo] = ()) -> Path:
    """A tar of ``items`` (members ``key.ext``), after the ``extra`` (data-less) entries."""
    with tarfile.open(path, "w") as tar:
        for info in extra:
            tar.addfile(info)
        for key, members in items:
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def write_shards(folder: Path, sizes: list[int], prefix: str = "train") -> list[Path]:
    """Shards of ``sizes`` samples, numbered keys running on across shards."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, first = [], 0
    for s, n in enumerate(sizes):
        paths.append(write_tar(folder / f"{prefix}-{s:06d}.tar", samples(first, n)))
        first += n
    return paths
