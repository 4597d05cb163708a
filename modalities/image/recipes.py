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

Methods of 2021 (reference code read for each):
- ``simsiam``: MoCo v2's aug+ (Chen & He 2021, sec. 4.1; ``main_simsiam.py`` L229-239: crop
  0.2-1, ColorJitter(0.4, 0.4, 0.4, 0.1) p=0.8, grayscale p=0.2, blur p=0.5, flip).
- ``barlowtwins``, ``vicreg``, ``nnclr``: BYOL's asymmetric pair (Zbontar et al. 2021, sec. 3 and
  barlowtwins ``main.py`` ``Transform`` L291-320; Bardes et al. 2022, App. C and vicreg
  ``augmentations.py`` ``TrainTransform`` L38-80; Dwibedi et al. 2021, sec. 4.1).
- ``dino``: ``DataAugmentationDINO`` (Caron et al. 2021, sec. 3.1 and App. D; ``main_dino.py``
  L419-464 and the defaults L108-115): two global crops at scale 0.4-1 with BYOL's color ops,
  blur 1.0 / blur 0.1 + solarize 0.2, and ``--local_crops_number`` 8 local crops of 96 px at
  scale 0.05-0.4 with blur p=0.5.
- ``swav``: SwAV's multi-crop (Caron et al. 2020, sec. 3.2; ``src/multicropdataset.py``
  L37-53 and the README's ``--nmb_crops 2 6 --size_crops 224 96 --min_scale_crops 0.14 0.05
  --max_scale_crops 1. 0.14``): every crop gets flip, color distortion of strength 1
  (ColorJitter(0.8, 0.8, 0.8, 0.2) p=0.8, grayscale p=0.2) and blur p=0.5.

Local views of the multi-crop recipes are ``crop(size=S, ...)`` crops; ``S`` is 96/224 of the
image side (96 px at 224 px), and below ``BLUR_MIN_SIZE`` 18/32 of it with 6 local views, as
solo-learn's CIFAR multi-crop config (``scripts/pretrain/cifar-multicrop/augmentations/
swav.yaml``: 2 x 32 px + 6 x 18 px). ``--views 2+6x16`` sets the counts and ``S``.
"""

from __future__ import annotations

from typing import Any

from anyssl.multicrop import MultiCrop

__all__ = ["BLUR_MIN_SIZE", "finetune_augment", "image_recipe", "image_scale", "local_size"]

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


def local_size(size: int) -> int:
    """The side of a local crop for images of side ``size``: 96/224 of it (DINO and SwAV on
    ImageNet), 18/32 below ``BLUR_MIN_SIZE`` (solo-learn's CIFAR multi-crop)."""
    return max(1, round(size * (18 / 32 if size < BLUR_MIN_SIZE else 96 / 224)))


def _n_local(size: int, large: int) -> int:
    """``large`` local views on large images, 6 on small ones (solo-learn's CIFAR config)."""
    return 6 if size < BLUR_MIN_SIZE else large


_DINO_COLOR = ["jitter(brightness=0.4,contrast=0.4,saturation=0.2,hue=0.1,p=0.8)",
               "grayscale(p=0.2)"]  # flip_and_color_jitter, main_dino.py L421-428


def _dino(size: int) -> MultiCrop:
    crop = f"crop(size={size},scale=0.4-1.0,flip=0.5)"  # --global_crops_scale 0.4 1 (L108)
    global1 = ", ".join([crop, *_DINO_COLOR, *_blur(1.0, size)])  # global_transfo1 (L435)
    global2 = ", ".join([crop, *_DINO_COLOR, *_blur(0.1, size),  # global_transfo2 (L442)
                         "solarize(threshold=0.5,p=0.2)"])

    def local(s: Any) -> str:  # local_transfo (L451): --local_crops_scale 0.05 0.4 (L115)
        return ", ".join([f"crop(size={s},scale=0.05-0.4,flip=0.5)", *_DINO_COLOR,
                          *_blur(0.5, size)])

    return MultiCrop((global1, global2), local, _n_local(size, 8), local_size(size),
                     modality="image")


def _swav(size: int) -> MultiCrop:
    color = ["jitter(strength=1.0,p=0.8)", "grayscale(p=0.2)", *_blur(0.5, size)]
    glob = ", ".join([f"crop(size={size},scale=0.14-1.0,flip=0.5)", *color])

    def local(s: Any) -> str:
        return ", ".join([f"crop(size={s},scale=0.05-0.14,flip=0.5)", *color])

    return MultiCrop((glob,), local, _n_local(size, 6), local_size(size), n_global=2,
                     modality="image")


# MoCo v3 (Chen, Xie & He 2021), Barlow Twins, VICReg and NNCLR use BYOL's asymmetric pair;
# SimSiam uses MoCo v2's aug+ (see the module docstring for each source).
_RECIPES = {"simclr": _simclr, "mocov1": _mocov1, "mocov2": _mocov2, "byol": _byol,
            "mocov3": _byol, "simsiam": _mocov2, "barlowtwins": _byol, "vicreg": _byol,
            "nnclr": _byol}
_MULTICROP = {"dino": _dino, "swav": _swav}


def image_recipe(method: str, dataset: Any) -> list[str] | MultiCrop:
    """Two view specs for ``method`` at the dataset's ``encoder_kwargs["image_size"]``, or a
    ``MultiCrop`` (2 global + local views) for ``dino`` and ``swav``.

    Names are matched ignoring case, ``-`` and ``_`` (``moco-v2`` is ``mocov2``); ``mocov3``
    gets BYOL's recipe; unknown methods fall back to the SimCLR recipe. Parse each with
    ``anyssl.views.parse_spec(spec, scope="image")``.
    """
    kwargs = getattr(dataset, "encoder_kwargs", None)
    if not isinstance(kwargs, dict) or "image_size" not in kwargs:
        raise ValueError("image_recipe needs a dataset with encoder_kwargs['image_size']")
    size = int(kwargs["image_size"])
    key = method.lower().replace("-", "").replace("_", "")
    if key in _MULTICROP:
        return _MULTICROP[key](size)
    return _RECIPES.get(key, _simclr)(size)


def finetune_augment(size: int) -> Any:
    """The light augmentation of low-label fine-tuning at ``size`` px: a random resized crop
    (scale 0.08-1) and a horizontal flip (SimCLR, Chen et al. 2020, sec. 6 / App. B.5: "random
    crop with resize and random flip"), as one batched pipeline."""
    from anyssl.views import parse_spec

    return parse_spec(f"crop(size={size},scale=0.08-1.0,flip=0.5)", "image")
