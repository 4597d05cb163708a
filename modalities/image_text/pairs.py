"""``PairDataset``: images with their tokenized captions, the images decoded in memory (the
shipped OpenMoji, ``.npz`` files and manifests small enough; ``lazy.FilePairDataset`` decodes
larger ones on access and shares everything else through ``_set_pairs``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from anyssl.modalities.text.tokenizer import PAD, Tokenizer

__all__ = ["GENERIC_TEMPLATES", "PairDataset"]

#: Zero-shot prompts for data that names none (a few of open_clip's ImageNet templates).
GENERIC_TEMPLATES = ("a photo of a {}.", "a picture of a {}.", "an image of a {}.", "{}")


class PairDataset(Dataset[tuple[dict[str, Tensor], int]]):
    """Images with their tokenized captions, all in memory.

    Attributes: ``encoder_kwargs`` (in_channels, image_size, vocab_size, context_length),
    ``num_classes``, ``targets`` (N long), ``class_names``, ``captions`` (N lists of str),
    ``tokenizer``, ``prompt_templates``, ``suggested_epochs``, ``notes`` (lines to print),
    ``truncated`` (N x K bool: captions cut to the context) and ``rows`` (each item's source
    row: the npz row, or the manifest line / folder listing index). ``images`` (N x 3 x S x S
    uint8) exists on this in-memory dataset only; ``load_images(indices)`` works on both.

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
        if images.dim() != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
            raise ValueError(f"images must be N x 3 x S x S uint8, got {tuple(images.shape)} "
                             f"{images.dtype}")
        self.images = images
        self._set_pairs(len(images), int(images.shape[-1]), captions, tokenizer, context_length,
                        targets, class_names, prompt_templates, notes, suggested_epochs, rows)

    def _set_pairs(self, n: int, image_size: int, captions: Sequence[Sequence[str]],
                   tokenizer: Tokenizer, context_length: int, targets: Sequence[int] | None,
                   class_names: Sequence[str] | None, prompt_templates: Sequence[str],
                   notes: Sequence[str], suggested_epochs: int | None,
                   rows: Sequence[int] | None) -> None:
        """Everything but the images: captions (tokenized), labels, notes and source rows."""
        if len(captions) != n or any(len(c) == 0 for c in captions):
            raise ValueError(f"give at least one caption for each of the {n} images")
        self.captions = [list(c) for c in captions]
        self.tokenizer, self.context_length = tokenizer, context_length
        self.targets = torch.as_tensor([-1] * n if targets is None else list(targets),
                                       dtype=torch.long)
        self.class_names = list(class_names) if class_names else None
        self.num_classes = len(self.class_names) if self.class_names else None
        self.prompt_templates = list(prompt_templates)
        self.notes, self.suggested_epochs = list(notes), suggested_epochs
        self.rows = list(range(n)) if rows is None else [int(r) for r in rows]
        self.text, self.truncated = self._tokenize_all()
        self.encoder_kwargs = {"in_channels": 3, "image_size": image_size,
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
        return int(self.targets.shape[0])

    def __getitem__(self, index: int) -> tuple[dict[str, Tensor], int]:
        return ({"image": self.images[index], "text": self.text[index].long()},
                int(self.targets[index]))

    def load_images(self, indices: Sequence[int] | Tensor) -> Tensor:
        """The images of items ``indices``: B x 3 x S x S uint8 (the lazy dataset decodes
        just these; evaluation code that wants images without the loader calls this)."""
        return self.images[torch.as_tensor(indices, dtype=torch.long)]

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
