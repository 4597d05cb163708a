"""Image-text datasets: ``PairDataset`` (images and tokenized captions in memory) and the
factories ``openmoji`` (shipped; the default) and ``path`` (a CSV/TSV/JSONL manifest, a folder of
images with ``.txt`` captions, or an ``.npz``), registered in ``DATASETS`` scope "image-text".

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
import torch
from torch import Tensor
from torch.utils.data import Dataset

from anyssl.modalities.image.datasets import DataPathError
from anyssl.modalities.image.datasets_scan import MIN_SIZE
from anyssl.modalities.image_text.images import ImageReadError, decode_files, images_from_array
from anyssl.modalities.image_text.manifest import (
    Manifest,
    Record,
    check_on_error,
    read_manifest,
)
from anyssl.modalities.text.tokenizer import PAD, Tokenizer, train_tokenizer
from anyssl.registry import DATASETS
from anyssl.splits import check_split, split_indices

__all__ = ["GENERIC_TEMPLATES", "PairDataset", "path", "resolve_tokenizer"]

#: Zero-shot prompts for data that names none (a few of open_clip's ImageNet templates).
GENERIC_TEMPLATES = ("a photo of a {}.", "a picture of a {}.", "an image of a {}.", "{}")


class PairDataset(Dataset[tuple[dict[str, Tensor], int]]):
    """Images with their tokenized captions, all in memory.

    Attributes: ``encoder_kwargs`` (in_channels, image_size, vocab_size, context_length),
    ``num_classes``, ``targets`` (N long), ``class_names``, ``captions`` (N lists of str),
    ``tokenizer``, ``prompt_templates``, ``suggested_epochs``, ``notes`` (lines to print),
    ``truncated`` (N x K bool: captions cut to the context) and ``rows`` (each item's source
    row: the npz row, or the manifest line / folder listing index).

    Shape:
        images: ``N x 3 x S x S`` uint8; items ``({"image": 3 x S x S uint8, "text": K x L
        long}, label)`` with K the most captions of any image and L ``context_length``.
    """

    def __init__(self, images: Tensor, captions: Sequence[Sequence[str]], tokenizer: Tokenizer,
                 context_length: int, targets: Sequence[int] | None = None,
                 class_names: Sequence[str] | None = None,
                 prompt_templates: Sequence[str] = GENERIC_TEMPLATES,
                 notes: Sequence[str] = (), suggested_epochs: int | None = None,
                 rows: Sequence[int] | None = None) -> None:
        n = len(images)
        if images.dim() != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
            raise ValueError(f"images must be N x 3 x S x S uint8, got {tuple(images.shape)} "
                             f"{images.dtype}")
        if len(captions) != n or any(len(c) == 0 for c in captions):
            raise ValueError(f"give at least one caption for each of the {n} images")
        self.images, self.captions = images, [list(c) for c in captions]
        self.tokenizer, self.context_length = tokenizer, context_length
        self.targets = torch.as_tensor([-1] * n if targets is None else list(targets),
                                       dtype=torch.long)
        self.class_names = list(class_names) if class_names else None
        self.num_classes = len(self.class_names) if self.class_names else None
        self.prompt_templates = list(prompt_templates)
        self.notes, self.suggested_epochs = list(notes), suggested_epochs
        self.rows = list(range(n)) if rows is None else [int(r) for r in rows]
        self.text, self.truncated = self._tokenize_all()
        self.encoder_kwargs = {"in_channels": 3, "image_size": int(images.shape[-1]),
                               "vocab_size": tokenizer.vocab_size,
                               "context_length": context_length}

    def _tokenize_all(self) -> tuple[Tensor, Tensor]:
        k = max((len(c) for c in self.captions), default=1)
        flat = [t for c in self.captions for t in c]
        ids, cut = self.tokenizer.encode(flat, self.context_length)  # ids: M x L, cut: M
        slot = torch.tensor([j for c in self.captions for j in range(len(c))], dtype=torch.long)
        owner = torch.repeat_interleave(torch.tensor([len(c) for c in self.captions]))
        text = torch.full((len(self.captions), k, self.context_length), PAD, dtype=torch.int32)
        truncated = torch.zeros(len(self.captions), k, dtype=torch.bool)
        text[owner, slot] = ids.to(torch.int32)  # text: N x K x L
        truncated[owner, slot] = cut
        return text, truncated

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[dict[str, Tensor], int]:
        return ({"image": self.images[index], "text": self.text[index].long()},
                int(self.targets[index]))

    def tokenize(self, texts: Sequence[str]) -> Tensor:
        """Token ids of ``texts`` (class prompts) with this dataset's tokenizer: N x L long."""
        return self.tokenizer.encode(list(texts), self.context_length)[0]

    @staticmethod
    def split_rows(text: Tensor) -> tuple[Tensor, Tensor]:
        """The non-empty caption rows of a batch and the item each belongs to.

        Shape:
            text: ``B x K x L`` (or ``B x L``) -> rows ``M x L``, owner ``M`` long.
        """
        if text.dim() == 2:
            return text, torch.arange(len(text), device=text.device)
        filled = (text != PAD).any(-1)  # B x K
        owner = filled.nonzero()[:, 0]
        return text[filled], owner

    def data_state(self) -> dict[str, str]:
        """What a checkpoint must keep to read text as this run did: the tokenizer JSON."""
        return {"tokenizer": self.tokenizer.to_str()}


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


@DATASETS.register("path", scope="image-text",
                   description="a CSV/TSV/JSONL manifest, an .npz, or a folder with .txt captions")
def path(root: str | Path, split: str = "train", seed: int = 0, image_key: str | None = None,
         caption_key: str | None = None, label_key: str | None = None, sep: str | None = None,
         image_size: int = 64, context_length: int = 77, vocab_size: int = 4096,
         tokenizer: Tokenizer | str | Path | None = None, on_error: str = "raise",
         truncate: bool = True, test_fraction: float = 0.2, split_seed: int = 0,
         allow_outside: bool = False, min_size: int = MIN_SIZE) -> PairDataset:
    """Image-text pairs from disk (see ``manifest``). The split is a ``test_fraction`` one,
    stratified by label and fixed by ``split_seed`` (not the training ``seed``); a BPE is trained
    on the train split's captions unless ``tokenizer`` is given. ``on_error="skip"`` leaves out
    rows with empty captions and missing/unreadable images and counts them in ``notes``.
    ``allow_outside``: accept image paths outside the manifest's folder (refused by default);
    ``min_size``: the shortest accepted image side in px (see ``images``)."""
    s, on_error = check_split(split), check_on_error(on_error)
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
    images, kept, notes = _decode(m, records, image_size, on_error, min_size)
    if not kept:
        raise _split_size_error(m.source, s, len(m.records))
    if m.skipped:
        notes.insert(0, f"skipped {len(m.skipped)} of {m.n_rows} rows (first: {m.skipped[0]})")
    ds = PairDataset(images, [records[i].captions for i in kept], tok, context_length,
                     [targets[idx[i]] for i in kept], class_names,
                     GENERIC_TEMPLATES, notes, rows=[records[i].row for i in kept])
    _check_truncation(ds, [records[i].where for i in kept], truncate)
    return ds
