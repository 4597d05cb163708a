"""Default image view recipes: one text spec per view, parameters from each method's paper.

Sources (all ImageNet recipes at 224 px unless noted):
- ``simclr``: Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
  Representations", Appendix A (crop 0.08-1 + flip, color jitter strength 1.0 with p=0.8,
  grayscale p=0.2, blur p=0.5) and B.9 (CIFAR-10: strength 0.5, no blur).
- ``mocov1``: He et al. 2020, "Momentum Contrast", and the reference ``main_moco.py``
  (crop 0.2-1, grayscale p=0.2, ColorJitter(0.4, 0.4, 0.4, 0.4) always, flip).
- ``mocov2``: Chen et al. 2020, "Improved Baselines with Momentum Contrastive Learning", the
  "aug+" of ``main_moco.py --aug-plus`` (crop 0.2-1, ColorJitter(0.4, 0.4, 0.4, 0.1) p=0.8,
  grayscale p=0.2, blur sigma 0.1-2 p=0.5, flip).
- ``byol``: Grill et al. 2020, "Bootstrap Your Own Latent", Table 6 (crop 0.08-1 + flip,
  ColorJitter(0.4, 0.4, 0.2, 0.1) p=0.8, grayscale p=0.2; view 1 blur p=1.0, no solarize;
  view 2 blur p=0.1, solarize p=0.2).

Small images (side < 64, the CIFAR setting): every recipe drops blur, as SimCLR does on CIFAR-10
(Appendix B.9) and as solo-learn's CIFAR configs do for MoCo v2+ and BYOL; a 3-pixel kernel on
a 32-pixel image blurs little and mostly destroys detail. SimCLR also halves the jitter strength
there (the reference README's CIFAR-10 command: ``--color_jitter_strength=0.5``). The same
threshold makes the data "small" for a method's ``scale_defaults`` (``image_scale``). ``mocov3``
gets BYOL's recipe (MoCo v3 follows BYOL); any other method name gets the SimCLR recipe.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BLUR_MIN_SIZE", "finetune_augment", "image_recipe", "image_scale"]

#: Images smaller than this (the CIFAR setting) get no Gaussian blur in any recipe, and are the
#: "small" data scale.
BLUR_MIN_SIZE = 64


def image_scale(dataset: Any) -> str | None:
    """``"small"`` below ``BLUR_MIN_SIZE`` px (CIFAR-like), else ``"large"`` (ImageNet-like):
    the scale whose defaults a method's ``scale_defaults`` gives (SimCLR's CIFAR-10 vs ImageNet
    settings). None when the dataset states no ``image_size``."""
    kwargs = getattr(dataset, "encoder_kwargs", None)
    if not isinstance(kwargs, dict) or "image_size" not in kwargs:
        return None
    return "small" if int(kwargs["image_size"]) < BLUR_MIN_SIZE else "large"


def _blur(p: float, size: int) -> list[str]:
    """A blur item with probability ``p`` (none for small images or p=0)."""
    return [f"blur(sigma=0.1-2.0,p={p})"] if size >= BLUR_MIN_SIZE and p > 0 else []


def _simclr(size: int) -> list[str]:
    strength = 0.5 if size < BLUR_MIN_SIZE else 1.0
    view = ", ".join([f"crop(size={size},scale=0.08-1.0,flip=0.5)",
                      f"jitter(strength={strength},p=0.8)", "grayscale(p=0.2)", *_blur(0.5, size)])
    return [view, view]


def _mocov1(size: int) -> list[str]:
    view = ", ".join([f"crop(size={size},scale=0.2-1.0,flip=0.5)", "grayscale(p=0.2)",
                      "jitter(brightness=0.4,contrast=0.4,saturation=0.4,hue=0.4)"])
    return [view, view]


def _mocov2(size: int) -> list[str]:
    view = ", ".join([f"crop(size={size},scale=0.2-1.0,flip=0.5)",
                      "jitter(brightness=0.4,contrast=0.4,saturation=0.4,hue=0.1,p=0.8)",
                      "grayscale(p=0.2)", *_blur(0.5, size)])
    return [view, view]


def _byol(size: int) -> list[str]:
    common = [f"crop(size={size},scale=0.08-1.0,flip=0.5)",
              "jitter(brightness=0.4,contrast=0.4,saturation=0.2,hue=0.1,p=0.8)",
              "grayscale(p=0.2)"]
    view1 = ", ".join([*common, *_blur(1.0, size)])
    view2 = ", ".join([*common, *_blur(0.1, size), "solarize(threshold=0.5,p=0.2)"])
    return [view1, view2]


# MoCo v3 (Chen, Xie & He 2021) uses BYOL's asymmetric augmentations.
_RECIPES = {"simclr": _simclr, "mocov1": _mocov1, "mocov2": _mocov2, "byol": _byol,
            "mocov3": _byol}


def image_recipe(method: str, dataset: Any) -> list[str]:
    """Two view specs for ``method`` at the dataset's ``encoder_kwargs["image_size"]``.

    Names are matched ignoring case, ``-`` and ``_`` (``moco-v2`` is ``mocov2``); ``mocov3``
    gets BYOL's recipe; unknown methods fall back to the SimCLR recipe. Parse each with
    ``anyssl.views.parse_spec(spec, scope="image")``.
    """
    kwargs = getattr(dataset, "encoder_kwargs", None)
    if not isinstance(kwargs, dict) or "image_size" not in kwargs:
        raise ValueError("image_recipe needs a dataset with encoder_kwargs['image_size']")
    size = int(kwargs["image_size"])
    key = method.lower().replace("-", "").replace("_", "")
    return _RECIPES.get(key, _simclr)(size)


def finetune_augment(size: int) -> Any:
    """The light augmentation of low-label fine-tuning at ``size`` px: a random resized crop
    (scale 0.08-1) and a horizontal flip (SimCLR, Chen et al. 2020, sec. 6 / App. B.5: "random
    crop with resize and random flip"), as one batched pipeline."""
    from anyssl.views import parse_spec

    return parse_spec(f"crop(size={size},scale=0.08-1.0,flip=0.5)", "image")
