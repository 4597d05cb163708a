"""Time-series files: the numpy reader, ``read_series`` (dispatch on suffix), the TRAIN/TEST
folder loader and the label encoder. The text formats (sktime/aeon ``.ts``, UCR ``.tsv``, CSV)
are parsed in ``io_text.py``.

Every reader returns a ``SeriesArrays``: ``X`` float32 ``N x C x T`` with ``NaN`` for missing
values and right-padding to the longest series (trailing steps that are ``NaN`` in every series
are dropped), the raw label strings (``None`` when the file has none) and the path. Bad input is
a one-line ``ValueError`` (``SeriesFileError``) naming the file, and the 1-based line where
there is one. A series longer than ``max_length`` (default ``MAX_LENGTH`` = 100,000 steps, over
5x the longest UCR/UEA series, EigenWorms' 17,984) or with more than ``MAX_CHANNELS`` = 10,000
channels is refused; text readers check each line before parsing it, so one huge line fails fast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

__all__ = [
    "MAX_CHANNELS", "MAX_LENGTH", "SUFFIXES", "SeriesArrays", "SeriesFileError", "align_splits",
    "canonical_label", "check_label_kinds", "check_shape", "encode_labels", "find_split_file",
    "finish_series", "is_float", "is_number", "parse_values", "read_numpy", "read_series",
    "read_split", "read_train_test", "stack_series",
]

#: File suffixes ``read_series`` understands.
SUFFIXES = (".ts", ".tsv", ".txt", ".csv", ".npy", ".npz")
MAX_LENGTH = 100_000
MAX_CHANNELS = 10_000


class SeriesFileError(ValueError):
    """A series file that is missing, malformed, or contradicts itself."""


@dataclass
class SeriesArrays:
    """What a reader found. Shape: ``X`` N x C x T float32 (NaN = missing / padding).

    ``labels`` holds one raw class-label string per series (None when the file has none);
    ``targets`` the float regression targets of a ``.ts`` file with ``@targetLabel true``.
    """

    X: np.ndarray
    labels: list[str] | None
    source: str
    targets: np.ndarray | None = None


# ---- shared helpers -------------------------------------------------------------------------
def _where(source: str, i: int, lines: Sequence[int] | None) -> str:
    return f"{source} line {lines[i]}" if lines is not None else f"{source} series {i} (0-based)"


def check_shape(channels: int, length: int, where: str, max_length: int = MAX_LENGTH) -> None:
    """Refuse a series of more than ``max_length`` steps or ``MAX_CHANNELS`` channels."""
    if length > max_length:
        raise SeriesFileError(f"{where}: {length:,} values in one series, more than max_length="
                              f"{max_length:,}; crop or resample it, or pass -d max_length=N")
    if channels > MAX_CHANNELS:
        raise SeriesFileError(f"{where}: {channels:,} channels, more than {MAX_CHANNELS:,}; "
                              "check the separators (':' between channels, ',' between values)")


def parse_values(fields: Sequence[str], where: str) -> np.ndarray:
    """Float64 values of text fields; ``?``, ``NaN`` and empty fields are missing (``NaN``)."""
    cleaned = ["nan" if f.strip() in ("?", "") else f for f in fields]
    try:
        values = np.array(cleaned, dtype=np.float64)
    except ValueError:
        bad = next(f for f in cleaned if not is_float(f))
        raise SeriesFileError(f"{where}: cannot read {bad.strip()!r} as a number") from None
    if np.isinf(values).any():
        raise SeriesFileError(f"{where}: infinite value; use NaN or ? for a missing value")
    return values


def is_float(text: str) -> bool:
    """Whether ``float(text)`` parses (``nan`` and ``inf`` included)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def is_number(label: str) -> bool:
    """Whether a label is a finite number (numeric labels sort by value)."""
    try:
        return math.isfinite(float(label))
    except ValueError:
        return False


def stack_series(series: Sequence[Sequence[np.ndarray]], source: str,
                 lines: Sequence[int] | None = None) -> np.ndarray:
    """Stack series (each a list of 1-D channel arrays) into ``N x C x T`` float32, padding
    every channel with NaN to the longest; refuses an empty file, a change in the channel
    count and a series with no observed value."""
    if not series:
        raise SeriesFileError(f"{source}: no data lines (no series found); give one series per "
                              "line")
    c = len(series[0])
    t = max((len(ch) for s in series for ch in s), default=0)
    x = np.full((len(series), c, t), np.nan, dtype=np.float32)
    for i, s in enumerate(series):
        if len(s) != c:
            first = f"line {lines[0]}" if lines is not None else "index 0"
            raise SeriesFileError(f"{_where(source, i, lines)}: {len(s)} channels but the first "
                                  f"series ({first}) has {c}")
        for j, ch in enumerate(s):
            x[i, j, : len(ch)] = ch
    return finish_series(x, source, lines)


