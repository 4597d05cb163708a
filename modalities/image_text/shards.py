"""The image-text ``shards`` dataset: image-caption pairs read from WebDataset shards
(``--data "shards/train-{000000..000127}.tar"``, a folder of ``.tar`` files, one ``.tar``), the
format img2dataset writes (``key.jpg`` + ``key.txt`` + ``key.json``) and ``anyssl shards``
writes. Items are those of the manifest dataset (``PairDataset``): ``({"image": uint8 3 x S x S,
"text": long K x L}, label)``.

Captions. A sample's captions are its json ``captions`` (a list), else json ``caption``,
``text`` or ``title`` (a string or a list), else the non-empty lines of its ``txt`` member.
Every sample's text members (``txt``, ``json``, ``cls``; never an image) are read once, when
the dataset is built, for its label and caption count. A split of up to ``-d
text_in_memory_max`` samples (100,000) then keeps its captions in memory with their tokens, as
the manifest dataset does; a larger one keeps none (memory stays flat at any size): each item's
captions are read and tokenized on access, in the loader workers, with the image. The byte-level
BPE is trained on the train split's captions (a seeded sample of ``TOKENIZER_SAMPLE`` of them
for a larger split) unless ``-d tokenizer=FILE`` gives one; the truncation note counts the
captions held (or that sample). A
sample without a caption is an error naming its shard and key, or with ``-d on_error=skip``
(the default) left out and counted. Labels, the held-out split (``-d test=SPEC`` or a stratified
``-d test_fraction``), zero-shot class names (the manifest's ``meta.label_names``) and the epoch
order are the image side's (``anyssl.modalities.image.shard_data``). Images are decoded on
access, in the loader workers, as the manifest dataset decodes a file (shorter side to
``image_size``, default the size the shards were written at, else 64; centre square; RGB).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast, overload

import numpy as np
import torch
from torch import Tensor

from anyssl.modalities.image.datasets import DataPathError
from anyssl.modalities.image.datasets_folder import check_on_error
from anyssl.modalities.image.datasets_scan import MIN_SIZE
from anyssl.modalities.image.datasets_shards import decode_image, image_bytes
from anyssl.modalities.image.shard_data import (
    DEFAULT_SHUFFLE_WINDOW,
    Label,
    ShardSubset,
    class_ids,
    json_member,
    open_shards,
    raw_label,
    scan_members,
    shard_meta,
)
from anyssl.modalities.image_text.datasets import _check_truncation, resolve_tokenizer
from anyssl.modalities.image_text.manifest_rows import clean_captions
from anyssl.modalities.image_text.pairs import GENERIC_TEMPLATES, PairDataset
from anyssl.modalities.text.tokenizer import PAD, Tokenizer
from anyssl.registry import DATASETS
from anyssl.shards import ShardSet, read_with_fallback
from anyssl.splits import check_split, split_indices

__all__ = ["CAPTION_KEYS", "ShardPairDataset", "captions_of", "shards"]

#: json keys read as captions, in order (img2dataset writes ``caption``).
CAPTION_KEYS = ("captions", "caption", "text", "title")
TEXT_MEMBERS = ("txt", "json", "cls")
#: The image side of shards that do not say their size.
DEFAULT_IMAGE_SIZE = 64
Text = tuple[tuple[str, ...], Label]
#: Splits with more samples keep no captions in memory (``-d text_in_memory_max``).
TEXT_IN_MEMORY_MAX = 100_000
#: A large split's tokenizer is trained on a seeded sample of this many of its samples.
TOKENIZER_SAMPLE = 100_000


def captions_of(members: dict[str, bytes]) -> tuple[str, ...]:
    """A sample's captions (see the module docstring); ``ValueError`` when it has none."""
    obj = json_member(members)
    for key in CAPTION_KEYS:
        value = obj.get(key)
        if value:
            found = clean_captions(value if isinstance(value, list) else [value])
            if found:
                return found
    found = clean_captions(members["txt"].decode("utf-8").splitlines()) \
        if "txt" in members else ()
    if not found:
        raise ValueError(f"no caption (a .txt member or json {'/'.join(CAPTION_KEYS)})")
    return found


def text_and_label(members: dict[str, bytes]) -> Text:
    """``(captions, raw label)`` of a sample's text members."""
    return captions_of(members), raw_label(members)


def count_and_label(members: dict[str, bytes]) -> tuple[int, Label]:
    """``(number of captions, raw label)``: what the start-up scan keeps of every sample."""
    return len(captions_of(members)), raw_label(members)


def read_captions(shards: ShardSet, indices: Sequence[int] | np.ndarray
                  ) -> list[tuple[str, ...]]:
    """The captions of samples ``indices`` (text members only; scanned before, so readable)."""
    return [captions_of(shards.read(int(i), TEXT_MEMBERS)[1]) for i in indices]


