"""Two-tower inputs for paired data (image-text, CLIP, Radford et al. 2021).

``PairEncoder`` holds one encoder ("tower") per input key of a dict batch such as
``{"image": B x 3 x S x S, "text": B x L}``; called on the whole dict it runs only the primary
tower, so the core's linear probe, kNN and ``embed()`` evaluate the primary (image) side.
``KeyedViews`` augments each key of a dict batch with its own pipeline: the one "view" a
two-tower method needs, with per-sample randomness and a separate random stream per key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from anyssl.types import Augmentation
from anyssl.views import batch_device, build_pipeline  # (views first: it loads anyssl.spec)

__all__ = ["KeyedViews", "PairEncoder"]


def _tower_dim(key: str, tower: nn.Module) -> int:
    dim = getattr(tower, "out_dim", None)
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise ValueError(
            f"tower {key!r} ({type(tower).__name__}) needs a positive int attribute out_dim (its "
            f"feature size), got {dim!r}"
        )
    return dim


class PairEncoder(nn.Module):
    """Two encoders, one per key of a dict batch; ``forward`` runs the ``primary`` one.

    Args:
        towers: exactly two ``key -> encoder`` entries (order kept); each encoder has an int
            ``out_dim``.
        primary: the key whose tower ``forward`` (and so the core evaluation) uses; default the
            first key.

    Shape:
        forward: ``{primary: B x ..., ...}`` -> B x out_dim (the primary tower's ``out_dim``).
        encode(key, x): B x ... -> B x tower(key).out_dim.
    """

    def __init__(self, towers: Mapping[str, nn.Module], primary: str | None = None) -> None:
        super().__init__()
        keys = list(towers)
        if len(keys) != 2:
            raise ValueError(f"PairEncoder needs exactly two towers, got {len(keys)}: {keys}")
        for key in keys:
            if not isinstance(key, str) or not key or "." in key:
                raise ValueError(f"tower keys must be non-empty strings without '.', got {key!r}")
        self.out_dims = {k: _tower_dim(k, towers[k]) for k in keys}
        self.towers = nn.ModuleDict({k: towers[k] for k in keys})
        self.keys: tuple[str, str] = (keys[0], keys[1])
        primary = keys[0] if primary is None else primary
        if primary not in keys:
            raise ValueError(f"primary {primary!r} is not a tower key; choose one of {keys}")
        self.primary: str = primary
        self.out_dim: int = self.out_dims[primary]

    def tower(self, key: str) -> nn.Module:
        """The encoder of ``key``."""
        if key not in self.keys:
            raise ValueError(f"no tower {key!r}; the towers are {list(self.keys)}")
        return self.towers[key]

    def encode(self, key: str, x: Any) -> Tensor:
        """Features of one side. Shape: B x ... -> B x ``out_dims[key]``."""
        return self.tower(key)(x)

    def compile(self, *args: Any, **kwargs: Any) -> None:
        """Compile each tower in place (``Module.compile``): ``encode`` calls the towers
        directly, so compiling only this wrapper's ``forward`` would leave training eager."""
        for tower in self.towers.values():
            tower.compile(*args, **kwargs)

    def forward(self, x: Mapping[str, Any]) -> Tensor:
        """The primary tower's features of a dict batch. Shape: -> B x out_dim."""
        if not isinstance(x, Mapping) or self.primary not in x:
            got = sorted(x) if isinstance(x, Mapping) else type(x).__name__
            raise ValueError(
                f"PairEncoder expects a dict batch with key {self.primary!r} (keys "
                f"{list(self.keys)}), got {got}"
            )
        return self.towers[self.primary](x[self.primary])

    def extra_repr(self) -> str:
        return f"keys={self.keys}, primary={self.primary!r}, out_dim={self.out_dim}"


def _key_seed(seed: int, index: int) -> int:
    """A 63-bit seed for key ``index`` (a splitmix64 finalizer of ``seed`` and ``index``), so
    the keys draw unrelated random streams from one seed."""
    z = (seed * 0x9E3779B97F4A7C15 + (index + 1) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return (z ^ (z >> 31)) >> 1


class KeyedViews:
    """One view of a dict batch: each key through its own pipeline (keys without one pass
    through). A ``ViewSource`` with ``n_views = 1`` for two-tower methods (CLIP's image crop
    and caption sampling, Radford et al. 2021).

    Each key draws its per-sample parameters from its own generator on its batch's device,
    seeded from ``manual_seed``'s seed and the key's position, so changing one key's pipeline
    leaves the other keys' views unchanged.

    Args:
        pipelines: ``key -> augmentation`` (an object, a text spec such as
            ``"crop(size=32), flip"``, or None for no augmentation).
        scopes: ``key -> modality`` whose augmentations a text spec's names resolve among
            (e.g. ``{"image": "image", "text": "text"}``); a key without one sees only the
            unscoped augmentations.

    Shape: ``{key: B x ...}`` -> ``[{key: B x ...}]`` (a list of one dict).
    """

    n_views = 1

    def __init__(
        self,
        pipelines: Mapping[str, Augmentation | str | None],
        scopes: Mapping[str, str] | None = None,
    ) -> None:
        scopes = dict(scopes or {})
        self.pipelines: dict[str, Augmentation | None] = {}
        for key, pipe in pipelines.items():
            if pipe is not None and not isinstance(pipe, str) and not callable(pipe):
                raise ValueError(
                    f"the pipeline of {key!r} must be an augmentation, a spec string or None, "
                    f"got {type(pipe).__name__}"
                )
            self.pipelines[key] = None if pipe is None else build_pipeline(pipe, scopes.get(key))
        self._seed: int | None = None
        self._generators: dict[str, torch.Generator] = {}

    def manual_seed(self, seed: int) -> None:
        """Seed every key's randomness (applied to the device generators at the next call)."""
        self._seed, self._generators = seed, {}

    def _generator_for(self, key: str, device: torch.device) -> torch.Generator | None:
        if self._seed is None:
            return None
        g = self._generators.get(key)
        if g is None or g.device != device:
            index = list(self.pipelines).index(key)
            g = torch.Generator(device=device)
            g.manual_seed(_key_seed(self._seed, index))
            self._generators[key] = g
        return g

    def __call__(self, x: Mapping[str, Any]) -> list[dict[str, Any]]:
        if not isinstance(x, Mapping):
            raise ValueError(f"KeyedViews expects a dict batch, got {type(x).__name__}")
        missing = [k for k, p in self.pipelines.items() if p is not None and k not in x]
        if missing:
            raise ValueError(
                f"the batch has no key {missing[0]!r} that KeyedViews augments; the batch's "
                f"keys are {sorted(x)}"
            )
        view = dict(x)  # a new dict: the caller's batch is never modified
        for key, pipe in self.pipelines.items():
            if pipe is not None:
                view[key] = pipe(x[key], self._generator_for(key, batch_device(x[key])))
        return [view]

    def __repr__(self) -> str:
        body = "; ".join(f"{k}: {p!r}" for k, p in self.pipelines.items() if p is not None)
        return f"KeyedViews({body})"
