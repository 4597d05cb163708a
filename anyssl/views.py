"""Views: batched, on-device augmentation pipelines with per-sample randomness.

``ViewGenerator`` turns one collated batch into N views, each with its own pipeline (BYOL's
asymmetric recipes). Pipelines are built from augmentation objects and the combinators here
(``Compose``, ``RandomApply``, ``OneOf``), or parsed from a text spec such as
``"crop(size=32,scale=0.2-1.0), flip, jitter(strength=0.5,p=0.8), grayscale(p=0.2)"``.

Randomness always comes from a ``torch.Generator`` on the batch's device, so a seeded generator
reproduces every view exactly and no parameter is drawn on the CPU for a GPU batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from anyssl.registry import AUGMENTATIONS
from anyssl.types import Augmentation, MaskedAugmentation

__all__ = [
    "Compose",
    "DeviceSeed",
    "Identity",
    "OneOf",
    "RandomApply",
    "SpecError",
    "ViewGenerator",
    "batch_device",
    "batch_size",
    "parse_spec",
    "build_pipeline",
    "uniform",
]


def batch_device(x: Any) -> torch.device:
    """The device of a batch: a tensor's, else the first tensor attribute or value found."""
    if isinstance(x, Tensor):
        return x.device
    if isinstance(x, dict):
        return batch_device(next(iter(x.values())))
    for attr in ("x", "device"):
        v = getattr(x, attr, None)
        if isinstance(v, Tensor):
            return v.device
        if isinstance(v, torch.device):
            return v
    raise TypeError(f"cannot tell the device of a batch of type {type(x).__name__}")


def batch_size(x: Any) -> int:
    """Number of samples in a batch (tensor dim 0, ``num_graphs``, or a dict's first value)."""
    if isinstance(x, Tensor):
        return int(x.shape[0])
    if isinstance(x, dict):
        return batch_size(next(iter(x.values())))
    n = getattr(x, "num_graphs", None)
    if n is None:
        raise TypeError(f"cannot tell the batch size of a batch of type {type(x).__name__}")
    return int(n)