class _Wheres(Sequence[str]):
    """``"shard X.tar, key K"`` of each item, looked up only when a message needs one."""

    def __init__(self, shards: ShardSet, indices: np.ndarray) -> None:
        self.shards, self.indices = shards, indices

    def __len__(self) -> int:
        return len(self.indices)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[str]: ...
    def __getitem__(self, i: int | slice) -> str | Sequence[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        return self.shards.describe(int(self.indices[i]))


class ShardPairDataset(ShardSubset, PairDataset):
    """Image-caption pairs of WebDataset shards: images decoded on access (``file_backed``),
    captions tokenized in memory; otherwise a ``PairDataset`` (same attributes but ``images``,
    same items). A sample replaced after a read error (``-d on_error=skip``) brings its own
    captions and label.
    """

    def __init__(self, shards: ShardSet, indices: np.ndarray, image_size: int,
                 captions: Sequence[Sequence[str]] | None, tokenizer: Tokenizer,
                 context_length: int, targets: Sequence[int],
                 class_names: Sequence[str] | None = None,
                 prompt_templates: Sequence[str] = GENERIC_TEMPLATES, notes: Sequence[str] = (),
                 suggested_epochs: int | None = None,
                 shuffle_window: int = DEFAULT_SHUFFLE_WINDOW, min_size: int = MIN_SIZE,
                 max_captions: int = 1, truncate: bool = True) -> None:
        if image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        self._init_subset(shards, indices, shuffle_window)
        self.image_size, self.min_size, self.truncate = image_size, min_size, truncate
        if captions is not None:
            self._set_pairs(len(indices), image_size, captions, tokenizer, context_length,
                            targets, class_names, prompt_templates, notes, suggested_epochs,
                            [int(i) for i in indices])
        else:  # captions read and tokenized on access: nothing per sample but the label
            self._set_lazy(indices, image_size, tokenizer, context_length, targets, class_names,
                           prompt_templates, notes, suggested_epochs, max_captions)
        self.lazy_text = captions is None
        self._ids = {name: i for i, name in enumerate(self.class_names or [])}

    def _set_lazy(self, indices: np.ndarray, image_size: int, tokenizer: Tokenizer,
                  context_length: int, targets: Sequence[int],
                  class_names: Sequence[str] | None, prompt_templates: Sequence[str],
                  notes: Sequence[str], suggested_epochs: int | None, max_captions: int) -> None:
        """``_set_pairs`` without captions: ``captions`` None, ``text`` and ``truncated`` empty
        (their K is the most captions of any sample), ``rows`` the indices array."""
        self.captions = cast(Any, None)
        self.tokenizer, self.context_length = tokenizer, context_length
        self.targets = torch.as_tensor(np.asarray(targets), dtype=torch.long)
        self.class_names = list(class_names) if class_names else None
        self.num_classes = len(self.class_names) if self.class_names else None
        self.prompt_templates = list(prompt_templates)
        self.notes, self.suggested_epochs = list(notes), suggested_epochs
        self.rows = cast(Any, indices)
        k = max(1, max_captions)
        self.text = torch.zeros(0, k, context_length, dtype=torch.int32)
        self.truncated = torch.zeros(0, k, dtype=torch.bool)
        self.encoder_kwargs = {"in_channels": 3, "image_size": image_size,
                               "vocab_size": tokenizer.vocab_size,
                               "context_length": context_length}

    def _decode(self, key: str, members: dict[str, bytes]) -> tuple[Tensor, Text]:
        text = text_and_label(members)
        return decode_image(image_bytes(members), self.image_size, 3, self.min_size), text

    def _tokens(self, captions: Sequence[str]) -> Tensor:
        """``K x L`` long token ids of captions read on access (rows of PAD after)."""
        k = int(self.text.shape[1])
        ids, cut = self.tokenizer.encode(list(captions)[:k], self.context_length)
        if not self.truncate and bool(cut.any()):
            raise ValueError(f"a caption of {captions[0][:40]!r}... has more tokens than the "
                             f"context holds ({self.context_length}); raise -d context_length "
                             "or drop -d truncate=false")
        out = torch.full((k, self.context_length), PAD, dtype=torch.long)
        out[: len(ids)] = ids
        return out

    def __getitem__(self, index: int) -> tuple[dict[str, Tensor], int]:
        image, (captions, label) = read_with_fallback(self.shards, self.global_index(index),
                                                      self._decode, self.allowed)
        if not self.lazy_text and list(captions) == self.captions[index]:  # the sample itself
            return {"image": image, "text": self.text[index].long()}, int(self.targets[index])
        target = -1 if label is None else label if isinstance(label, int) else self._ids[label]
        return {"image": image, "text": self._tokens(captions)}, target

    def load_images(self, indices: Sequence[int] | Tensor) -> Tensor:
        """The images of items ``indices`` decoded now: B x 3 x S x S uint8."""
        picks = [int(i) for i in torch.as_tensor(indices, dtype=torch.long).reshape(-1)]
        if not picks:
            return torch.zeros(0, 3, self.image_size, self.image_size, dtype=torch.uint8)
        return torch.stack([self[i][0]["image"] for i in picks])


def _split(scans: list[list[Text | None]], ids: list[list[int]], test_fraction: float,
           split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices into the first shard set, or into each set (held-out shards):
    the samples with captions, a stratified ``test_fraction`` split without held-out shards."""
    usable = [np.flatnonzero([r is not None for r in scan]) for scan in scans]
    if len(scans) == 2:
        return usable[0], usable[1]
    tr, te = split_indices([ids[0][i] for i in usable[0]], test_fraction, split_seed)
    return usable[0][tr], usable[0][te]


@DATASETS.register("shards", scope="image-text",
                   description="WebDataset tars of image + caption: dir/train-{0..9}.tar, a folder")
def shards(root: str | Path, split: str = "train", seed: int = 0, image_size: int | None = None,
           context_length: int = 77, vocab_size: int = 4096,
           tokenizer: Tokenizer | str | Path | None = None, on_error: str = "skip",
           truncate: bool = True, test_fraction: float = 0.2, split_seed: int = 0,
           min_size: int = MIN_SIZE, shuffle_window: int = DEFAULT_SHUFFLE_WINDOW,
           test: str | None = None, text_in_memory_max: int = TEXT_IN_MEMORY_MAX
           ) -> ShardPairDataset:
    """The ``split`` of the image-caption shards ``root`` names (module docstring): ``test``
    names held-out shards, else a stratified ``test_fraction`` split seeded by ``split_seed``;
    a BPE is trained on the train split's captions unless ``tokenizer`` is given."""
    s, on_error = check_split(split), check_on_error(on_error)
    if text_in_memory_max < 0:
        raise ValueError(f"text_in_memory_max must be >= 0 (0: always read captions on "
                         f"access), got {text_in_memory_max}")
    parts = [open_shards(root, on_error)] + ([open_shards(test, on_error)] if test else [])
    meta = shard_meta(parts[0])
    scans = [scan_members(p, TEXT_MEMBERS, count_and_label) for p in parts]
    ids, class_names = class_ids([[r[1] if r else None for r in scan] for scan in scans],
                                 meta.get("label_names"))
    train_idx, test_idx = _split(scans, ids, test_fraction, split_seed)
    sample = _sample(train_idx, split_seed) if tokenizer is None else train_idx[:0]
    tok = resolve_tokenizer(tokenizer, [c for cs in read_captions(parts[0], sample) for c in cs],
                            vocab_size)
    which = 1 if s == "test" and test else 0
    idx, scan = (train_idx if s == "train" else test_idx), scans[which]
    if len(idx) == 0:
        raise DataPathError(f"the {s} split of shards {root} holds no samples with a caption; "
                            "give more shards or change -d test_fraction")
    lazy = len(idx) > text_in_memory_max
    notes = [f"shards: the {s} split holds {len(idx):,} of {len(parts[which]):,} samples "
             f"in {len(parts[which].shards)} shards" + (
                 "; captions read and tokenized on access" if lazy else "")]
    missing = sum(r is None for r in scan)
    if missing:
        notes.append(f"skipped {missing} samples without a readable caption")
    written = meta.get("image_size")
    size = image_size or (written if isinstance(written, int) else DEFAULT_IMAGE_SIZE)
    ds = ShardPairDataset(
        parts[which], idx, size, None if lazy else read_captions(parts[which], idx), tok,
        context_length, [ids[which][i] for i in idx], class_names,
        meta.get("prompt_templates") or GENERIC_TEMPLATES, notes,
        _int_or_none(meta.get("suggested_epochs")), shuffle_window, min_size,
        max(cast(tuple[int, Label], scan[i])[0] for i in idx), truncate)
    if not lazy:
        _check_truncation(cast(Any, ds), _Wheres(parts[which], idx), truncate)
    return ds


def _sample(indices: np.ndarray, seed: int) -> np.ndarray:
    """All of ``indices``, or a seeded sorted sample of ``TOKENIZER_SAMPLE`` of them."""
    if len(indices) <= TOKENIZER_SAMPLE:
        return indices
    picked = np.random.default_rng(seed).choice(len(indices), TOKENIZER_SAMPLE, replace=False)
    return indices[np.sort(picked)]


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
