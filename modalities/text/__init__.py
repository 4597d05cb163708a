"""Text modality: a byte-level BPE tokenizer (HF ``tokenizers``), Transformer and
bag-of-embeddings encoders, token dropout / masking / caption sampling.

Importing this package registers, with ``scope="text"``: the augmentations ``token_dropout``,
``token_mask``, ``sample_caption``; the encoders ``transformer`` and ``bag``; the dataset
``openmoji`` (emoji names, default); and the ``text`` Modality. The image-text modality builds
its text tower and caption views from these.
"""

from anyssl.modalities.text import augment, datasets, encoders  # noqa: F401  (registers parts)
from anyssl.modalities.text.recipes import text_recipe
from anyssl.modalities.text.tokenizer import (
    END,
    MASK,
    N_SPECIAL,
    PAD,
    START,
    Tokenizer,
    train_tokenizer,
)
from anyssl.modality import Modality, register_modality

MODALITY = register_modality(Modality(
    name="text",
    description="token ids (B x L) from a byte-level BPE: token dropout/masking; Transformer, bag",
    default_dataset="openmoji",
    default_encoder="bag",  # CPU-sized like image-text's text tower; --encoder transformer
    recipe=text_recipe,
))

__all__ = ["END", "MASK", "MODALITY", "N_SPECIAL", "PAD", "START", "Tokenizer", "text_recipe",
           "train_tokenizer"]