def finish_series(x: np.ndarray, source: str, lines: Sequence[int] | None = None) -> np.ndarray:
    """Refuse all-NaN series; drop trailing time steps that are NaN in every series."""
    seen = ~np.isnan(x)  # N x C x T
    empty = np.flatnonzero(~seen.any(axis=(1, 2)))
    if empty.size:
        raise SeriesFileError(f"{_where(source, int(empty[0]), lines)}: the series has no "
                              "observed value (all NaN); remove it")
    steps = np.flatnonzero(seen.any(axis=(0, 1)))
    return x[..., : int(steps[-1]) + 1] if steps.size else x


def check_label_kinds(labels: Sequence[str], source: str,
                      lines: Sequence[int] | None = None) -> None:
    """Refuse a mix of numeric and non-numeric labels, naming the odd one (the minority kind)."""
    numeric = [is_number(lab) for lab in labels]
    n_num = sum(numeric)
    if 0 < n_num < len(labels):
        odd_numeric = n_num < len(labels) - n_num
        i = numeric.index(odd_numeric)
        kind, others = ("a number", "strings") if odd_numeric else ("not a number", "numbers")
        raise SeriesFileError(f"{_where(source, i, lines)}: label {labels[i]!r} is {kind} but "
                              f"the other labels are {others}; use one kind of label")


def canonical_label(label: str) -> str:
    """Numeric labels by value ("1.0" and "1" are one class); others unchanged."""
    if not is_number(label):
        return label
    v = float(label)
    return str(int(v)) if v.is_integer() else repr(v)


