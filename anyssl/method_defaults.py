"""A method's defaults that depend on the run: the data scale's recipe (``scale_defaults``:
SimCLR's CIFAR-10 or ImageNet command, DINO's 4,096 or 65,536 prototypes ...) and the encoder
arguments a method's recipe asks for (``encoder_defaults``: DGI's one 512-wide PReLU GCN
layer), each under what the user gives and named in a note."""

from __future__ import annotations

from typing import Any

from torch import nn

from anyssl.modality import Modality, SSLDataset
from anyssl.registry import METHODS

__all__ = ["SMALL_DATA", "apply_preset", "method_encoder_args", "scale_preset", "size_scale"]


#: samples below which a data set of a modality without its own ``data_scale`` is "small":
#: the CIFAR-sized recipes (50,000 images) rather than ImageNet-1k's (1.28M); every UCR/UEA,
#: TU and Planetoid set is far below it.
SMALL_DATA = 200_000


def size_scale(dataset: SSLDataset) -> str:
    """The scale of a data set by its number of samples (``SMALL_DATA``): the fallback of a
    modality that says nothing, so e.g. DINO on a few thousand captions gets solo-learn's
    CIFAR head (4,096 prototypes), not ImageNet's 65,536."""
    return "small" if len(dataset) < SMALL_DATA else "large"


def scale_preset(modality: Modality, method: str, dataset: SSLDataset
                 ) -> tuple[str | None, dict[str, Any]]:
    """The scale of ``dataset`` (``Modality.data_scale``, else ``size_scale``) and ``method``'s
    defaults for it (an entry of its ``scale_defaults``: ``train`` and ``args`` overrides and
    their ``source``), or ``(scale, {})`` when the method has none for that scale."""
    scale = (modality.data_scale(dataset) if modality.data_scale is not None
             else size_scale(dataset))
    presets = getattr(METHODS.get(method, modality.name), "scale_defaults", None) or {}
    return scale, dict(presets.get(scale, {})) if scale is not None else {}


def apply_preset(built: nn.Module, method: str, scale: str | None,
                 preset: dict[str, Any]) -> list[str]:
    """Put a scale preset's train defaults on the built method (an instance attribute over the
    class's ``train_defaults``, which the trainer reads) and say which recipe it is."""
    if not preset:
        return []
    defaults = dict(getattr(built, "train_defaults", None) or {})
    built.train_defaults = {**defaults, **preset.get("train", {})}  # type: ignore[assignment]
    return [f"{method}: the defaults for {scale} data ({preset.get('source', 'its paper')})"]


def method_encoder_args(mod: Modality, method: str, encoder: Any, dataset: SSLDataset,
                        encoder_args: dict[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """The encoder's arguments: the method's ``encoder_defaults`` for the encoder the run uses
    (by name; e.g. DGI's one 512-wide PReLU GCN layer) under the user's ``encoder_args``, and a
    note naming the defaults taken. An encoder instance gets nothing added."""
    args = dict(encoder_args or {})
    defaults = getattr(METHODS.get(method, mod.name), "encoder_defaults", None) or {}
    if not defaults or not (encoder is None or isinstance(encoder, str)):
        return args, []
    name = encoder or getattr(dataset, "suggested_encoder", None) or mod.default_encoder
    extra = {k: v for k, v in defaults.get(name, {}).items() if k not in args}
    if not extra:
        return args, []
    said = ", ".join(f"{k}={v}" for k, v in extra.items())
    return {**extra, **args}, [f"{method}: encoder {name} with {said} (the method's recipe; "
                               "-e KEY=VALUE changes one)"]
