"""The image-text view recipe: per tower, not per view. CLIP's only augmentation is a random
square crop (Radford et al. 2021, sec. 2.5); open_clip trains with RandomResizedCrop at scale
0.9-1.0 and no flip, which the ``clip`` recipe follows. The text side samples one of an image's
captions each step; ``recipe:clip-text-aug`` adds token dropout and masking (optional text
augmentations)."""

from __future__ import annotations

from typing import Any

from anyssl.pair import KeyedViews

__all__ = ["image_text_recipe"]

#: Multi-crop (dino, swav) asks for local views, which image-text pairs do not have.
NO_LOCAL = ("image-text has no local views (its views are per tower: one image, one caption); "
            "train dino or swav on the images with --modality image, or on the captions with "
            "--modality text")
#: open_clip's ``scale=(0.9, 1.0)`` for training images.
CLIP_CROP_SCALE = "0.9-1.0"


def image_text_recipe(method: str, dataset: Any) -> KeyedViews:
    """Views of an image-text batch ``{"image", "text"}`` for ``method`` (``clip``, or
    ``clip-text-aug`` through ``--views recipe:clip-text-aug``)."""
    if method.lower().replace("-", "").replace("_", "") in ("dino", "swav"):
        raise ValueError(NO_LOCAL)
    size = int(dataset.encoder_kwargs["image_size"])
    text = "sample_caption"
    if method == "clip-text-aug":
        text = "sample_caption, token_dropout(p=0.1), token_mask(p=0.1)"
    return KeyedViews(
        {"image": f"crop(size={size},scale={CLIP_CROP_SCALE})", "text": text},
        scopes={"image": "image", "text": "text"},
    )
