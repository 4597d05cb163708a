"""Image modality: on-device augmentations, ResNet/ViT/small-CNN/timm encoders, image datasets.

Importing this package registers, with ``scope="image"``: the augmentations ``crop``, ``flip``,
``jitter``, ``grayscale``, ``blur``, ``solarize``; the encoders ``smallcnn``, ``resnet18``,
``resnet34``, ``resnet50``, ``vit_tiny``, ``vit_small`` and ``timm`` (any timm model, with the
``timm`` extra); the datasets ``digits`` (default, offline), ``path``,
``shards`` (WebDataset tars), ``fashion-mnist``, ``cifar10``, ``cifar100``, ``stl10``; and the
``image`` Modality.
torchvision is imported only when a ResNet, a ViT or a torchvision dataset is built; timm only
when a timm encoder is.
"""

from anyssl.modalities.image import (  # noqa: F401  (importing registers the parts)
    blur,
    color,
    datasets,
    datasets_files,
    datasets_shards,
    datasets_torchvision,
    encoders,
    encoders_timm,
    encoders_vit,
    export,
    geometry,
    report,
)
from anyssl.modalities.image.recipes import image_recipe, image_scale
from anyssl.modality import Modality, register_modality

#: The encoder of a method on a GPU when --encoder is not given: the ViT-S/16 of DINO
#: (main_dino.py ``--arch vit_small``) and of MoCo v3's ViT recipe (CONFIG.md, ViT-Small); CPU
#: runs keep ``default_encoder`` (``--encoder vit_tiny`` picks a ViT there).
ACCELERATOR_ENCODERS = {"dino": "vit_small", "mocov3": "vit_small"}

MODALITY = register_modality(Modality(
    name="image",
    description="2-D images (uint8 C x H x W): crops, color jitter, blur; ResNets, ViTs, small CNN",
    default_dataset="digits",
    default_encoder="smallcnn",
    recipe=image_recipe,
    conv_encoder=True,
    data_scale=image_scale,
    extra={"accelerator_encoders": ACCELERATOR_ENCODERS},
))

__all__ = ["ACCELERATOR_ENCODERS", "MODALITY", "image_recipe", "image_scale"]
