"""What the header check of a list of image files found, kept across runs so that a big folder
is checked once, not at every start.

One compact JSON file per list, ``$ANYSSL_CACHE/scans/<hash>.json`` (``~/.cache/anyssl/scans/``
when ``ANYSSL_CACHE`` is unset), named by a hash of the deepest folder holding every file of the
list: never inside the user's data folder. Per file it keeps the size and ``mtime_ns`` the file
had when its header was read, and the ``Header`` found (``scan_headers.read_header``):
``[width, height]``, so that ``min_size`` and Pillow's pixel limit are applied again at every
run; ``[pixels]`` of a decompression bomb; or the message of a file that cannot be read. A file
whose size or mtime changed is read again. Layout, one column per field and folder::

    {"format": "anyssl-scan/1", "root": "/data/imagenet/train",
     "dirs": {"n01440764": [[names], [sizes], [mtime_ns], [headers]], ...}}

Writes go to a temporary file renamed over the old one (``os.replace``), so a reader sees a whole
file or none. Entries of files the list does not hold are kept while the file exists (the train
and test splits of one folder share a cache file) and dropped once it is gone. A file that cannot
be parsed, or holds another format or root, is ignored and rewritten; a cache folder that cannot
be written means no cache (logged at debug level, and said in ``ScanStats.note()``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CACHE_MIN_FILES", "FORMAT", "NOTE_MIN_SECONDS", "Header", "Key", "ScanCache",
           "ScanStats", "cache_dir"]

log = logging.getLogger(__name__)
FORMAT = "anyssl-scan/1"
#: Lists shorter than this are not cached unless asked (``cache=True``): reading their headers
#: takes well under a second, and tiny or temporary folders stay out of the cache folder.
CACHE_MIN_FILES = 2000
#: ``[width, height]``, ``[pixels]`` of a decompression bomb, or an error message in which
#: ``"\0"`` stands for the file's name.
Header = list[int] | str
#: A file's ``(st_size, st_mtime_ns)``: its header is read again when this changes.
Key = tuple[int, int]
_Entry = tuple[int, int, Header]
#: A check that took at least this long gets a note (``ScanStats.note``).
NOTE_MIN_SECONDS = 1.0


def cache_dir() -> Path:
    """``$ANYSSL_CACHE/scans`` when ``ANYSSL_CACHE`` is set, else ``~/.cache/anyssl/scans``."""
    base = os.environ.get("ANYSSL_CACHE")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "anyssl") / "scans"


def usable(header: Any, limit: int | None) -> bool:
    """Whether a cached header gives today's verdict: well formed, and a bomb's ``[pixels]``
    is still over the pixel ``limit`` (if the limit was raised, the size must be read again)."""
    if type(header) is not list:
        return isinstance(header, str)
    if len(header) == 2:
        return type(header[0]) is int and type(header[1]) is int
    return len(header) == 1 and type(header[0]) is int and limit is not None and header[0] > limit


def _short(path: Path) -> str:
    """``path`` with the home folder written ``~``."""
    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home):] if home != os.sep and text.startswith(home + os.sep) else text


@dataclass
class ScanStats:
    """What one ``probe_files`` call did, for the line a dataset adds to its notes (``note``)."""

    files: int = 0  # in the list
    cached: int = 0  # verdicts taken from the cache file
    read: int = 0  # headers read this run
    processes: int = 1  # that read them
    seconds: float = 0.0  # the whole check: cache, reads and verdicts
    cache_file: Path | None = None  # None: not cached (cache=False, or a short list)
    written: bool = False  # the cache file was (re)written
    cache_error: str | None = None  # why it could not be written

    def note(self, min_seconds: float = NOTE_MIN_SECONDS) -> str | None:
        """One line on the check when it took at least ``min_seconds``, else None: "checked
        1,281,167 image headers with 2 processes in 24.1 s; cached in
        ~/.cache/anyssl/scans/<hash>.json, so the next run reads the cache"."""
        if self.seconds < min_seconds:
            return None
        how = f"with {self.processes} processes" if self.processes > 1 else "in one process"
        where = f" {_short(self.cache_file)}" if self.cache_file else ""
        if not self.read:
            return (f"took the header checks of {self.cached:,} images from the cache{where} "
                    f"in {self.seconds:.1f} s")
        text = f"checked {self.read:,} image headers {how}"
        if self.cached:
            text += f" and took {self.cached:,} from the cache"
        text += f" in {self.seconds:.1f} s"
        if self.written:
            text += f"; cached in{where}, so the next run reads the cache"
        elif self.cache_error:
            text += (f"; could not write the cache{where} ({self.cache_error}): set "
                     "ANYSSL_CACHE to a writable folder to skip this check next time")
        return text


