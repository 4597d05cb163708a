"""Time-series datasets: ``SeriesDataset`` (series held in memory) and the registered factories
``gunpoint`` (shipped; the default), ``path`` (files on disk) and ``ucr`` (a UCR/UEA archive
name, read from disk or downloaded once).

Every factory is called as ``f(split="train"|"test", seed=0, **kw)`` and returns a map-style
dataset of ``(float32 C x T tensor, int label)``, NaN-padded to one length ``T`` shared by both
splits (label -1 when unlabeled), with ``encoder_kwargs`` (``in_channels``, ``length``),
``num_classes``, ``classes``, ``targets`` and ``suggested_epochs``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from anyssl.modalities.timeseries.io import (
    MAX_LENGTH,
    SUFFIXES,
    SeriesArrays,
    SeriesFileError,
    align_splits,
    encode_labels,
    read_series,
    read_train_test,
)
from anyssl.modalities.timeseries.io_text import read_tsv
from anyssl.registry import DATASETS
from anyssl.splits import check_split, split_indices

__all__ = [
    "DATA_DIR", "NORMALIZE_CHOICES", "UCR_URL", "DatasetDownloadError", "SeriesDataset",
    "check_split", "download_ucr", "find_ucr", "from_splits", "gunpoint", "path",
    "resolve_normalize", "split_indices", "ts2vec_epochs", "ucr", "ucr_cache_dir", "znormalize",
]

log = logging.getLogger(__name__)
DATA_DIR = Path(__file__).parent / "data"
NORMALIZE_CHOICES = ("zscore", "none")
#: aeon's download address of the UCR/UEA archives (one zip per dataset).
UCR_URL = "https://timeseriesclassification.com/aeon-toolkit/{name}.zip"


class DatasetDownloadError(ValueError):
    """A dataset that is neither on disk nor downloadable (no network, unknown name)."""


# ---- pure helpers ---------------------------------------------------------------------------
def resolve_normalize(normalize: str | bool) -> str:
    """``"zscore"`` or ``"none"`` (True / False map to them); anything else raises."""
    if isinstance(normalize, bool):
        return "zscore" if normalize else "none"
    if normalize not in NORMALIZE_CHOICES:
        raise ValueError(f"unknown normalize {normalize!r}; choose one of: "
                         f"{', '.join(NORMALIZE_CHOICES)} (or True / False)")
    return normalize


def znormalize(x: Tensor, chunk: int = 4096) -> Tensor:
    """Z-normalize each series and channel over its observed values (the UCR convention; mean
    and population std, NaN ignored and kept in place). A constant channel (std at most 1e-6
    of its largest magnitude) becomes 0, not NaN. Computed in float64, ``chunk`` series at once.

    Shape: ``N x C x T`` -> ``N x C x T`` (same dtype).
    """
    return torch.cat([_znormalize(part) for part in x.split(chunk)]) if len(x) else x.clone()


def _znormalize(x: Tensor) -> Tensor:
    x64 = x.double()
    obs = ~torch.isnan(x64)  # N x C x T
    n = obs.sum(-1, keepdim=True).clamp_min(1)  # N x C x 1
    mean = torch.where(obs, x64, 0.0).sum(-1, keepdim=True) / n
    centered = torch.where(obs, x64 - mean, 0.0)
    std = (centered.square().sum(-1, keepdim=True) / n).sqrt()  # N x C x 1
    scale = torch.where(obs, x64.abs(), 0.0).amax(-1, keepdim=True)
    const = std <= 1e-6 * scale
    z = torch.where(const, 0.0, centered / torch.where(const, 1.0, std))
    return torch.where(obs, z, torch.nan).to(x.dtype)


def ts2vec_epochs(n: int, channels: int, length: int, batch_size: int = 8) -> int:
    """TS2Vec's training budget (Yue et al. 2022, train.py: 200 iterations when the data holds
    at most 100,000 values, else 600, at batch size 8) in epochs of ``max(1, n // 8)`` steps."""
    iters = 200 if n * channels * length <= 100_000 else 600
    return math.ceil(iters / max(1, n // batch_size))


# ---- the dataset ----------------------------------------------------------------------------
class SeriesDataset(Dataset[tuple[Tensor, int]]):
    """Series held in memory as one float32 tensor, normalized once at construction.

    ``normalize``: ``"zscore"`` (per series and channel, see ``znormalize``) or ``"none"``.
    ``suggested_epochs`` follows TS2Vec's budget (``ts2vec_epochs``).

    Shape:
        X: ``N x C x T`` (NaN = missing / padding); items are ``(C x T float32, int label)``.
    """

    def __init__(self, X: np.ndarray | Tensor, y: Sequence[int] | np.ndarray | None = None,
                 classes: Sequence[str] | None = None, normalize: str | bool = "zscore") -> None:
        x = torch.as_tensor(X, dtype=torch.float32)
        if x.dim() != 3 or x.shape[0] == 0:
            raise ValueError(f"X must be a non-empty N x C x T array, got shape {tuple(x.shape)}")
        self.normalize = resolve_normalize(normalize)
        self.series = znormalize(x) if self.normalize == "zscore" else x
        n, c, t = x.shape
        self.targets: list[int] = [-1] * n if y is None else [int(v) for v in y]
        if len(self.targets) != n:
            raise ValueError(f"{n} series but {len(self.targets)} labels")
        self.classes = list(classes) if classes is not None else None
        labelled = any(v >= 0 for v in self.targets)
        k = len(self.classes) if self.classes else max(self.targets) + 1
        if labelled and not all(-1 <= v < k for v in self.targets):
            raise ValueError(f"labels must be -1 (unlabeled) or in 0..{k - 1}")
        self.num_classes: int | None = k if labelled else None
        self.encoder_kwargs = {"in_channels": int(c), "length": int(t)}
        self.suggested_epochs: int | None = ts2vec_epochs(n, c, t)

    def __len__(self) -> int:
        return int(self.series.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.series[index], self.targets[index]

    def subset(self, indices: Sequence[int] | np.ndarray) -> SeriesDataset:
        """The series at ``indices`` (same classes; not normalized again)."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        out = SeriesDataset(self.series[idx], [self.targets[int(i)] for i in idx], self.classes,
                            normalize="none")
        out.normalize = self.normalize
        return out


def from_splits(train: SeriesArrays, test: SeriesArrays, split: str,
                normalize: str | bool = "zscore") -> SeriesDataset:
    """The ``split`` of a TRAIN/TEST pair, with one class list and one length for both."""
    s = check_split(split)
    train, test = align_splits(train, test)
    arrays = train if s == "train" else test
    if arrays.targets is not None:
        log.warning("%s holds regression targets; they are ignored (series unlabeled)",
                    arrays.source)
    if train.labels is None or test.labels is None:
        return SeriesDataset(arrays.X, None, None, normalize)
    y_train, y_test, classes = encode_labels(train.labels, test.labels,
                                             (train.source, test.source))
    return SeriesDataset(arrays.X, y_train if s == "train" else y_test, classes, normalize)


# ---- registered factories -------------------------------------------------------------------
@DATASETS.register("gunpoint", scope="timeseries")
def gunpoint(split: str = "train", seed: int = 0,
             normalize: str | bool = "zscore") -> SeriesDataset:
    """GunPoint (shipped): 50 train / 150 test univariate series of length 150, 2 classes.

    Ratanamahatana & Keogh 2005, from the UCR archive (Dau et al. 2018); the archive's split.
    """
    return from_splits(read_tsv(DATA_DIR / "GunPoint_TRAIN.tsv"),
                       read_tsv(DATA_DIR / "GunPoint_TEST.tsv"), split, normalize)


@DATASETS.register("path", scope="timeseries")
def path(root: str | Path, split: str = "train", seed: int = 0,
         normalize: str | bool = "zscore", test_fraction: float = 0.2, split_seed: int = 0,
         label_column: str | int | None = "auto", max_length: int = MAX_LENGTH) -> SeriesDataset:
    """Series from disk: a folder with NAME_TRAIN / NAME_TEST files, or one series file.

    A folder holds ``NAME_TRAIN`` / ``NAME_TEST`` ``.ts`` or ``.tsv`` files (also
    ``train.npz``-style names or ``X_train.npy``); a file is ``.ts .tsv .txt .csv .npy .npz``.

    One file has no test split, so it is split: a stratified ``test_fraction`` of each class
    goes to test, seeded by ``split_seed`` (fixed, not the training ``seed``, so train and test
    never overlap and every run evaluates on the same series), as the image ``path`` dataset
    does. ``label_column`` picks the CSV label column (see ``read_csv``). A series longer than
    ``max_length`` steps is refused (see ``io``).
    """
    s = check_split(split)
    p = Path(str(root).removeprefix("file:")).expanduser()
    if not p.exists():
        raise SeriesFileError(f"data path {p} does not exist; give a series file "
                              f"({' '.join(SUFFIXES)}) or a folder with NAME_TRAIN.ts and "
                              "NAME_TEST.ts")
    if p.is_dir():
        train, test = read_train_test(p, max_length)
        return from_splits(train, test, s, normalize)
    extra = {"label_column": label_column} if p.suffix.lower() == ".csv" else {}
    arrays = read_series(p, max_length=max_length, **extra)
    y, classes = None, None
    if arrays.labels is not None:
        y, _, classes = encode_labels(arrays.labels, (), (str(p), str(p)))
    full = SeriesDataset(arrays.X, y, classes, normalize)
    train_idx, test_idx = split_indices(full.targets, test_fraction, split_seed)
    if len(test_idx) == 0 or len(train_idx) == 0:
        raise SeriesFileError(f"{p}: {len(full)} series are too few to split into train and "
                              "test; give a folder with NAME_TRAIN and NAME_TEST files")
    return full.subset(train_idx if s == "train" else test_idx)


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


@DATASETS.register("ucr", scope="timeseries")
def ucr(name: str, split: str = "train", seed: int = 0, root: str | Path | None = None,
        normalize: str | bool = "zscore", max_length: int = MAX_LENGTH) -> SeriesDataset:
    """A UCR/UEA archive dataset by name (ucr:ArrowHead), read from disk or downloaded once.

    The UCR (Dau et al. 2018) and UEA (Bagnall et al. 2018) archives: read from ``root`` (or
    ``root/NAME``), ``$ANYSSL_DATA/ucr/NAME`` or ``~/.cache/anyssl/ucr/NAME``, else downloaded
    from aeon's address (``UCR_URL``) into ``ucr_cache_dir()``.
    """
    s = check_split(split)
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", name or ""):
        raise ValueError(f"bad UCR/UEA dataset name {name!r}; give a name like ArrowHead")
    files = find_ucr(name, root) or download_ucr(name)
    return from_splits(read_series(files[0], max_length=max_length),
                       read_series(files[1], max_length=max_length), s, normalize)