def encode_labels(train_labels: Sequence[str], test_labels: Sequence[str] = (),
                  sources: tuple[str, str] = ("train", "test"),
                  ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Class ids for both splits from one class list. Returns ``(y_train, y_test, classes)``.

    ``classes`` is the sorted union of both splits' labels, in numeric order when every label
    is a number (so "2" < "10"; "1.0" and "1" are the same class). ``y`` is int64.
    """
    for labels, src in zip((train_labels, test_labels), sources, strict=True):
        check_label_kinds(labels, src)
    if train_labels and test_labels and is_number(train_labels[0]) != is_number(test_labels[0]):
        kind = "a number" if is_number(test_labels[0]) else "not a number"
        raise SeriesFileError(f"{sources[1]}: label {test_labels[0]!r} is {kind} unlike the "
                              f"labels of {sources[0]}; use one kind of label in both splits")
    names = {canonical_label(lab) for lab in (*train_labels, *test_labels)}
    numeric = all(is_number(n) for n in names)
    classes = sorted(names, key=float) if numeric else sorted(names)
    index = {c: k for k, c in enumerate(classes)}

    def ids(labels: Sequence[str]) -> np.ndarray:
        return np.array([index[canonical_label(lab)] for lab in labels], dtype=np.int64)

    return ids(train_labels), ids(test_labels), classes


# ---- readers --------------------------------------------------------------------------------
def read_numpy(path: str | Path, max_length: int = MAX_LENGTH) -> SeriesArrays:
    """``.npy`` (X only) or ``.npz`` (keys ``X`` or ``x``, optional ``y``). X is ``N x T`` or
    time-major ``N x T x C`` (as tslearn/aeon numpy exports); it is transposed to N x C x T."""
    p, src = Path(path), str(path)
    if not p.is_file():
        raise SeriesFileError(f"{src}: no such file; check the path")
    try:
        data = np.load(p, allow_pickle=False)
        if isinstance(data, np.ndarray):
            x, y = data, None
        else:
            with data:
                key = next((k for k in ("X", "x") if k in data.files), None)
                if key is None:
                    raise SeriesFileError(f"{src}: no array named 'X' or 'x' (found "
                                          f"{', '.join(data.files) or 'none'})")
                x = data[key]
                y = next((data[k] for k in ("y", "Y") if k in data.files), None)
    except SeriesFileError:
        raise
    except (OSError, ValueError, EOFError) as err:
        raise SeriesFileError(f"{src}: cannot load ({err})") from None
    from anyssl.modalities.timeseries.io_numpy import numpy_labels, numpy_x

    return SeriesArrays(numpy_x(x, src, max_length), numpy_labels(y, len(x), src), src)


def read_series(path: str | Path, **kwargs: object) -> SeriesArrays:
    """Read one series file, chosen by suffix (``.ts .tsv .txt .csv .npy .npz``); ``kwargs``
    go to the reader (``label_column`` for CSV)."""
    from anyssl.modalities.timeseries.io_text import read_csv, read_ts, read_tsv

    p = Path(path)
    suffix = p.suffix.lower()
    readers = {".ts": read_ts, ".tsv": read_tsv, ".txt": read_tsv, ".csv": read_csv,
               ".npy": read_numpy, ".npz": read_numpy}
    if suffix not in readers:
        raise SeriesFileError(f"{path}: unknown series file suffix {suffix or '(none)'!r}; use "
                              f"one of {' '.join(SUFFIXES)}")
    return readers[suffix](p, **kwargs)


# ---- TRAIN / TEST folders -------------------------------------------------------------------
def find_split_file(root: str | Path, split: str) -> Path | None:
    """The file of ``split`` ("train"/"test") in a folder: ``NAME_TRAIN.ts`` (then ``.tsv``)
    for the folder's NAME, else a single ``*_TRAIN.ts`` / ``*_TRAIN.tsv``, else
    ``train.{ts,tsv,npz,npy,csv}``, else ``X_train.npy``; None when there is none."""
    r = Path(root)
    tag = split.upper()
    for cand in (r / f"{r.name}_{tag}.ts", r / f"{r.name}_{tag}.tsv"):
        if cand.is_file():
            return cand
    for ext in ("ts", "tsv"):
        found = sorted(r.glob(f"*_{tag}.{ext}"))
        if len(found) == 1:
            return found[0]
    for ext in ("ts", "tsv", "npz", "npy", "csv"):
        if (r / f"{split}.{ext}").is_file():
            return r / f"{split}.{ext}"
    x = r / f"X_{split}.npy"
    return x if x.is_file() else None


def read_split(root: str | Path, split: str, max_length: int = MAX_LENGTH) -> SeriesArrays:
    """Read the ``split`` ("train" or "test") file of a folder (see ``find_split_file``);
    ``X_{split}.npy`` takes its labels from ``y_{split}.npy`` when present."""
    file = find_split_file(root, split)
    if file is None:
        r = Path(root)
        raise SeriesFileError(f"{r}: no {split} file; expected {r.name}_{split.upper()}.ts or "
                              f"{r.name}_{split.upper()}.tsv (or {split}.npz, X_{split}.npy)")
    from anyssl.modalities.timeseries.io_numpy import numpy_labels

    arrays = read_series(file, max_length=max_length)
    y_file = file.with_name(f"y_{split}.npy")
    if file.name == f"X_{split}.npy" and y_file.is_file():
        try:
            y = np.load(y_file, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise SeriesFileError(f"{y_file}: cannot load ({err})") from None
        arrays.labels = numpy_labels(y, len(arrays.X), str(y_file))
    return arrays


def align_splits(train: SeriesArrays, test: SeriesArrays) -> tuple[SeriesArrays, SeriesArrays]:
    """Check two splits agree (channel count; labels in both or neither) and pad the shorter
    with NaN to the longer length, so one encoder length fits both (inputs are not changed)."""
    if train.X.shape[1] != test.X.shape[1]:
        raise SeriesFileError(f"{test.source}: {test.X.shape[1]} channels but {train.source} "
                              f"has {train.X.shape[1]}; the splits must match")
    for a, b in ((train, test), (test, train)):
        if a.labels is not None and b.labels is None:
            raise SeriesFileError(f"{b.source}: no labels but {a.source} has labels; label both "
                                  "splits or neither")
    t = max(train.X.shape[-1], test.X.shape[-1])

    def padded(a: SeriesArrays) -> SeriesArrays:
        pad = ((0, 0), (0, 0), (0, t - a.X.shape[-1]))
        return replace(a, X=np.pad(a.X, pad, constant_values=np.nan)) if pad[2][1] else a

    return padded(train), padded(test)


def read_train_test(root: str | Path,
                    max_length: int = MAX_LENGTH) -> tuple[SeriesArrays, SeriesArrays]:
    """Both splits of a folder, checked against each other and padded to one length."""
    return align_splits(read_split(root, "train", max_length),
                        read_split(root, "test", max_length))
