"""anyssl: contrastive self-supervised learning on any modality.

The core (this package) imports no modality library; built-in modalities live in
``anyssl.modalities`` and register themselves through the ``anyssl.plugins`` entry points.
"""

from anyssl.registry import (
    AUGMENTATIONS,
    DATASETS,
    ENCODERS,
    METHODS,
    MODALITIES,
    OBJECTIVES,
    Registry,
    UnknownNameError,
)

__version__ = "0.1.0"

__all__ = [
    "AUGMENTATIONS", "DATASETS", "ENCODERS", "METHODS", "MODALITIES", "OBJECTIVES",
    "Registry", "UnknownNameError", "__version__",
]
