"""Image modality: batched on-device augmentations, ResNet/small-CNN encoders, image datasets.

Importing this package registers, with ``scope="image"``: the augmentations ``crop``, ``flip``,
``jitter``, ``grayscale``, ``blur``, ``solarize``; the encoders ``smallcnn``, ``resnet18``,
``resnet34``, ``resnet50``; the datasets ``digits`` (default, offline), ``path``,
``fashion-mnist``, ``cifar10``, ``cifar100``, ``stl10``; and the ``image`` Modality.
torchvision is imported only when a ResNet or a torchvision dataset is built.
"""

from anyssl.modalities.image import (  # noqa: F401  (importing registers the parts)
    blur,
    color,
    datasets,
    datasets_files,
    datasets_torchvision,
    encoders,
    geometry,
)
from anyssl.modalities.image.recipes import image_recipe, image_scale
from anyssl.modality import Modality, register_modality

MODALITY = register_modality(Modality(
    name="image",
    description="2-D images (uint8 C x H x W): crops, color jitter, blur; ResNets, small CNN",
    default_dataset="digits",
    default_encoder="smallcnn",
    recipe=image_recipe,
    conv_encoder=True,
    data_scale=image_scale,
))

__all__ = ["MODALITY", "image_recipe", "image_scale"]
