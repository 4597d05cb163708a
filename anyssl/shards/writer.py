"""Writing WebDataset tars with a manifest, resumably: a re-run after an interruption skips the
finished shards and writes byte-identical ones for the rest."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from types import TracebackType
from typing import Any

from anyssl.shards.index import split_name
from anyssl.shards.manifest import FORMAT, read_manifest, write_manifest
from anyssl.shards.spec import ShardError

__all__ = ["ShardWriter"]


def _member(name: str, size: int) -> tarfile.TarInfo:
    """A header with fixed metadata (mtime 0, mode 0644, no owner), so the same samples always
    give the same bytes."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class ShardWriter:
    """Writes ``out/{prefix}-{shard:06d}.tar``, ``shard_size`` samples each (source position
    ``k`` goes to shard ``k // shard_size``), a sample's members in extension order. Each shard
    is written to ``{name}.tmp`` and ``os.replace``d when full, then the manifest is rewritten,
    so the folder only ever holds whole shards and a manifest listing them.

    ``resume=True``: a shard the manifest lists, with its file of the listed size, is done
    (``done(shard)``; ``write`` ignores its samples), so a re-run reads the source in the same
    order and skips what is finished. A manifest written with another ``shard_size``,
    ``prefix`` or ``meta`` raises ``ShardError``. ``resume=False`` rewrites everything.
    Use as a context manager, or call ``close()``: it finishes the last shard.
    """

    def __init__(self, out: Path, shard_size: int = 10000, prefix: str = "shard",
                 meta: dict[str, Any] | None = None, resume: bool = True) -> None:
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        self.out, self.shard_size, self.prefix = Path(out), shard_size, prefix
        self.out.mkdir(parents=True, exist_ok=True)
        self.manifest: dict[str, Any] = {
            "format": FORMAT, "total": 0, "shards": [], "shard_size": shard_size,
            "prefix": prefix, "complete": False, "meta": dict(meta or {})}
        old = read_manifest(self.out)
        self._stale: list[str] = []  # resume=False: the old shards not written again
        if old is not None and resume:
            self._check_same(old)
            self.manifest["shards"] = [s for s in old["shards"] if self._intact(s)]
        elif old is not None:
            self._stale = [str(s.get("name")) for s in old["shards"] if isinstance(s, dict)]
        self._done = {self._number(s["name"]) for s in self.manifest["shards"]}
        self._shard, self._last = -1, -1
        self._tar: tarfile.TarFile | None = None
        self._count = 0

    def _check_same(self, old: dict[str, Any]) -> None:
        for field in ("shard_size", "prefix", "meta"):
            if old.get(field) != self.manifest[field]:
                raise ShardError(
                    f"{self.out} holds shards written with {field}={old.get(field)!r}, not "
                    f"{self.manifest[field]!r}; write to a new folder or start over (resume=False)")

    def _intact(self, entry: dict[str, Any]) -> bool:
        path = self.out / str(entry.get("name"))
        return path.is_file() and path.stat().st_size == entry.get("bytes")

    def _name(self, shard: int) -> str:
        return f"{self.prefix}-{shard:06d}.tar"

    def _number(self, name: str) -> int:
        return int(name[len(self.prefix) + 1: -len(".tar")])

    def done(self, shard: int) -> bool:
        """Whether shard number ``shard`` is already written (its samples are skipped)."""
        return shard in self._done

    def write(self, index: int, key: str, members: dict[str, bytes]) -> None:
        """Add the sample at source position ``index`` (increasing from call to call) under
        ``key`` (a path whose basename has no ``"."``), one member per extension."""
        if index <= self._last:
            raise ValueError(f"sample positions must increase: {index} after {self._last}")
        if not members or split_name(f"{key}.x") != (key, "x"):
            raise ValueError(f"sample {index}: need a key without '.' in its basename and at "
                             f"least one member, got key {key!r} with {sorted(members)}")
        self._last, shard = index, index // self.shard_size
        if self.done(shard):
            return
        if shard != self._shard:
            self._finish()
            self._open(shard)
        assert self._tar is not None
        for ext in sorted(members):
            if not ext or "/" in ext:
                raise ValueError(f"sample {key!r}: bad extension {ext!r}")
            data = members[ext]
            self._tar.addfile(_member(f"{key}.{ext}", len(data)), io.BytesIO(data))
        self._count += 1

    def _tmp(self, shard: int) -> Path:
        return self.out / f"{self._name(shard)}.tmp"

    def _open(self, shard: int) -> None:
        self._shard, self._count = shard, 0
        self._tar = tarfile.open(self._tmp(shard), mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115

    def _finish(self) -> None:
        """Close the open shard, move it into place and list it in the manifest."""
        if self._tar is None:
            return
        self._tar.close()
        tmp, name = self._tmp(self._shard), self._name(self._shard)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())  # the data is on disk before the manifest says so
        os.replace(tmp, self.out / name)
        entry = {"name": name, "count": self._count, "bytes": (self.out / name).stat().st_size}
        shards = [s for s in self.manifest["shards"] if s["name"] != name] + [entry]
        self.manifest["shards"] = sorted(shards, key=lambda s: s["name"])
        self.manifest["total"] = sum(s["count"] for s in shards)
        self._done.add(self._shard)
        self._tar = None
        write_manifest(self.out, self.manifest)

    def close(self) -> dict[str, Any]:
        """Finish the last shard, mark the manifest complete and return it."""
        self._finish()
        written = {s["name"] for s in self.manifest["shards"]}
        for name in self._stale:
            if name not in written and "/" not in name:
                (self.out / name).unlink(missing_ok=True)
        self.manifest["complete"] = True
        write_manifest(self.out, self.manifest)
        return self.manifest

    def abort(self) -> None:
        """Drop the shard being written (its ``.tmp``); the finished ones stay."""
        if self._tar is not None:
            self._tar.close()
            self._tmp(self._shard).unlink(missing_ok=True)
            self._tar = None

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()