def uniform(
    low: float,
    high: float,
    shape: Sequence[int] | int,
    generator: torch.Generator | None,
    device: torch.device,
) -> Tensor:
    """``shape`` samples of U(low, high) on ``device`` drawn from ``generator``."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return low + (high - low) * torch.rand(shape, generator=generator, device=device)


def _select(mask: Tensor, new: Any, old: Any) -> Any:
    """Per-sample choice ``new if mask else old`` for tensor batches (``mask``: ``B`` bool)."""
    if not isinstance(new, Tensor) or not isinstance(old, Tensor):
        raise TypeError("per-sample selection of non-tensor batches needs apply_masked()")
    if new.shape != old.shape:
        raise ValueError(
            f"RandomApply/OneOf need shape-preserving augmentations; got {tuple(old.shape)} -> "
            f"{tuple(new.shape)} (put resizing ones such as crop outside them)"
        )
    if old.dtype != new.dtype:
        old = old.to(new.dtype) / 255.0 if old.dtype == torch.uint8 else old.to(new.dtype)
    m = mask.view(-1, *([1] * (new.dim() - 1)))
    return torch.where(m, new, old)


def _apply_where(
    aug: Augmentation, x: Any, mask: Tensor, generator: torch.Generator | None, out: Any
) -> Any:
    """``out`` with the samples where ``mask`` (``B`` bool) holds replaced by ``aug(x)``.

    On the CPU only the chosen samples are transformed (compute is the bottleneck there). On an
    accelerator the whole batch is transformed and selected with ``torch.where``: a subset's
    size is data-dependent and would make the host wait for the device.
    """
    if not isinstance(x, Tensor):
        if not isinstance(aug, MaskedAugmentation):
            raise TypeError(f"{aug!r} needs apply_masked() for per-sample non-tensor batches")
        return aug.apply_masked(out, mask, generator)
    if x.device.type != "cpu":
        return _select(mask, aug(x, generator), out)
    idx = mask.nonzero().squeeze(1)
    if idx.numel() == 0:
        return out
    new = aug(x.index_select(0, idx), generator)
    if new.shape[1:] != out.shape[1:]:
        raise ValueError(
            f"RandomApply/OneOf need shape-preserving augmentations; got {tuple(out.shape[1:])} "
            f"-> {tuple(new.shape[1:])} (put resizing ones such as crop outside them)"
        )
    if out.dtype == new.dtype:
        base = out.clone()  # never modify the caller's batch in place
    else:
        base = out.to(new.dtype) / 255.0 if out.dtype == torch.uint8 else out.to(new.dtype)
    return base.index_copy_(0, idx, new)


class Identity:
    """Returns the batch unchanged."""

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Any:
        return x

    def __repr__(self) -> str:
        return "identity"


AUGMENTATIONS.add("identity", Identity, description="leave the batch unchanged")


class Compose:
    """Apply augmentations in order."""

    def __init__(self, augmentations: Sequence[Augmentation]) -> None:
        self.augmentations = list(augmentations)

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Any:
        for aug in self.augmentations:
            x = aug(x, generator)
        return x

    def __repr__(self) -> str:
        return ", ".join(repr(a) for a in self.augmentations)


class RandomApply:
    """Apply ``augmentation`` to each sample independently with probability ``p``."""

    def __init__(self, augmentation: Augmentation, p: float) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"probability p must be in [0, 1], got {p}")
        self.augmentation, self.p = augmentation, p

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Any:
        if self.p == 1.0:
            return self.augmentation(x, generator)
        mask = torch.rand(batch_size(x), generator=generator, device=batch_device(x)) < self.p
        return _apply_where(self.augmentation, x, mask, generator, x)

    def __repr__(self) -> str:
        return f"{self.augmentation!r}[p={self.p}]"


class OneOf:
    """Apply one of ``augmentations`` to each sample, chosen per sample with weights ``p``."""

    def __init__(self, augmentations: Sequence[Augmentation], p: Sequence[float] | None = None):
        if not augmentations:
            raise ValueError("OneOf needs at least one augmentation")
        self.augmentations = list(augmentations)
        w = torch.tensor(p if p is not None else [1.0] * len(self.augmentations))
        self.weights = w / w.sum()

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Any:
        dev = batch_device(x)
        choice = torch.multinomial(
            self.weights.to(dev), batch_size(x), replacement=True, generator=generator
        )
        out = x
        for i, aug in enumerate(self.augmentations):
            out = _apply_where(aug, x, choice == i, generator, out)
        return out

    def __repr__(self) -> str:
        return " | ".join(repr(a) for a in self.augmentations)


class DeviceSeed:
    """A seed and the generator drawn from it on the batch's device (made at the first call on
    a device, and again after ``manual_seed``): what a view source draws per-sample randomness
    from, so runs and resumed runs draw the same views."""

    def __init__(self) -> None:
        self._seed: int | None = None
        self._generator: torch.Generator | None = None

    def manual_seed(self, seed: int) -> None:
        self._seed, self._generator = seed, None

    def generator_for(self, device: torch.device) -> torch.Generator | None:
        """The seeded generator on ``device`` (None when unseeded: the global RNG)."""
        if self._seed is None:
            return None
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self._seed)
        return self._generator


class ViewGenerator:
    """Makes ``n_views`` views of a batch, view ``i`` through ``pipelines[i]``.

    A single pipeline with ``n_views=N`` is used for every view. The generator is created on the
    batch's device and seeded by ``manual_seed``; the trainer reseeds it every step so that runs
    and resumed runs draw identical views.

    Multi-crop (SwAV, Caron et al. 2020, sec. 3.2): the first ``n_global`` views are the global
    ones, the rest local views that may have another size (smaller images, shorter series,
    smaller graphs, shorter spans). ``n_global=None``: every view is global. Methods read
    ``getattr(views, "n_global", views.n_views)``; ``anyssl.multicrop.MultiCrop`` builds these.
    """

    def __init__(self, pipelines: Sequence[Augmentation] | Augmentation, n_views: int = 2,
                 n_global: int | None = None) -> None:
        pipes: list[Augmentation] = (
            list(pipelines) if isinstance(pipelines, (list, tuple)) else [pipelines]  # type: ignore[list-item]
        )
        if len(pipes) == 1:
            pipes = pipes * n_views
        if len(pipes) < 2:
            raise ValueError(f"contrastive learning needs at least 2 views, got {len(pipes)}")
        n_global = len(pipes) if n_global is None else n_global
        if isinstance(n_global, bool) or not isinstance(n_global, int) or not (
                1 <= n_global <= len(pipes)):
            raise ValueError(f"n_global must be an int from 1 to the {len(pipes)} views, "
                             f"got {n_global!r}")
        self.pipelines = pipes
        self.n_views = len(pipes)
        self.n_global = n_global
        self._rng = DeviceSeed()

    def manual_seed(self, seed: int) -> None:
        """Seed the view randomness (applied to the device generator at the next call)."""
        self._rng.manual_seed(seed)

    def generator_for(self, device: torch.device) -> torch.Generator | None:
        """The seeded generator on ``device`` that the views draw from (None when unseeded: the
        global RNG). A method that needs more per-step randomness (MoCo's key shuffle) draws it
        here, after the views, so that it is seeded with them."""
        return self._rng.generator_for(device)

    def __call__(self, x: Any) -> list[Any]:
        g = self.generator_for(batch_device(x))
        return [pipe(x, g) for pipe in self.pipelines]

    def __repr__(self) -> str:
        views = "; ".join(repr(p) for p in self.pipelines[:self.n_global])
        if self.n_global < self.n_views:  # local views: 2 global + 6 local shown as 2 + 6 x spec
            views += f" + {self.n_views - self.n_global} x " + repr(self.pipelines[-1])
        return "ViewGenerator(" + views + ")"


# The text-spec parser lives in anyssl.spec; it is re-exported here because a spec is the usual
# way to build a view pipeline. (Imported last: anyssl.spec imports the combinators above.)
from anyssl.spec import SpecError, build_pipeline, parse_spec  # noqa: E402
