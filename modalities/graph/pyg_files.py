"""Finding, staging and downloading the raw files PyG's ``TUDataset`` and ``Planetoid`` read.

PyG reads ``ROOT/NAME/raw/`` and writes ``ROOT/NAME/processed/`` next to it. We never write
into a user's folder: raw files found elsewhere are copied ("staged"; a ``.txt`` copy gets the
newline its last line lacks, which PyG would otherwise drop with that line) into
``cache_dir(family)/.staged/<hash>/NAME/raw`` (the hash covers the folder's path and its files'
sizes and times, so edited files are processed again) and PyG processes them there; files already
in the cache (``cache_dir(family)/NAME/raw``, e.g. a download) are processed in place. The cache
is ``$ANYSSL_DATA/<family>`` when set, else ``~/.cache/anyssl/<family>``; when it cannot be
written, a temporary folder is used (processed again every run).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anyssl.modalities.graph.data_checks import GraphDataError

__all__ = ["DatasetDownloadError", "RawFolderError", "cache_dir", "download", "find_raw",
           "planetoid_files", "search_folders", "stage", "tu_files"]

log = logging.getLogger(__name__)
TU_NEEDS = ("A", "graph_indicator", "graph_labels")
TU_OPTIONAL = ("node_labels", "node_attributes", "edge_labels", "edge_attributes")
PLANETOID_NEEDS = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


class DatasetDownloadError(GraphDataError):
    """A dataset neither on disk nor downloadable (no network, unknown name)."""


class RawFolderError(GraphDataError):
    """A folder holding some of a dataset's raw files but not all the required ones."""


def cache_dir(family: str) -> Path:
    """``$ANYSSL_DATA/<family>`` when set, else ``~/.cache/anyssl/<family>``."""
    env = os.environ.get("ANYSSL_DATA")
    return Path(env).expanduser() / family if env else Path.home() / ".cache" / "anyssl" / family


def search_folders(family: str, name: str, root: str | Path | None) -> list[Path]:
    """Where ``name``'s raw files may be: ``root/NAME/raw``, ``root/NAME``, ``root/raw``,
    ``root``, then ``$ANYSSL_DATA/<family>/NAME/raw`` and ``~/.cache/anyssl/<family>/NAME/raw``."""
    out: list[Path] = []
    if root is not None:
        r = Path(root).expanduser()
        out += [r / name / "raw", r / name, r / "raw", r]
    if os.environ.get("ANYSSL_DATA"):
        out.append(Path(os.environ["ANYSSL_DATA"]).expanduser() / family / name / "raw")
    out.append(Path.home() / ".cache" / "anyssl" / family / name / "raw")
    return out


def tu_files(name: str) -> tuple[list[str], str, str]:
    """(required files, glob of every file of the dataset, help) of a TU raw folder."""
    need = [f"{name}_{k}.txt" for k in TU_NEEDS]
    help_ = (f"a TU folder needs {', '.join(need)} (optional: "
             f"{', '.join(f'{name}_{k}.txt' for k in TU_OPTIONAL)})")
    return need, f"{name}_*.txt", help_


def planetoid_files(name: str) -> tuple[list[str], str, str]:
    """(required files, glob of every file of the dataset, help) of a Planetoid raw folder."""
    need = [f"ind.{name.lower()}.{k}" for k in PLANETOID_NEEDS]
    return need, f"ind.{name.lower()}.*", f"a Planetoid folder needs {', '.join(need)}"


def find_raw(folders: list[Path], files: tuple[list[str], str, str]) -> Path | None:
    """The first folder holding any required file; it must hold them all, else
    ``RawFolderError`` names the missing one. None when no folder holds any."""
    need, _, help_ = files
    for folder in folders:
        present = [f for f in need if (folder / f).is_file()]
        if not present:
            continue
        missing = [f for f in need if f not in present]
        if missing:
            raise RawFolderError(f"{folder} has no {missing[0]}; {help_}")
        return folder
    return None


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def stage(raw: Path, name: str, family: str, files: tuple[list[str], str, str]) -> Path:
    """A root that PyG may process ``name`` in: ``raw``'s own root when ``raw`` is the cache's
    writable ``NAME/raw``; else a staged copy of the dataset's files (see the module)."""
    raw = raw.resolve()
    if raw.name == "raw" and raw.parent.name == name and raw.parent.parent in {
            p.expanduser().resolve() for p in _cache_roots(family)} and _writable(raw.parent):
        return raw.parent.parent
    names = sorted(f.name for f in raw.glob(files[1]) if f.is_file())
    stat = [(f, (raw / f).stat().st_size, (raw / f).stat().st_mtime_ns) for f in names]
    key = hashlib.sha1(repr((str(raw), stat)).encode()).hexdigest()[:16]
    base = cache_dir(family) / ".staged"
    if not _writable(base):
        base = Path(tempfile.mkdtemp(prefix=f"anyssl-{family}-"))
        log.info("cache %s is not writable; processing %s in %s", cache_dir(family), name, base)
    final = base / key / name / "raw"
    if not all((final / f).is_file() for f in names):
        shutil.rmtree(final, ignore_errors=True)  # a copy left incomplete by a crash
        tmp = Path(tempfile.mkdtemp(prefix=".copy-", dir=base))
        try:
            for f in names:
                shutil.copy2(raw / f, tmp / f)
                _end_with_newline(tmp / f)
            final.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):  # a concurrent run may have staged it first
                os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final.parent.parent


def _end_with_newline(file: Path) -> None:
    """Add the newline a ``.txt`` copy lacks at its end: PyG's ``read_txt_array`` drops a last
    line without one."""
    if file.suffix == ".txt" and file.stat().st_size:
        with open(file, "rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")


def _cache_roots(family: str) -> list[Path]:
    roots = [Path.home() / ".cache" / "anyssl" / family]
    if os.environ.get("ANYSSL_DATA"):
        roots.append(Path(os.environ["ANYSSL_DATA"]) / family)
    return roots


def download(build: Callable[[str], Any], family: str, name: str, url: str, hint: str,
             files: tuple[list[str], str, str]) -> Any:
    """``build(cache_root)`` (a PyG dataset constructor, which downloads its raw files into
    ``cache_root/NAME/raw`` when they are absent), turning a failed download into a one-line
    ``DatasetDownloadError`` (an error after the files arrived is raised as it is)."""
    cache = cache_dir(family)
    folder = cache / name
    existed = folder.exists()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DatasetDownloadError(f"cannot write to {cache} ({err}); {hint}") from None
    try:
        return build(str(cache))
    except Exception as err:  # fsspec/aiohttp/urllib errors have no common base
        if all((folder / "raw" / f).is_file() for f in files[0]):
            raise
        if not existed:
            shutil.rmtree(folder, ignore_errors=True)
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise DatasetDownloadError(f"could not download {family} dataset {name!r} from {url} "
                                   f"({reason}); {hint}") from None
