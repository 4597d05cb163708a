"""Time-series datasets: ``SeriesDataset`` (series held in memory) and the registered factories
``gunpoint`` (shipped; the default), ``path`` (files on disk) and ``ucr`` (a UCR/UEA archive
name, read from disk or downloaded once: ``ucr_files.py``). Normalization follows TS2Vec's
loaders by default (``normalize.py``); the training split carries TS2Vec's pre-training
sections of long or variable-length series (``sections.py``) as ``pretrain_set``.

Every factory is called as ``f(split="train"|"test", seed=0, **kw)`` and returns a map-style
dataset of ``(float32 C x T tensor, int label)``, NaN-padded to one length ``T`` shared by both
splits (label -1 when unlabeled), with ``encoder_kwargs`` (``in_channels``, ``length``),
``num_classes``, ``classes``, ``targets`` and ``suggested_epochs``.
"""

from __future__ import annotations

import logging
import math
import re
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
from anyssl.modalities.timeseries.normalize import (
    NORMALIZE_CHOICES,
    apply_stats,
    fit_stats,
    resolve_normalize,
    ts2vec_mode,
    znormalize,
)
from anyssl.modalities.timeseries.sections import MAX_TRAIN_LENGTH, training_sections
from anyssl.modalities.timeseries.ucr_files import (
    UCR_URL,
    DatasetDownloadError,
    download_ucr,
    find_ucr,
    ucr_cache_dir,
)
from anyssl.registry import DATASETS
from anyssl.splits import check_split, split_indices

__all__ = [
    "DATA_DIR", "MAX_TRAIN_LENGTH", "NORMALIZE_CHOICES", "UCR_URL", "DatasetDownloadError",
    "SeriesDataset", "check_split", "choose_normalize", "download_ucr", "find_ucr",
    "from_splits", "gunpoint", "path", "resolve_normalize", "split_indices", "ts2vec_epochs",
    "ucr", "ucr_cache_dir", "znormalize",
]

log = logging.getLogger(__name__)
DATA_DIR = Path(__file__).parent / "data"


