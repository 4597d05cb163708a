"""The small Protocols that the core's parts meet. Concrete parts never inherit from these;
they only need the attributes and methods named here (structural typing)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

#: A collated batch on its device: ``(inputs, labels)``. ``inputs`` is whatever the modality
#: collates (an image tensor ``B x C x H x W``, a padded series, a PyG ``Batch``, a dict for
#: image-text); ``labels`` is a ``B`` long tensor, ``-1`` where unlabeled.
Batch = tuple[Any, Tensor]


@runtime_checkable
class Augmentation(Protocol):
    """Transforms a whole batch of inputs on its device; each sample draws its own parameters
    from ``generator`` (a ``torch.Generator`` on the batch's device, or None for the global RNG).
    """

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Any: ...


@runtime_checkable
class MaskedAugmentation(Protocol):
    """An augmentation of a non-tensor batch (graphs, say) that applies itself only to the
    samples where ``mask`` (``B`` bool) is true; ``RandomApply`` and ``OneOf`` use it."""

    def apply_masked(self, x: Any, mask: Tensor, generator: torch.Generator | None) -> Any: ...


class Encoder(Protocol):
    """A module mapping a batch of inputs to ``B x out_dim`` features; ``out_dim`` is fixed when
    the encoder is built (never inferred at the first call)."""

    out_dim: int

    def __call__(self, x: Any) -> Tensor: ...


class ViewSource(Protocol):
    """Makes the views of one batch (``anyssl.views.ViewGenerator`` is the implementation).

    A multi-crop source (``anyssl.multicrop``) may also carry ``n_global``: its first
    ``n_global`` views are the global ones, the rest local (smaller) views; without it every
    view is global."""

    n_views: int

    def __call__(self, x: Any) -> list[Any]: ...

    def manual_seed(self, seed: int) -> None: ...


class Method(Protocol):
    """What the trainer knows of a method: a module with an encoder, views, a training step that
    returns ``(loss, logs)`` and a hook after each optimizer step (momentum updates).

    A method may also have an ``eval_encoder`` attribute: the module that evaluation and
    embedding use instead of ``encoder`` (TS2Vec evaluates a weight average of its encoder)."""

    encoder: nn.Module
    views: ViewSource

    def training_step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]: ...

    def on_step_end(self, step: int, max_steps: int) -> None: ...
