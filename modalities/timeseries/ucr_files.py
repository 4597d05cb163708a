"""UCR/UEA archive files: where a data set's ``NAME_TRAIN`` / ``NAME_TEST`` files are on disk
(``find_ucr``) and the one-time download of aeon's zip into a cache (``download_ucr``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

__all__ = ["UCR_URL", "DatasetDownloadError", "download_ucr", "find_ucr", "ucr_cache_dir"]

#: aeon's download address of the UCR/UEA archives (one zip per dataset).
UCR_URL = "https://timeseriesclassification.com/aeon-toolkit/{name}.zip"


class DatasetDownloadError(ValueError):
    """A dataset that is neither on disk nor downloadable (no network, unknown name)."""


def ucr_cache_dir() -> Path:
    """Where downloads go: ``$ANYSSL_DATA/ucr`` when set, else ``~/.cache/anyssl/ucr``."""
    env = os.environ.get("ANYSSL_DATA")
    return Path(env).expanduser() / "ucr" if env else Path.home() / ".cache" / "anyssl" / "ucr"


def _ucr_files(folder: Path, name: str) -> tuple[Path, Path] | None:
    """``NAME_TRAIN`` and ``NAME_TEST`` in ``folder`` (``.ts`` preferred over ``.tsv``)."""
    found = [next((f for ext in (".ts", ".tsv")
                   if (f := folder / f"{name}_{tag}{ext}").is_file()), None)
             for tag in ("TRAIN", "TEST")]
    return (found[0], found[1]) if found[0] and found[1] else None


def find_ucr(name: str, root: str | Path | None = None) -> tuple[Path, Path] | None:
    """The TRAIN/TEST files of ``name`` in ``root`` (or ``root/NAME``), then
    ``$ANYSSL_DATA/ucr/NAME``, then ``~/.cache/anyssl/ucr/NAME``; None when absent."""
    folders: list[Path] = []
    if root is not None:
        r = Path(root).expanduser()
        folders += [r / name, r]
    if os.environ.get("ANYSSL_DATA"):
        folders.append(Path(os.environ["ANYSSL_DATA"]).expanduser() / "ucr" / name)
    folders.append(Path.home() / ".cache" / "anyssl" / "ucr" / name)
    return next((files for d in folders if (files := _ucr_files(d, name))), None)


def download_ucr(name: str, cache: Path | None = None) -> tuple[Path, Path]:
    """Download aeon's zip of ``name`` (``UCR_URL``) and extract it to ``cache/NAME``
    atomically (into a temporary folder, then renamed). Returns its TRAIN/TEST files."""
    cache = ucr_cache_dir() if cache is None else cache
    final, url = cache / name, UCR_URL.format(name=name)
    hint = (f"point at local files: --data /path/to/{name} (a folder with {name}_TRAIN.ts and "
            f"{name}_TEST.ts) or put that folder at {final}")
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache))
    except OSError as err:
        raise DatasetDownloadError(f"cannot write to {cache} ({err}); {hint}") from None
    try:
        archive, out = tmp / f"{name}.zip", tmp / "extracted"
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, open(archive, "wb") as f:
                shutil.copyfileobj(resp, f)
        except OSError as err:  # URLError, HTTPError and timeouts are OSErrors
            reason = str(getattr(err, "reason", err)).replace("\n", " ")
            raise DatasetDownloadError(f"could not download UCR/UEA dataset {name!r} from "
                                       f"{url} ({reason}); {hint}") from None
        try:
            with zipfile.ZipFile(archive) as z:
                z.extractall(out)
        except (zipfile.BadZipFile, OSError) as err:
            raise DatasetDownloadError(f"{url} is not a readable zip ({err}); {hint}") from None
        found = next((d for d in [out, *sorted(out.rglob("*"))]
                      if d.is_dir() and _ucr_files(d, name)), None)
        if found is None:
            raise DatasetDownloadError(f"{url} holds no {name}_TRAIN.ts and {name}_TEST.ts; "
                                       f"{hint}")
        try:
            os.replace(found, final)
        except OSError:
            if _ucr_files(final, name) is None:  # not just a concurrent download that won
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    files = _ucr_files(final, name)
    if files is None:
        raise DatasetDownloadError(f"{final} holds no {name}_TRAIN/_TEST files; {hint}")
    return files
