"""Byte-level BPE tokenizer for captions: text -> ``N x L`` token ids with fixed specials.

Byte-pair encoding (Sennrich et al. 2016, "Neural machine translation of rare words with subword
units") over bytes rather than characters (Radford et al. 2019, GPT-2), so any text encodes
without an unknown token. As CLIP (Radford et al. 2021) does, text is lowercased and its
whitespace collapsed before BPE, and every row is ``START tok... END PAD...``; CLIP's context
length is 77 tokens. A row too long is truncated with END kept at position ``L - 1`` (open_clip's
``tokenize``).

The Hugging Face ``tokenizers`` model has no special tokens of its own: our ids are the HF ids
shifted by ``N_SPECIAL`` (HF id ``h`` -> ``h + N_SPECIAL``), so the four specials below are the
same for every tokenizer, including any ``tokenizer.json`` loaded with ``Tokenizer.from_file``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import tokenizers
import torch
from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, trainers
from torch import Tensor

__all__ = ["END", "MASK", "N_SPECIAL", "PAD", "START", "Tokenizer", "train_tokenizer"]

PAD = 0  #: padding after END; the padding mask of a batch is ``ids != PAD``
START = 1  #: first token of every row (CLIP's ``<start_of_text>``)
END = 2  #: right after the last text token (CLIP's ``<end_of_text>``); text encoders pool here
MASK = 3  #: a masked-out text token (``token_mask``, as BERT's ``[MASK]``)
N_SPECIAL = 4  #: HF id ``h`` is our id ``h + N_SPECIAL``


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


class Tokenizer:
    """Wraps a ``tokenizers.Tokenizer`` (HF) and maps its ids past the ``N_SPECIAL`` specials.

    Build one with ``train_tokenizer(texts)``, ``Tokenizer.from_file(path)`` or
    ``Tokenizer.from_str(json)``; ``to_str()`` / ``save(path)`` give the JSON back (stored with a
    checkpoint, so evaluation tokenizes exactly as training did).
    """

    def __init__(self, hf: tokenizers.Tokenizer) -> None:
        self.hf = hf

    @classmethod
    def from_file(cls, path: str | Path) -> Tokenizer:
        """Load a Hugging Face ``tokenizer.json`` (one saved by ``save`` or any other)."""
        try:
            return cls(tokenizers.Tokenizer.from_file(str(path)))
        except Exception as err:  # the Rust side raises a plain Exception
            raise ValueError(
                f"cannot load tokenizer file {str(path)!r} ({_first_line(err)}); pass the path "
                "of a Hugging Face tokenizer.json, e.g. one written by Tokenizer.save"
            ) from None

    @classmethod
    def from_str(cls, json_str: str) -> Tokenizer:
        """Load a tokenizer from its JSON text (``to_str()`` of a saved one)."""
        try:
            return cls(tokenizers.Tokenizer.from_str(json_str))
        except Exception as err:  # the Rust side raises a plain Exception
            raise ValueError(
                f"cannot read a tokenizer from the given JSON string ({_first_line(err)}); "
                "pass the text of a Hugging Face tokenizer.json (Tokenizer.to_str())"
            ) from None

    def to_str(self) -> str:
        """The tokenizer as compact JSON (``Tokenizer.from_str`` reads it back)."""
        return self.hf.to_str()

    def save(self, path: str | Path) -> None:
        """Write the tokenizer as a ``tokenizer.json`` file."""
        self.hf.save(str(path))

    @property
    def vocab_size(self) -> int:
        """Number of ids: the HF vocabulary (with its added tokens) plus ``N_SPECIAL``."""
        return int(self.hf.get_vocab_size(with_added_tokens=True)) + N_SPECIAL

    def _hf_ids(self, texts: Sequence[str] | str) -> list[list[int]]:
        if isinstance(texts, str):
            texts = [texts]
        if not all(isinstance(t, str) for t in texts):
            bad = next(type(t).__name__ for t in texts if not isinstance(t, str))
            raise ValueError(f"tokenizer input must be strings, got a {bad}; pass a list of str")
        encs = self.hf.encode_batch(list(texts), add_special_tokens=False)
        return [e.ids for e in encs]

    def encode(self, texts: Sequence[str] | str, context_length: int) -> tuple[Tensor, Tensor]:
        """Token ids of ``texts``, one row each: ``START tok... END PAD...``.

        A text with more than ``context_length - 2`` tokens is cut, END staying at position
        ``context_length - 1`` (open_clip). A single string counts as a list of one.

        Shape:
            returns ``ids`` N x L long (L = ``context_length``) and ``truncated`` N bool.
        """
        if isinstance(context_length, bool) or not isinstance(context_length, int) or (
            context_length < 3
        ):
            raise ValueError(
                f"context_length must be an int >= 3 (START, a token, END), got {context_length!r}"
            )
        keep = context_length - 2
        rows, truncated = [], []
        for hf_ids in self._hf_ids(texts):
            toks = [h + N_SPECIAL for h in hf_ids[:keep]]
            pad = [PAD] * (keep - len(toks))
            rows.append([START, *toks, END, *pad])
            truncated.append(len(hf_ids) > keep)
        ids = torch.tensor(rows, dtype=torch.long).view(len(rows), context_length)
        return ids, torch.tensor(truncated, dtype=torch.bool)

    def n_tokens(self, texts: Sequence[str] | str) -> list[int]:
        """Number of BPE tokens of each text (without START / END; before any truncation)."""
        return [len(ids) for ids in self._hf_ids(texts)]

    def decode(self, ids: Tensor | Sequence[int]) -> str:
        """The text of one row of ids (``L`` long or a list), specials skipped."""
        if isinstance(ids, Tensor):
            if ids.dim() != 1:
                raise ValueError(f"decode takes one row of ids (1-D), got shape {tuple(ids.shape)}")
            ids = ids.tolist()
        hf_ids = [int(i) - N_SPECIAL for i in ids if int(i) >= N_SPECIAL]
        return self.hf.decode(hf_ids, skip_special_tokens=True).strip()

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size})"


def _normalizer() -> normalizers.Normalizer:
    """Lowercase, collapse runs of whitespace to one space, strip the ends (CLIP's cleaning)."""
    return normalizers.Sequence(
        [normalizers.Lowercase(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]
    )


def train_tokenizer(
    texts: Sequence[str], vocab_size: int = 4096, min_frequency: int = 2
) -> Tokenizer:
    """Train a byte-level BPE on ``texts`` (deterministic: same texts -> same ``to_str()``).

    ``vocab_size`` counts the 256 byte symbols and the merges, not our ``N_SPECIAL`` specials
    (``Tokenizer.vocab_size`` adds them); a merge needs ``min_frequency`` occurrences, so a small
    corpus may stop below ``vocab_size``.
    """
    if isinstance(texts, str) or not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("train_tokenizer needs a non-empty list of strings (the captions)")
    if vocab_size < 256 or min_frequency < 1:
        raise ValueError(
            f"train_tokenizer needs vocab_size >= 256 (the byte alphabet) and min_frequency >= 1, "
            f"got {vocab_size} and {min_frequency}"
        )
    hf = tokenizers.Tokenizer(models.BPE())
    hf.normalizer = _normalizer()
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    hf.train_from_iterator(list(texts), trainer=trainer, length=len(texts))
    return Tokenizer(hf)