# ---- pure helpers ---------------------------------------------------------------------------
def ts2vec_epochs(n: int, channels: int, length: int, batch_size: int = 8,
                  n_train: int | None = None) -> int:
    """TS2Vec's training budget (Yue et al. 2022, ts2vec.py line 75: 200 iterations when the
    data holds at most 100,000 values, else 600, at batch size 8) in epochs of
    ``max(1, n_train // 8)`` steps; ``n_train`` (default ``n``) counts the series pre-training
    sees after ``training_sections`` (the budget is counted before the split, as in ``fit``)."""
    iters = 200 if n * channels * length <= 100_000 else 600
    return math.ceil(iters / max(1, (n if n_train is None else n_train) // batch_size))


def choose_normalize(normalize: str | bool | None, name: str | None,
                     channels: int) -> tuple[str, str]:
    """The mode to use and the note saying why: ``auto`` takes TS2Vec's choice for ``name``
    and ``channels`` (``normalize.ts2vec_mode``); any other mode is used as asked."""
    asked = resolve_normalize(normalize)
    auto, why = ts2vec_mode(name, channels)
    if asked == "auto":
        return auto, f"normalize={auto} (default, as TS2Vec): {why}"
    return asked, f"normalize={asked} (asked with -d normalize; TS2Vec would use {auto})"


# ---- the dataset ----------------------------------------------------------------------------
class SeriesDataset(Dataset[tuple[Tensor, int]]):
    """Series held in memory as one float32 tensor, normalized once at construction.

    ``normalize`` (see ``normalize.py``): ``"none"`` (default), ``"series"`` (``"zscore"``,
    per series and channel), ``"global"`` or ``"channel"`` with ``stats`` from the training
    split (fitted on ``X`` itself when not given), or ``"auto"`` (TS2Vec's choice by channel
    count). ``suggested_epochs`` follows TS2Vec's budget (``ts2vec_epochs``).
    ``pretrain_set``: what pre-training should iterate instead of this set (TS2Vec's sections,
    see ``set_pretraining``); None means this set itself. ``notes`` are printed at run start.

    Shape:
        X: ``N x C x T`` (NaN = missing / padding); items are ``(C x T float32, int label)``.
    """

    def __init__(self, X: np.ndarray | Tensor, y: Sequence[int] | np.ndarray | None = None,
                 classes: Sequence[str] | None = None, normalize: str | bool = "none",
                 stats: tuple[Tensor, Tensor] | None = None) -> None:
        x = torch.as_tensor(X, dtype=torch.float32)
        if x.dim() != 3 or x.shape[0] == 0:
            raise ValueError(f"X must be a non-empty N x C x T array, got shape {tuple(x.shape)}")
        n, c, t = x.shape
        mode = resolve_normalize(normalize)
        self.normalize = ts2vec_mode(None, c)[0] if mode == "auto" else mode
        self.stats = stats if stats is not None or self.normalize not in ("global", "channel") \
            else fit_stats(x, self.normalize)
        self.series = (znormalize(x) if self.normalize == "series" else
                       apply_stats(x, self.stats) if self.stats is not None else x)
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
        self.pretrain_set: SeriesDataset | None = None
        self.notes: list[str] = []

    def __len__(self) -> int:
        return int(self.series.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.series[index], self.targets[index]

    def subset(self, indices: Sequence[int] | np.ndarray) -> SeriesDataset:
        """The series at ``indices`` (same classes and notes; not normalized again)."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        out = SeriesDataset(self.series[idx], [self.targets[int(i)] for i in idx], self.classes,
                            normalize="none")
        out.normalize, out.stats, out.notes = self.normalize, self.stats, list(self.notes)
        return out

    def set_pretraining(self, max_train_length: int | None = MAX_TRAIN_LENGTH) -> None:
        """Give this (training) split TS2Vec's pre-training view: ``pretrain_set`` holds
        ``sections.training_sections`` of the series (unlabeled) when that changes them, and
        ``suggested_epochs`` counts steps over it. Evaluation still reads the whole series."""
        n, c, t = self.series.shape
        self.max_train_length = max_train_length  # TS2Vec's batch window (the views read it)
        cut = training_sections(self.series, max_train_length)
        if cut is self.series:
            self.pretrain_set = None
            return
        pre = SeriesDataset(cut, None, None, normalize="none")
        pre.normalize, pre.stats = self.normalize, self.stats
        pre.encoder_kwargs = dict(self.encoder_kwargs)  # the encoder is built for whole series
        pre.suggested_epochs = self.suggested_epochs = ts2vec_epochs(n, c, t, n_train=len(pre))
        self.pretrain_set = pre
        self.notes.append(f"pre-training on {len(pre)} series of {cut.shape[-1]} steps "
                          f"(TS2Vec's sections, max_train_length={max_train_length}, centred "
                          "when lengths vary); evaluation encodes the whole series")


def from_splits(train: SeriesArrays, test: SeriesArrays, split: str,
                normalize: str | bool | None = "auto", name: str | None = None,
                max_train_length: int | None = MAX_TRAIN_LENGTH) -> SeriesDataset:
    """The ``split`` of a TRAIN/TEST pair, with one class list and one length for both.

    ``normalize`` (``choose_normalize``; ``auto`` decides by ``name`` and channel count):
    ``global`` / ``channel`` statistics come from the training split only and are applied to
    both. The training split gets TS2Vec's pre-training sections (``set_pretraining``).
    """
    s = check_split(split)
    train, test = align_splits(train, test)
    mode, note = choose_normalize(normalize, name, int(train.X.shape[1]))
    stats = fit_stats(torch.as_tensor(train.X), mode) if mode in ("global", "channel") else None
    arrays = train if s == "train" else test
    if arrays.targets is not None:
        log.warning("%s holds regression targets; they are ignored (series unlabeled)",
                    arrays.source)
    y, classes = None, None
    if train.labels is not None and test.labels is not None:
        y_train, y_test, classes = encode_labels(train.labels, test.labels,
                                                 (train.source, test.source))
        y = y_train if s == "train" else y_test
    ds = SeriesDataset(arrays.X, y, classes, mode, stats)
    ds.notes.append(note)
    if s == "train":
        ds.set_pretraining(max_train_length)
    return ds


# ---- registered factories -------------------------------------------------------------------
def _set_name(source: str) -> str | None:
    """``NAME`` of a ``NAME_TRAIN.*`` file (a UCR/UEA set's name), else None."""
    stem = Path(source).stem
    return stem[: -len("_TRAIN")] if stem.upper().endswith("_TRAIN") else None


@DATASETS.register("gunpoint", scope="timeseries")
def gunpoint(split: str = "train", seed: int = 0, normalize: str | bool | None = "auto",
             max_train_length: int | None = MAX_TRAIN_LENGTH) -> SeriesDataset:
    """GunPoint (shipped): 50 train / 150 test univariate series of length 150, 2 classes.

    Ratanamahatana & Keogh 2005, from the UCR archive (Dau et al. 2018); the archive's split,
    kept as released by default (TS2Vec does not renormalize it).
    """
    return from_splits(read_tsv(DATA_DIR / "GunPoint_TRAIN.tsv"),
                       read_tsv(DATA_DIR / "GunPoint_TEST.tsv"), split, normalize, "GunPoint",
                       max_train_length)


@DATASETS.register("path", scope="timeseries")
def path(root: str | Path, split: str = "train", seed: int = 0,
         normalize: str | bool | None = "auto", test_fraction: float = 0.2,
         split_seed: int = 0, label_column: str | int | None = "auto",
         max_length: int = MAX_LENGTH,
         max_train_length: int | None = MAX_TRAIN_LENGTH) -> SeriesDataset:
    """Series from disk: a folder with NAME_TRAIN / NAME_TEST files, or one series file.

    A folder holds ``NAME_TRAIN`` / ``NAME_TEST`` ``.ts`` or ``.tsv`` files (also
    ``train.npz``-style names or ``X_train.npy``); a file is ``.ts .tsv .txt .csv .npy .npz``.
    ``auto`` normalization decides by NAME as for ``ucr``; data without a UCR-style name get
    ``global`` (univariate) or ``channel`` statistics of the training split.

    One file has no test split, so it is split: a stratified ``test_fraction`` of each class
    goes to test, seeded by ``split_seed`` (fixed, not the training ``seed``, so train and test
    never overlap and every run evaluates on the same series), as the image ``path`` dataset
    does. ``label_column`` picks the CSV label column (see ``read_csv``). A series longer than
    ``max_length`` steps is refused (see ``io``). ``normalize`` and ``max_train_length``: as
    in ``from_splits``.
    """
    s = check_split(split)
    p = Path(str(root).removeprefix("file:")).expanduser()
    if not p.exists():
        raise SeriesFileError(f"data path {p} does not exist; give a series file "
                              f"({' '.join(SUFFIXES)}) or a folder with NAME_TRAIN.ts and "
                              "NAME_TEST.ts")
    if p.is_dir():
        train, test = read_train_test(p, max_length)
        return from_splits(train, test, s, normalize, _set_name(train.source), max_train_length)
    extra = {"label_column": label_column} if p.suffix.lower() == ".csv" else {}
    arrays = read_series(p, max_length=max_length, **extra)
    y = [-1] * len(arrays.X)
    if arrays.labels is not None:
        y = list(encode_labels(arrays.labels, (), (str(p), str(p)))[0])
    train_idx, test_idx = split_indices(y, test_fraction, split_seed)
    if len(test_idx) == 0 or len(train_idx) == 0:
        raise SeriesFileError(f"{p}: {len(y)} series are too few to split into train and "
                              "test; give a folder with NAME_TRAIN and NAME_TEST files")

    def part(idx: np.ndarray) -> SeriesArrays:
        labels = None if arrays.labels is None else [arrays.labels[int(i)] for i in idx]
        return SeriesArrays(arrays.X[idx], labels, str(p))

    return from_splits(part(train_idx), part(test_idx), s, normalize, None, max_train_length)


@DATASETS.register("ucr", scope="timeseries")
def ucr(name: str, split: str = "train", seed: int = 0, root: str | Path | None = None,
        normalize: str | bool | None = "auto", max_length: int = MAX_LENGTH,
        max_train_length: int | None = MAX_TRAIN_LENGTH) -> SeriesDataset:
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
                       read_series(files[1], max_length=max_length), s, normalize, name,
                       max_train_length)