class _Folder:
    """One folder's columns as read from the cache file, with ``index``: name -> row."""

    def __init__(self, names: list[str], sizes: list[int], mtimes: list[int],
                 headers: list[Any]) -> None:
        if not len(names) == len(sizes) == len(mtimes) == len(headers):
            raise ValueError("columns of different lengths")
        self.index = dict(zip(names, range(len(names)), strict=True))
        self.sizes, self.mtimes, self.headers = sizes, mtimes, headers

    def entries(self) -> dict[str, _Entry]:
        return {n: (self.sizes[k], self.mtimes[k], self.headers[k]) for n, k in self.index.items()}


class ScanCache:
    """The cache file of one list of files: ``lookup`` the headers still valid, then ``save``
    the ones read this run (see the module docstring)."""

    def __init__(self, files: Sequence[str]) -> None:
        self.wanted: dict[str, dict[str, int]] = {}  # absolute folder -> name -> index in files
        folders: dict[str, dict[str, int]] = {}  # the same by folder as written in files
        for i, f in enumerate(files):
            folder, sep, name = f.rpartition(os.sep)  # os.path.split, 10x faster
            names = folders.get(folder)
            if names is None:
                absolute = os.path.abspath(folder or sep or os.curdir)  # "/x.png": the root
                names = folders[folder] = self.wanted.setdefault(absolute, {})
            names[name] = i
        self.size = len(files)
        self.root = os.path.commonpath(sorted(self.wanted)) if self.wanted else os.sep
        digest = hashlib.sha256(self.root.encode("utf-8", "surrogateescape")).hexdigest()
        self.path = cache_dir() / f"{digest[:24]}.json"
        self.listed: set[str] = set()  # folders listed by lookup, relative to the root
        self.dirty = self.written = False  # dirty: the file needs rewriting
        self.old = self._load()

    def rel(self, folder: str) -> str:
        """``folder`` relative to the root ("" for the root itself)."""
        return folder[len(self.root):].lstrip(os.sep)

    def _load(self) -> dict[str, _Folder]:
        """The cache file's folders; {} when absent or not ours."""
        try:
            data = json.loads(self.path.read_bytes())
            if data["format"] != FORMAT or data["root"] != self.root:
                raise ValueError(f"format {data['format']!r}, root {data['root']!r}")
            return {rel: _Folder(*columns) for rel, columns in data["dirs"].items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as err:
            log.debug("ignoring the image-scan cache %s: %s", self.path, err)
            self.dirty = True  # rewrite it
            return {}

    def lookup(self, limit: int | None) -> list[Header | None]:
        """The cached header of each file whose size and mtime are unchanged (None: read it),
        from one listing of each folder that has cache entries (``os.scandir``; its ``stat``
        is free on Windows). Entries of files no longer listed are dropped. ``limit``: today's
        pixel limit (``usable``)."""
        headers: list[Header | None] = [None] * self.size
        for folder, names in self.wanted.items():
            rel = self.rel(folder)
            old = self.old.get(rel)
            if old is None:
                continue
            try:
                listing = {e.name: e for e in os.scandir(folder)}
            except OSError:
                continue
            self.listed.add(rel)
            for gone in old.index.keys() - listing.keys():
                del old.index[gone]
                self.dirty = True
            for name, i in names.items():
                k, e = old.index.get(name), listing.get(name)
                if k is None or e is None:
                    continue
                try:
                    st = e.stat()
                except OSError:
                    continue
                if old.sizes[k] == st.st_size and old.mtimes[k] == st.st_mtime_ns \
                        and usable(old.headers[k], limit):
                    headers[i] = old.headers[k]
        return headers

    def save(self, fresh: dict[int, tuple[Header, Key]]) -> str | None:
        """Merge the headers read this run (by file index, each with the key read with it)
        into the file and write it atomically, when something changed (then ``written``).
        Returns why it could not be written, or None."""
        if not fresh and not self.dirty:
            return None
        dirs = {rel: folder.entries() for rel, folder in self.old.items()
                if rel in self.listed or os.path.isdir(os.path.join(self.root, rel))}
        for folder, names in self.wanted.items():
            entries = dirs.setdefault(self.rel(folder), {})
            for name, i in names.items():
                if i in fresh:
                    header, key = fresh[i]
                    entries[name] = (*key, header)
        columns = {rel: [list(entries), *map(list, zip(*entries.values(), strict=True))]
                   for rel, entries in dirs.items() if entries}
        text = json.dumps({"format": FORMAT, "root": self.root, "dirs": columns},
                          separators=(",", ":"))
        try:
            self._write(text)
        except OSError as err:
            log.debug("cannot write the image-scan cache %s: %s", self.path, err)
            return f"{type(err).__name__}: {err}"
        self.written = True
        return None

    def _write(self, text: str) -> None:
        """``text`` to the cache file: a temporary file in the same folder, renamed over it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.stem, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
