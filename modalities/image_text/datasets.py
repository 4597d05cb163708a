"""Image-text datasets: ``PairDataset`` (images and tokenized captions in memory),
``FilePairDataset`` (images decoded on access; see ``lazy``) and the factories ``openmoji``
(shipped; the default) and ``path`` (a CSV/TSV/JSONL manifest, a folder of images with ``.txt``
captions, or an ``.npz``), registered in ``DATASETS`` scope "image-text".

Every factory is called as ``f(split="train"|"test", seed=0, **kw)``. An item is
``({"image": uint8 3 x S x S, "text": long K x L}, label)``: the K captions of one image (rows of
PAD where an image has fewer than K), label -1 when unlabeled. Without a given tokenizer a
byte-level BPE is trained on the train split's captions; the test split gets the identical one
(cached in-process, and training is deterministic anyway).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import Tensor

from anyssl.modalities.image.datasets import DataPathError
from anyssl.modalities.image.datasets_scan import MIN_SIZE
from anyssl.modalities.image_text.images import ImageReadError, decode_files, images_from_array
from anyssl.modalities.image_text.lazy import (
    CACHE_LIMIT_GIB,
    FilePairDataset,
    cache_note,
    check_cache,
    check_files,
    keep_in_memory,
)
from anyssl.modalities.image_text.manifest import (
    Manifest,
    Record,
    check_on_error,
    read_manifest,
)
from anyssl.modalities.image_text.pairs import GENERIC_TEMPLATES, PairDataset
from anyssl.modalities.text.tokenizer import Tokenizer, train_tokenizer
from anyssl.registry import DATASETS
from anyssl.splits import check_split, split_indices

__all__ = ["GENERIC_TEMPLATES", "FilePairDataset", "PairDataset", "path", "resolve_tokenizer"]


# ---- tokenizer --------------------------------------------------------------------------------
_TOKENIZERS: OrderedDict[str, Tokenizer] = OrderedDict()


def _trained(texts: Sequence[str], vocab_size: int, min_frequency: int = 2) -> Tokenizer:
    """A BPE trained on ``texts``, cached in-process by a hash of the texts and settings."""
    h = hashlib.sha256(f"{vocab_size}/{min_frequency}".encode())
    for t in texts:
        h.update(t.encode())
        h.update(b"\0")
    key = h.hexdigest()
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = train_tokenizer(list(texts), vocab_size, min_frequency)
        while len(_TOKENIZERS) > 4:
            _TOKENIZERS.popitem(last=False)
    return _TOKENIZERS[key]


def resolve_tokenizer(tokenizer: Tokenizer | str | Path | None, train_texts: Sequence[str],
                      vocab_size: int = 4096) -> Tokenizer:
    """A ``Tokenizer`` instance as is; a JSON string (starting with ``{``); a path to a
    ``tokenizer.json``; or None: a BPE trained on ``train_texts`` (the train split's captions)."""
    if isinstance(tokenizer, Tokenizer):
        return tokenizer
    if tokenizer is None:
        return _trained(train_texts, vocab_size)
    if isinstance(tokenizer, (str, Path)):
        text = str(tokenizer)
        if text.lstrip().startswith("{"):
            return Tokenizer.from_str(text)
        file = Path(text).expanduser()
        if not file.is_file():
            raise DataPathError(f"tokenizer file {file} does not exist; give a tokenizer.json "
                                "path or leave tokenizer unset to train one on the captions")
        return Tokenizer.from_file(file)
    raise ValueError(f"tokenizer must be None, a Tokenizer, a tokenizer.json path or its JSON "
                     f"text, got {type(tokenizer).__name__}")


def _check_truncation(ds: PairDataset, wheres: Sequence[str], truncate: bool) -> None:
    """Note how many captions were cut; with ``truncate=False`` the first one is an error."""
    n_cut = int(ds.truncated.sum())
    if n_cut == 0:
        return
    if not truncate:
        item, slot = (int(v) for v in ds.truncated.nonzero()[0])
        n = ds.tokenizer.n_tokens([ds.captions[item][slot]])[0]
        raise ValueError(f"{wheres[item]}: a caption has {n} tokens, more than the context "
                         f"holds ({ds.context_length} with START and END); shorten it, raise "
                         "-d context_length or drop -d truncate=false")
    ds.notes.append(f"{n_cut} captions longer than the context ({ds.context_length} tokens) "
                    "were truncated")


def _split_size_error(where: Path, split: str, n_total: int) -> DataPathError:
    return DataPathError(f"{where}: the {split} split holds no images ({n_total} in all); give "
                         "more data or change -d test_fraction")


# ---- files on disk -----------------------------------------------------------------------------
def _labels(records: Sequence[Record]) -> tuple[list[int], list[str] | None]:
    """Label ids (-1 unlabeled) in sorted-name order (numeric order when all are integers)."""
    names = sorted({r.label for r in records if r.label is not None})
    if all(n.lstrip("-").isdigit() for n in names):
        names.sort(key=int)
    ids = {n: i for i, n in enumerate(names)}
    return [ids[r.label] if r.label is not None else -1 for r in records], names or None


def _decode(m: Manifest, records: Sequence[Record], size: int, on_error: str,
            min_size: int = MIN_SIZE) -> tuple[Tensor, list[int], list[str]]:
    """Images of ``records`` (N' x 3 x S x S uint8), the kept positions and notes."""
    if m.images is not None:
        rows = np.asarray([r.image for r in records if isinstance(r.image, int)], dtype=np.int64)
        return images_from_array(m.images[rows], size), list(range(len(records))), []
    files = [r.image for r in records if isinstance(r.image, Path)]
    images, kept, errors = decode_files(files, size, [r.where for r in records], skip=True,
                                        min_size=min_size)
    if errors and on_error == "raise":
        first = errors[0]
        raise ImageReadError(f"{first}; or pass -d on_error=skip", first.path, first.where)
    notes = [f"skipped {len(errors)} of {len(records)} images that are missing or unreadable "
             f"(first: {errors[0].where}, {errors[0].path.name})"] if errors else []
    return images, kept, notes


def _images(m: Manifest, records: Sequence[Record], size: int, on_error: str, min_size: int,
            cache: str, limit_gib: float) -> tuple[Tensor | list[Path], list[int], list[str]]:
    """The decoded images (in memory) or the checked files (decoded on access; see ``lazy``),
    the kept positions of ``records`` and notes."""
    if m.images is not None or keep_in_memory(cache, len(m.records), size, limit_gib):
        return _decode(m, records, size, on_error, min_size)
    files = [r.image for r in records if isinstance(r.image, Path)]
    kept, notes = check_files(files, [r.where for r in records], on_error, min_size)
    return files, kept, [*notes, cache_note(cache, len(m.records), size, limit_gib)]


@DATASETS.register("path", scope="image-text",
                   description="a CSV/TSV/JSONL manifest, an .npz, or a folder with .txt captions")
def path(root: str | Path, split: str = "train", seed: int = 0, image_key: str | None = None,
         caption_key: str | None = None, label_key: str | None = None, sep: str | None = None,
         image_size: int = 64, context_length: int = 77, vocab_size: int = 4096,
         tokenizer: Tokenizer | str | Path | None = None, on_error: str = "raise",
         truncate: bool = True, test_fraction: float = 0.2, split_seed: int = 0,
         allow_outside: bool = False, min_size: int = MIN_SIZE, cache: str = "auto",
         cache_limit_gib: float = CACHE_LIMIT_GIB) -> PairDataset:
    """Image-text pairs from disk (see ``manifest``). The split is a ``test_fraction`` one,
    stratified by label and fixed by ``split_seed`` (not the training ``seed``); a BPE is trained
    on the train split's captions unless ``tokenizer`` is given. ``on_error="skip"`` leaves out
    rows with empty captions and missing/unreadable images and counts them in ``notes``.
    ``allow_outside``: accept image paths outside the manifest's folder (refused by default);
    ``min_size``: the shortest accepted image side in px (see ``images``). ``cache``: ``auto``
    decodes the images up front into memory while they fit in ``cache_limit_gib`` GiB, else on
    access (a ``FilePairDataset``); ``memory`` / ``none`` force either (see ``lazy``)."""
    s, on_error, cache = check_split(split), check_on_error(on_error), check_cache(cache)
    m = read_manifest(root, image_key, caption_key, label_key, sep, on_error, allow_outside)
    if not m.records:
        raise DataPathError(f"{m.source} holds no usable rows ({len(m.skipped)} of {m.n_rows} "
                            f"skipped; first: {m.skipped[0] if m.skipped else 'none'}); fix them")
    targets, class_names = _labels(m.records)
    train_idx, test_idx = split_indices(targets, test_fraction, split_seed)
    tok = resolve_tokenizer(tokenizer, [c for i in train_idx for c in m.records[i].captions],
                            vocab_size)
    idx = train_idx if s == "train" else test_idx
    records = [m.records[i] for i in idx]
    source, kept, notes = _images(m, records, image_size, on_error, min_size, cache,
                                  cache_limit_gib)
    if not kept:
        raise _split_size_error(m.source, s, len(m.records))
    if m.skipped:
        notes.insert(0, f"skipped {len(m.skipped)} of {m.n_rows} rows (first: {m.skipped[0]})")
    pairs = ([records[i].captions for i in kept], tok, context_length,
             [targets[idx[i]] for i in kept], class_names, GENERIC_TEMPLATES, notes)
    rows = [records[i].row for i in kept]
    ds = (PairDataset(source, *pairs, rows=rows) if isinstance(source, Tensor) else
          FilePairDataset([source[i] for i in kept], image_size, *pairs, rows=rows,
                          on_error=on_error))
    _check_truncation(ds, [records[i].where for i in kept], truncate)
    return ds
