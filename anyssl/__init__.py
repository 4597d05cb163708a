"""anyssl: contrastive self-supervised learning on any modality.

The core (this package) imports no modality library; built-in modalities live in
``anyssl.modalities`` and register themselves through the ``anyssl.plugins`` entry points.
"""

# Core parts register themselves on import (methods, objectives); modalities come through the
# ``anyssl.plugins`` entry points on the first registry miss.
from anyssl import methods as _methods  # noqa: F401
from anyssl import objectives as _objectives  # noqa: F401
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
