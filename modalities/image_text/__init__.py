"""Image-text modality: paired images and captions for CLIP (Radford et al. 2021).

Importing this package registers, with ``scope="image-text"``: the datasets ``openmoji``
(default, embedded), ``path`` (CSV/TSV/JSONL manifests, a folder of images with ``.txt``
captions, an ``.npz``) and ``shards`` (WebDataset tars); the encoder ``dual`` (an image tower
from the image modality and a text tower from the text modality); and the ``image-text``
Modality, whose method is ``clip`` and whose default evaluation is zero-shot classification,
retrieval and the linear probe.
"""

import anyssl.modalities.image
import anyssl.modalities.text  # noqa: F401  (the text tower, tokenizer, caption views)
from anyssl.modalities.image_text import (  # noqa: F401  (registers)
    datasets,
    encoders,
    openmoji,
    report,
    shards,
)
from anyssl.modalities.image_text.recipes import image_text_recipe
from anyssl.modality import Modality, register_modality

MODALITY = register_modality(Modality(
    name="image-text",
    description="image-caption pairs ({'image': uint8 B x 3 x S x S, 'text': B x K x L}): CLIP",
    default_dataset="openmoji",
    default_encoder="dual",
    recipe=image_text_recipe,
    methods=("clip",),
    eval_protocols=("zeroshot", "retrieval", "linear"),
))

__all__ = ["MODALITY", "image_text_recipe"]
