"""The embedded default of the image-text modality: OpenMoji (CC BY-SA 4.0), 2,134 emoji
rendered 64x64 on white with their names and tags, labeled by Unicode group (attribution in
``data/README.md``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from anyssl.modalities.image_text.datasets import PairDataset, _check_truncation, resolve_tokenizer
from anyssl.modalities.image_text.images import images_from_array
from anyssl.modalities.text.tokenizer import Tokenizer
from anyssl.registry import DATASETS
from anyssl.splits import check_split, split_indices

__all__ = ["OPENMOJI_CLASS_NAMES", "OPENMOJI_EPOCHS", "OPENMOJI_FILE", "OPENMOJI_SPLIT_SEED",
           "OPENMOJI_TEMPLATES", "openmoji", "pretty_group"]

OPENMOJI_FILE = Path(__file__).parent / "data" / "openmoji64.npz"
#: The openmoji 80/20 split (stratified by group) is fixed by this seed, whatever the run's seed.
OPENMOJI_SPLIT_SEED = 0
OPENMOJI_TEST_FRACTION = 0.2
#: Training length of a run on openmoji that sets no epochs.
OPENMOJI_EPOCHS = 30
OPENMOJI_TEMPLATES = ("an emoji of {}.", "{}", "an icon of {}.", "a {} emoji.")
CAPTION_CHOICES = ("name", "name+tags")


def pretty_group(group: str) -> str:
    """A Unicode emoji group as words: ``smileys-emotion`` -> ``smileys and emotion``,
    ``extras-openmoji`` -> ``openmoji extras``."""
    if group.startswith("extras-"):
        return f"{group.removeprefix('extras-')} extras"
    return group.replace("-", " and ")


#: Zero-shot class names of the 12 groups: one or two words a caption of that group would use
#: (CLIP renames classes the same way, Radford et al. 2021, sec. 3.1.4). Chosen from three
#: namings (these, ``pretty_group`` and the group's first word) by zero-shot accuracy on the
#: TRAIN split, never the held-out one.
OPENMOJI_CLASS_NAMES = {
    "activities": "activity", "animals-nature": "animal", "component": "component",
    "extras-openmoji": "openmoji extra", "extras-unicode": "unicode extra", "flags": "flag",
    "food-drink": "food", "objects": "object", "people-body": "people",
    "smileys-emotion": "face", "symbols": "symbol", "travel-places": "travel",
}


@lru_cache(maxsize=2)
def _openmoji_all(image_size: int) -> tuple[Tensor, tuple[str, ...], tuple[str, ...],
                                            tuple[str, ...]]:
    with np.load(OPENMOJI_FILE, allow_pickle=False) as d:
        images = images_from_array(d["images"], image_size)
        return (images, tuple(map(str, d["captions"])), tuple(map(str, d["tags"])),
                tuple(map(str, d["groups"])))


@DATASETS.register("openmoji", scope="image-text",
                   description="2,134 OpenMoji emoji (64x64) with their names, 12 groups")
def openmoji(split: str = "train", seed: int = 0, captions: str = "name+tags",
             context_length: int = 32, vocab_size: int = 4096,
             tokenizer: Tokenizer | str | Path | None = None,
             image_size: int = 64) -> PairDataset:
    """OpenMoji (CC BY-SA 4.0): 2,134 emoji rendered 64x64 on white, each captioned with its
    English name and, by default (``captions="name+tags"``), its tag list as a second caption
    (``captions="name"``: the name only), labeled by its Unicode group (12 classes, ordered by
    raw group name, named for zero-shot by ``OPENMOJI_CLASS_NAMES``). The stratified 80/20
    split is fixed by ``OPENMOJI_SPLIT_SEED``, whatever the training ``seed``."""
    s = check_split(split)
    if captions not in CAPTION_CHOICES:
        raise ValueError(f"captions must be one of {', '.join(CAPTION_CHOICES)}, got "
                         f"{captions!r}")
    images, names, tags, groups = _openmoji_all(image_size)
    raw = sorted(set(groups))
    y = np.asarray([raw.index(g) for g in groups])
    texts = [[n, t] if captions == "name+tags" and t.strip() else [n]
             for n, t in zip(names, tags, strict=True)]
    train_idx, test_idx = split_indices(y, OPENMOJI_TEST_FRACTION, OPENMOJI_SPLIT_SEED)
    tok = resolve_tokenizer(tokenizer, [t for i in train_idx for t in texts[i]], vocab_size)
    idx = train_idx if s == "train" else test_idx
    ds = PairDataset(images[torch.as_tensor(idx)], [texts[i] for i in idx], tok, context_length,
                     y[idx].tolist(), [OPENMOJI_CLASS_NAMES.get(g, pretty_group(g)) for g in raw],
                     OPENMOJI_TEMPLATES,
                     suggested_epochs=OPENMOJI_EPOCHS, rows=idx.tolist())
    _check_truncation(ds, [f"{OPENMOJI_FILE.name} row {i}" for i in idx], truncate=True)
    return ds
