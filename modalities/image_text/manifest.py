"""Readers of image-text data into records: one image, its captions, an optional label.

Four layouts are read (the keys follow open_clip's ``--csv-img-key`` / ``--csv-caption-key``):

- CSV / TSV (``read_csv``): one row per (image, caption); the separator follows the extension
  (``.tsv`` -> tab, else comma).
- JSON lines (``read_jsonl``): one object per line; a caption may be a string or a list.
- a folder (``read_folder``): ``a.png`` with ``a.txt`` beside it, one caption per non-empty line
  (the img2dataset / webdataset pairing).
- ``.npz`` (``read_npz``): ``images`` (N,H,W[,3|4]) uint8 and ``captions`` (N,) or (N,K).

Rows naming the same image are grouped into one record with several captions (training samples
one per step). Relative image paths resolve against the manifest's folder; a path leading
outside it is refused unless ``allow_outside`` (see ``manifest_rows``). A row with an empty
caption (after stripping) or no image is an error, or, with ``on_error="skip"``, skipped and
counted in ``Manifest.skipped``. A manifest without any row is an error.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from anyssl.modalities.image.datasets import DataPathError
from anyssl.modalities.image_text.manifest_rows import (
    IMAGE_SUFFIXES,
    ON_ERROR,
    Manifest,
    ManifestError,
    Record,
    bad_row,
    check_on_error,
    clean_captions,
    group_rows,
    label_text,
    missing_key,
    resolve_image,
)

__all__ = ["IMAGE_SUFFIXES", "ON_ERROR", "Manifest", "ManifestError", "Record", "check_on_error",
           "read_csv", "read_folder", "read_jsonl", "read_manifest", "read_npz"]


def _row(path: Path, image: str, captions: tuple[str, ...], label: str | None, row: int,
         on_error: str, skipped: list[str], allow_outside: bool) -> Record | None:
    """One CSV/JSONL row as a record (None when skipped)."""
    where = f"{path.name} line {row}"
    if not image.strip():
        bad_row("empty image path", where, on_error, skipped)
        return None
    if not captions:
        bad_row("empty caption", where, on_error, skipped)
        return None
    return Record(resolve_image(image, path.parent, where, allow_outside), captions, label, row,
                  where)


def read_csv(path: str | Path, image_key: str = "filepath", caption_key: str = "title",
             label_key: str | None = None, sep: str | None = None, on_error: str = "raise",
             allow_outside: bool = False) -> Manifest:
    """Read a CSV/TSV manifest with a header row (``sep`` default: tab for ``.tsv``, else
    comma; ``"tab"`` or a typed ``\\t`` mean tab). Each row is one image path and one caption;
    rows are grouped by image."""
    p, on_error = Path(path), check_on_error(on_error)
    delimiter = sep if sep is not None else ("\t" if p.suffix.lower() == ".tsv" else ",")
    delimiter = "\t" if delimiter in ("\\t", "tab") else delimiter  # -d sep=tab / sep=\t
    rows: list[Record] = []
    skipped: list[str] = []
    n_rows = 0
    with open(p, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        columns = list(reader.fieldnames or [])
        if not columns:
            raise ManifestError(f"{p} is empty; give a header row naming the columns")
        for key, flag in ((image_key, "image_key"), (caption_key, "caption_key"),
                          (label_key, "label_key")):
            if key is not None and key not in columns:
                raise missing_key(p, "column", key, columns, flag)
        for line in reader:
            n_rows += 1
            rec = _row(p, line.get(image_key) or "", clean_captions([line.get(caption_key)]),
                       label_text(line.get(label_key)) if label_key else None,
                       reader.line_num, on_error, skipped, allow_outside)
            if rec is not None:
                rows.append(rec)
    if n_rows == 0:
        raise ManifestError(f"{p} has a header but no rows; add one row per image and caption")
    return Manifest(group_rows(rows), p, n_rows, skipped)


def read_jsonl(path: str | Path, image_key: str = "filepath", caption_key: str = "title",
               label_key: str | None = None, on_error: str = "raise",
               allow_outside: bool = False) -> Manifest:
    """Read a JSON-lines manifest: one object per line with the image path, a caption (a string
    or a list of strings) and optionally a label; blank lines are ignored."""
    p, on_error = Path(path), check_on_error(on_error)
    rows: list[Record] = []
    skipped: list[str] = []
    n_rows = 0
    with open(p, encoding="utf-8-sig") as f:
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            n_rows += 1
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as err:
                raise ManifestError(f"{p} line {number} is not valid JSON ({err.msg}); give "
                                    "one JSON object per line") from None
            if not isinstance(obj, dict):
                raise ManifestError(f"{p} line {number} is not a JSON object")
            for key, flag in ((image_key, "image_key"), (caption_key, "caption_key")):
                if key not in obj:
                    raise missing_key(p, "key", key, obj, flag, f" line {number}")
            caps = obj[caption_key]
            rec = _row(p, str(obj[image_key] or ""),
                       clean_captions(caps if isinstance(caps, list) else [caps]),
                       label_text(obj.get(label_key)) if label_key else None, number, on_error,
                       skipped, allow_outside)
            if rec is not None:
                rows.append(rec)
    if n_rows == 0:
        raise ManifestError(f"{p} holds no rows; give one JSON object per line")
    return Manifest(group_rows(rows), p, n_rows, skipped)


def read_folder(root: str | Path, on_error: str = "raise") -> Manifest:
    """Read a folder (searched recursively) of images, each with a same-stem ``.txt`` beside it
    holding one caption per non-empty line. Records are unlabeled."""
    p, on_error = Path(root), check_on_error(on_error)
    files = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES
                   and f.is_file() and not f.name.startswith("."))
    if not files:
        raise ManifestError(f"no images found in {p}; accepted extensions: "
                            f"{' '.join(IMAGE_SUFFIXES)}, each with a same-name .txt caption")
    records: list[Record] = []
    skipped: list[str] = []
    for i, f in enumerate(files):
        where, txt = str(f.relative_to(p)), f.with_suffix(".txt")
        if not txt.is_file():
            bad_row(f"no caption file {txt.name}", where, on_error, skipped)
            continue
        captions = clean_captions(txt.read_text(encoding="utf-8-sig").splitlines())
        if not captions:
            bad_row(f"empty caption in {txt.name}", where, on_error, skipped)
            continue
        records.append(Record(f, captions, None, i, where))
    return Manifest(records, p, len(files), skipped)


def _npz_labels(data: Any, label_key: str | None, n: int, p: Path) -> list[str | None]:
    key = label_key or next((k for k in ("labels", "groups") if k in data.files), None)
    if key is None:
        return [None] * n
    if key not in data.files:
        raise missing_key(p, "array", key, data.files, "label_key")
    labels = np.asarray(data[key])
    if labels.shape != (n,):
        raise ManifestError(f"{p}: {key!r} must have shape ({n},), got {labels.shape}")
    if labels.dtype.kind in "iu":  # negative integers mean unlabeled
        return [str(int(v)) if v >= 0 else None for v in labels]
    return [label_text(v.decode() if isinstance(v, bytes) else v) for v in labels]


def read_npz(path: str | Path, image_key: str = "images", caption_key: str = "captions",
             label_key: str | None = None, on_error: str = "raise") -> Manifest:
    """Read an ``.npz`` with uint8 images (N,H,W), (N,H,W,3) or (N,H,W,4) and string captions
    (N,) or (N,K) (empty strings in an (N,K) array are padding). Labels come from
    ``label_key``, else ``labels`` or ``groups`` when present (integer labels < 0: unlabeled)."""
    p, on_error = Path(path), check_on_error(on_error)
    try:
        data = np.load(p, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ManifestError(f"cannot read {p}: {err}; save string arrays, not objects") from None
    with data:
        for key, flag in ((image_key, "image_key"), (caption_key, "caption_key")):
            if key not in data.files:
                raise missing_key(p, "array", key, data.files, flag)
        images, captions = np.asarray(data[image_key]), np.asarray(data[caption_key])
        n = len(images)
        if images.dtype != np.uint8 or not (images.ndim == 3 or (
                images.ndim == 4 and images.shape[-1] in (3, 4))):
            raise ManifestError(f"{p}: {image_key!r} must be uint8 (N,H,W), (N,H,W,3) or "
                                f"(N,H,W,4), got {images.shape} {images.dtype}")
        if captions.dtype.kind not in "US" or captions.ndim not in (1, 2) or len(captions) != n:
            raise ManifestError(f"{p}: {caption_key!r} must be strings of shape ({n},) or "
                                f"({n}, K), got {captions.shape} {captions.dtype}")
        labels = _npz_labels(data, label_key, n, p)
    caps = captions.reshape(n, -1)
    if caps.dtype.kind == "S":
        caps = np.char.decode(caps, "utf-8")
    records: list[Record] = []
    skipped: list[str] = []
    for i in range(n):
        where, texts = f"{p.name} row {i}", clean_captions(caps[i])
        if not texts:
            bad_row("empty caption", where, on_error, skipped)
            continue
        records.append(Record(i, texts, labels[i], i, where))
    return Manifest(records, p, n, skipped, images)


def read_manifest(root: str | Path, image_key: str | None = None, caption_key: str | None = None,
                  label_key: str | None = None, sep: str | None = None,
                  on_error: str = "raise", allow_outside: bool = False) -> Manifest:
    """Read ``root`` by its kind: ``.csv``/``.tsv``, ``.jsonl``, ``.npz`` or a folder. Unset keys
    take each reader's defaults (``filepath``/``title``; ``images``/``captions`` for npz);
    ``allow_outside`` lets CSV/JSONL rows name images outside the manifest's folder."""
    p = Path(str(root).removeprefix("file:")).expanduser()
    if not p.exists():
        raise DataPathError(f"data path {p} does not exist; give a .csv/.tsv/.jsonl manifest, "
                            "an .npz, or a folder of images with .txt captions")
    keys = {k: v for k, v in (("image_key", image_key), ("caption_key", caption_key),
                              ("label_key", label_key)) if v is not None}
    if p.is_dir():
        return read_folder(p, on_error)
    suffix = p.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return read_csv(p, sep=sep, on_error=on_error, allow_outside=allow_outside, **keys)
    if suffix == ".jsonl":
        return read_jsonl(p, on_error=on_error, allow_outside=allow_outside, **keys)
    if suffix == ".npz":
        return read_npz(p, on_error=on_error, **keys)
    raise DataPathError(f"{p}: unknown data file type {suffix!r}; give a .csv, .tsv, .jsonl or "
                        ".npz file, or a folder of images with .txt captions")
