"""Text datasets: token ids with labels, for SSL on text alone (and as the text side of pairs).

The embedded default ``openmoji`` is the OpenMoji emoji names, labelled by their 12 Unicode
groups, with the same fixed split and tokenizer training as the image-text ``openmoji``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from anyssl.modalities.text.tokenizer import Tokenizer
from anyssl.registry import DATASETS

__all__ = ["TextDataset", "openmoji"]


class TextDataset(Dataset[tuple[Tensor, int]]):
    """Token ids of one text per sample.

    Attributes: ``encoder_kwargs`` (``vocab_size``, ``context_length``), ``num_classes``,
    ``targets``, ``class_names``, ``texts``, ``tokenizer``, ``data_state()``.

    Shape: items ``(L long, label)``, L the context length.
    """

    def __init__(self, texts: Sequence[str], tokenizer: Tokenizer, context_length: int,
                 targets: Sequence[int] | Tensor, class_names: Sequence[str] | None = None,
                 suggested_epochs: int | None = None) -> None:
        self.texts, self.tokenizer = list(texts), tokenizer
        self.ids, _ = tokenizer.encode(self.texts, context_length)  # N x L
        self.targets = torch.as_tensor(targets, dtype=torch.long)
        self.class_names = list(class_names) if class_names else None
        self.num_classes = len(self.class_names) if self.class_names else None
        self.suggested_epochs = suggested_epochs
        self.encoder_kwargs = {"vocab_size": tokenizer.vocab_size,
                               "context_length": context_length}

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.ids[index], int(self.targets[index])

    def data_state(self) -> dict[str, Any]:
        """What a checkpoint keeps to rebuild this data identically: the tokenizer."""
        return {"tokenizer": self.tokenizer.to_str()}


@DATASETS.register("openmoji", scope="text",
                   description="OpenMoji's 2,134 emoji names, 12 group labels (embedded)")
def openmoji(split: str = "train", seed: int = 0, context_length: int = 32,
             vocab_size: int = 4096, tokenizer: Tokenizer | str | None = None) -> TextDataset:
    """The emoji names of the image-text ``openmoji`` split (same split, same tokenizer)."""
    from anyssl.modalities.image_text.openmoji import openmoji as pairs

    ds = pairs(split, seed, captions="name", context_length=context_length,
               vocab_size=vocab_size, tokenizer=tokenizer)
    return TextDataset([c[0] for c in ds.captions], ds.tokenizer, context_length, ds.targets,
                       ds.class_names, suggested_epochs=ds.suggested_epochs)
