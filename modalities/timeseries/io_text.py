"""Text series formats: sktime/aeon ``.ts``, UCR ``.tsv`` / ``.txt`` and CSV.

Each reader returns a ``SeriesArrays`` (``X`` N x C x T float32, NaN = missing or padding) and
raises a one-line ``SeriesFileError`` (a ``ValueError``) naming the file and 1-based line. Each
line's size is checked (``io.check_shape``: ``max_length`` steps, ``MAX_CHANNELS``) before its
values are parsed, so a line of a million values fails at once.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anyssl.modalities.timeseries.io import (
    MAX_LENGTH,
    SeriesArrays,
    SeriesFileError,
    canonical_label,
    check_label_kinds,
    check_shape,
    is_float,
    parse_values,
    stack_series,
)

__all__ = ["TsHeader", "read_csv", "read_lines", "read_ts", "read_tsv"]

_LABEL_NAMES = ("label", "class", "target")
_BOOL_TAGS = {"timestamps": "timestamps", "missing": "missing", "univariate": "univariate",
              "equallength": "equal_length", "classlabel": "class_label",
              "targetlabel": "target_label"}
_INT_TAGS = {"dimension": "dimensions", "dimensions": "dimensions",
             "serieslength": "series_length"}


def read_lines(path: Path) -> list[str]:
    """The text lines of a file (UTF-8, BOM dropped); a missing file is a ``SeriesFileError``."""
    if not path.is_file():
        raise SeriesFileError(f"{path}: no such file; check the path")
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise SeriesFileError(f"{path}: cannot read the file ({err})") from None


# ---- sktime / aeon .ts ------------------------------------------------------------------------
@dataclass
class TsHeader:
    """The header of a ``.ts`` file (tags are case-insensitive; absent ones stay None)."""

    timestamps: bool = False
    missing: bool | None = None
    univariate: bool | None = None
    dimensions: int | None = None
    equal_length: bool | None = None
    series_length: int | None = None
    class_label: bool = False
    classes: tuple[str, ...] = ()
    target_label: bool = False


def _parse_header(lines: list[str], src: str) -> tuple[TsHeader, int]:
    """The header and the index of the first line after ``@data``."""
    h = TsHeader()
    for k, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{src} line {k + 1}"
        if not line.startswith("@"):
            raise SeriesFileError(f"{where}: data before @data; a .ts file starts with its "
                                  "header (@problemName ... @data)")
        tag, *args = line.split()
        tag = tag[1:].lower()
        if tag == "data":
            return h, k + 1
        if tag in _BOOL_TAGS:
            if not args or args[0].lower() not in ("true", "false"):
                raise SeriesFileError(f"{where}: @{tag} needs true or false")
            setattr(h, _BOOL_TAGS[tag], args[0].lower() == "true")
            if tag == "classlabel":
                h.classes = tuple(args[1:])
        elif tag in _INT_TAGS:
            if len(args) != 1 or not args[0].isdigit():
                raise SeriesFileError(f"{where}: @{tag} needs a whole number")
            setattr(h, _INT_TAGS[tag], int(args[0]))
        if h.timestamps:
            raise SeriesFileError(f"{where}: @timeStamps true (timestamped series) is not "
                                  "supported; export the series without timestamps")
    raise SeriesFileError(f"{src}: no @data line; a .ts file needs its header and @data")


def _check_line(h: TsHeader, channels: list[np.ndarray], label: str | None, where: str,
                classes: set[str]) -> None:
    """Refuse a data line that contradicts the header."""
    n = len(channels)
    if h.univariate and n != 1:
        raise SeriesFileError(f"{where}: {n} channels but @univariate true says 1")
    if h.dimensions is not None and n != h.dimensions:
        raise SeriesFileError(f"{where}: {n} channels but @dimensions says {h.dimensions}")
    if h.equal_length is not False and h.series_length is not None:
        for j, ch in enumerate(channels):
            if len(ch) != h.series_length:
                raise SeriesFileError(f"{where}: channel {j + 1} has {len(ch)} values but "
                                      f"@seriesLength says {h.series_length}")
    if label is not None and classes and canonical_label(label) not in classes:
        raise SeriesFileError(f"{where}: class label {label!r} is not in the @classLabel list "
                              f"({' '.join(h.classes)})")


def read_ts(path: str | Path, max_length: int = MAX_LENGTH) -> SeriesArrays:
    """An sktime/aeon ``.ts`` file: ``@`` header lines, then one series per line after
    ``@data``: channels separated by ``:``, values by ``,``, the label last when
    ``@classLabel true`` (or ``@targetLabel true``: a regression target, kept in
    ``targets``); ``?`` or ``NaN`` is missing. Channels of unequal length are padded with NaN.
    The header is checked against every line."""
    src = str(path)
    lines = read_lines(Path(path))
    h, start = _parse_header(lines, src)
    if h.class_label and h.target_label:
        raise SeriesFileError(f"{src}: both @classLabel true and @targetLabel true; keep one")
    classes = {canonical_label(c) for c in h.classes}
    series: list[list[np.ndarray]] = []
    labels: list[str] = []
    numbers: list[int] = []
    first: tuple[int, int] | None = None  # (line, length) for @equalLength true
    for k in range(start, len(lines)):
        line = lines[k].strip()
        if not line or line.startswith("#"):
            continue
        where = f"{src} line {k + 1}"
        if line.startswith("@"):
            raise SeriesFileError(f"{where}: header line after @data; move it above @data")
        if "(" in line:
            raise SeriesFileError(f"{where}: timestamped values '(t,v)' are not supported; "
                                  "export the series without timestamps")
        fields = line.split(":")
        label = None
        if h.class_label or h.target_label:
            if len(fields) < 2:
                raise SeriesFileError(f"{where}: no ':label' at the end of the line but the "
                                      "header says the series are labelled")
            label = fields.pop().strip()
            labels.append(label)
        check_shape(len(fields), max(f.count(",") + 1 for f in fields), where, max_length)
        channels = [parse_values(f.split(","), f"{where} channel {j + 1}") if f.strip()
                    else np.empty(0) for j, f in enumerate(fields)]
        _check_line(h, channels, label if h.class_label else None, where, classes)
        if h.equal_length:
            first = first or (k + 1, len(channels[0]))
            bad = next((j for j, ch in enumerate(channels) if len(ch) != first[1]), None)
            if bad is not None:
                raise SeriesFileError(f"{where}: channel {bad + 1} has {len(channels[bad])} "
                                      f"values but @equalLength true and line {first[0]} has "
                                      f"{first[1]}")
        series.append(channels)
        numbers.append(k + 1)
    x = stack_series(series, src, numbers)
    if h.target_label:
        targets = parse_values(labels, f"{src} (targets)")
        return SeriesArrays(x, None, src, targets=targets)
    if not h.class_label:
        return SeriesArrays(x, None, src)
    check_label_kinds(labels, src, numbers)
    return SeriesArrays(x, labels, src)


# ---- UCR .tsv and CSV -------------------------------------------------------------------------
def read_tsv(path: str | Path, max_length: int = MAX_LENGTH) -> SeriesArrays:
    """A UCR 2018 ``.tsv`` (or UCR 2015 ``.txt``): one univariate series per line, the class
    label first; tab separated (commas or spaces also accepted); trailing ``NaN`` or empty
    fields mark a shorter series."""
    p = Path(path)
    src = str(path)
    lines = read_lines(p)
    rows = [(k + 1, line) for k, line in enumerate(lines) if line.strip()]
    delim = next((d for d in ("\t", ",") if rows and d in rows[0][1]), None)
    series: list[list[np.ndarray]] = []
    labels: list[str] = []
    for number, line in rows:
        fields = line.rstrip("\r\n").split(delim)
        label = fields[0].strip()
        if label.lower() in ("", "nan", "?"):
            raise SeriesFileError(f"{src} line {number}: no class label in the first field")
        labels.append(label)
        check_shape(1, len(fields) - 1, f"{src} line {number}", max_length)
        series.append([parse_values(fields[1:], f"{src} line {number}")])
    numbers = [n for n, _ in rows]
    x = stack_series(series, src, numbers)
    check_label_kinds(labels, src, numbers)
    return SeriesArrays(x, labels, src)


def read_csv(path: str | Path, label_column: str | int | None = "auto",
             max_length: int = MAX_LENGTH) -> SeriesArrays:
    """A CSV file with one univariate series per row. A first row with a non-numeric field
    over a numeric one is a header. ``label_column``: a column name or index; ``"auto"`` (the
    default) takes a header column named label/class/target if there is one; None: no labels."""
    p, src = Path(path), str(path)
    rows = [(k + 1, r) for k, r in enumerate(csv.reader(read_lines(p))) if any(f.strip()
                                                                                for f in r)]
    header = _csv_header(rows)
    if header is not None:
        rows = rows[1:]
    col = _csv_label_index(label_column, header, src)
    series: list[list[np.ndarray]] = []
    labels: list[str] = []
    for number, row in rows:
        where = f"{src} line {number}"
        if col is not None:
            if not -len(row) <= col < len(row) or not row[col].strip():
                raise SeriesFileError(f"{where}: no value in label column {col}")
            labels.append(row[col].strip())
            row = [f for j, f in enumerate(row) if j != col % len(row)]
        check_shape(1, len(row), where, max_length)
        hint = "" if col is not None else "; set label_column if a column holds labels"
        try:
            series.append([parse_values(row, where)])
        except SeriesFileError as err:
            raise SeriesFileError(f"{err}{hint}") from None
    numbers = [n for n, _ in rows]
    x = stack_series(series, src, numbers)
    if col is None:
        return SeriesArrays(x, None, src)
    check_label_kinds(labels, src, numbers)
    return SeriesArrays(x, labels, src)


def _csv_header(rows: list[tuple[int, list[str]]]) -> list[str] | None:
    if not rows:
        return None
    first = rows[0][1]
    if len(rows) == 1:
        return first if not any(is_float(f) for f in first) else None
    second = rows[1][1]
    numeric_below = any(not is_float(a) and a.strip() and is_float(b)
                        for a, b in zip(first, second, strict=False))
    named = any(a.strip().lower() in _LABEL_NAMES for a in first)
    return first if numeric_below or named else None


def _csv_label_index(label_column: str | int | None, header: list[str] | None,
                     src: str) -> int | None:
    names = [h.strip().lower() for h in header] if header is not None else []
    if label_column is None or isinstance(label_column, int):
        return label_column
    if label_column == "auto":
        return next((names.index(n) for n in _LABEL_NAMES if n in names), None)
    if label_column.strip().lower() not in names:
        raise SeriesFileError(f"{src}: no column named {label_column!r} (header: "
                              f"{', '.join(header or []) or 'none'}); give a name or an index")
    return names.index(label_column.strip().lower())


