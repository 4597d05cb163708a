"""The records a manifest reader returns, and the row checks every reader shares: empty
captions, missing keys, one label per image, and where an image path may point.

Image paths are resolved against the manifest's folder. A path that leads outside that folder
(``../../etc/passwd``, or an absolute path elsewhere) is refused by default, with an error naming
the row and the path; ``-d allow_outside=true`` (``allow_outside=True``) accepts it. The check is
on the written path (``..`` and absolute paths), not on symlinks: a symlink inside the folder is
the folder owner's choice and is followed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anyssl.modalities.image.datasets import DataPathError

__all__ = ["IMAGE_SUFFIXES", "ON_ERROR", "Manifest", "ManifestError", "Record", "bad_row",
           "check_on_error", "clean_captions", "group_rows", "label_text", "missing_key",
           "resolve_image"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")
ON_ERROR = ("raise", "skip")


class ManifestError(DataPathError):
    """A manifest that cannot be read, or a row in it that is wrong (the message names both)."""


@dataclass(frozen=True)
class Record:
    """One image and its captions.

    Attributes:
        image: the image file (resolved), or for an ``.npz`` the row index into its images.
        captions: one or more non-empty, stripped captions.
        label: the label string, or None when unlabeled.
        row: the source row: file line (CSV/JSONL), array row (npz), listing index (folder).
        where: that place for messages, e.g. ``"pairs.csv line 7"``.
    """

    image: Path | int
    captions: tuple[str, ...]
    label: str | None
    row: int
    where: str


@dataclass
class Manifest:
    """The records of one source, the number of rows read, and the skipped rows' places."""

    records: list[Record]
    source: Path
    n_rows: int
    skipped: list[str] = field(default_factory=list)
    images: np.ndarray | None = None  # npz only: N x H x W [x C] uint8


def check_on_error(on_error: str) -> str:
    """``"raise"`` or ``"skip"``; anything else raises."""
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
    return on_error


def bad_row(message: str, where: str, on_error: str, skipped: list[str]) -> None:
    """Raise ``ManifestError`` for a bad row, or record it as skipped."""
    if on_error == "raise":
        raise ManifestError(f"{where}: {message}; fix the row or pass -d on_error=skip")
    skipped.append(f"{where}, {message}")


def clean_captions(captions: Iterable[Any]) -> tuple[str, ...]:
    return tuple(s for s in (str(c).strip() for c in captions if c is not None) if s)


def group_rows(rows: Iterable[Record]) -> list[Record]:
    """Merge rows with the same image into one record (first row's place; captions in order)."""
    groups: dict[Path | int, Record] = {}
    for r in rows:
        first = groups.get(r.image)
        if first is None:
            groups[r.image] = r
            continue
        if r.label is not None and first.label is not None and r.label != first.label:
            raise ManifestError(f"{r.where}: image {r.image} has label {r.label!r} here but "
                                f"{first.label!r} at {first.where}; give one label per image")
        groups[r.image] = Record(first.image, first.captions + r.captions,
                                 first.label if first.label is not None else r.label,
                                 first.row, first.where)
    return list(groups.values())


def missing_key(path: Path, kind: str, key: str, have: Iterable[str], flag: str,
                 where: str = "") -> ManifestError:
    return ManifestError(f"{path}{where} has no {kind} {key!r} (it has: "
                         f"{', '.join(map(str, have)) or 'none'}); pass -d {flag}=NAME")


def label_text(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def resolve_image(image: str, folder: Path, where: str, allow_outside: bool = False) -> Path:
    """The file a row names: ``image`` relative to the manifest's ``folder`` (or absolute).
    Raises ``ManifestError`` when it lies outside ``folder`` and ``allow_outside`` is False."""
    file = Path(image.strip()).expanduser()
    file = file if file.is_absolute() else folder / file
    inside = os.path.abspath(file).startswith(os.path.abspath(folder).rstrip(os.sep) + os.sep)
    if not (inside or allow_outside):
        raise ManifestError(f"{where}: image path {image.strip()!r} points outside the "
                            f"manifest's folder {os.path.abspath(folder)}; move the image into "
                            "that folder or pass -d allow_outside=true")
    return file
