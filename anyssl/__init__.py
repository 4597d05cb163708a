"""anyssl: contrastive self-supervised learning on any modality.

The core (this package) imports no modality library; built-in modalities live in
``anyssl.modalities`` and register themselves through the ``anyssl.plugins`` entry points.

Importing ``anyssl`` is cheap (no torch): the registries and ``__version__`` load on first use
(PEP 562), and the core parts (methods, objectives) register on the first registry lookup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

__all__ = [
    "AUGMENTATIONS", "DATASETS", "ENCODERS", "METHODS", "MODALITIES", "OBJECTIVES",
    "Registry", "UnknownNameError", "__version__",
]
_FROM_REGISTRY = frozenset(__all__) - {"__version__"}


def _version() -> str:
    """The installed distribution's version (its metadata: no import of torch)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("anyssl")
    except PackageNotFoundError:  # a source tree on sys.path, not installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _FROM_REGISTRY:
        from anyssl import registry

        value = getattr(registry, name)
    else:
        raise AttributeError(f"module 'anyssl' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
