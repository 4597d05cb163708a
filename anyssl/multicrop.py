"""Multi-crop recipes: ``V`` global views and ``M`` local views of another size.

Multi-crop (Caron et al. 2020, "Unsupervised Learning of Visual Features by Contrasting Cluster
Assignments" (SwAV), sec. 3.2; Caron et al. 2021, "Emerging Properties in Self-Supervised Vision
Transformers" (DINO), sec. 3.1): besides two global views at full size, a method sees several
small local views, cheap to encode, that it matches to the global ones. On ImageNet both use
2 x 224 px + 6 (SwAV) or 8 (DINO's ``main_dino.py``) x 96 px crops.

A modality's recipe returns a ``MultiCrop``: its global view specs, and a function of one
number, the local size, that gives the local view's spec. What a local view is and the unit of
its size is the modality's: a crop side in pixels for images, the largest share of each series /
graph / caption kept for time series, graphs and text. ``build_views`` turns it into a
``ViewGenerator`` whose first ``n_global`` views are the global ones, and reads the user's
``--views G+L`` or ``--views G+LxS`` (``2+4``, ``2+6x16``, ``2+0`` to turn local views off).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from anyssl.types import Augmentation
from anyssl.views import ViewGenerator, build_pipeline

__all__ = ["MultiCrop", "parse_counts"]

_COUNTS = re.compile(r"^\s*(\d+)\s*\+\s*(\d+)\s*(?:[x*]\s*(\d+(?:\.\d*)?|\.\d+))?\s*$")


def parse_counts(text: str) -> tuple[int, int, float | int | None] | None:
    """``"G+L"`` or ``"G+LxS"`` as ``(G, L, S)`` (``S`` None when absent, an int when whole);
    None for any other text (a plain view count or specs)."""
    m = _COUNTS.match(text)
    if m is None:
        return None
    size: float | int | None = None
    if m.group(3) is not None:
        f = float(m.group(3))
        size = int(f) if f.is_integer() and "." not in m.group(3) else f
    return int(m.group(1)), int(m.group(2)), size


@dataclass(frozen=True)
class MultiCrop:
    """A multi-crop view recipe: ``n_global`` global views, then ``n_local`` local views.

    Args:
        global_views: one spec (or pipeline) per global view; ``n_global`` cycles through them
            (DINO's two global views differ: blur 1.0 vs blur 0.1 + solarize).
        local_view: ``local_size -> spec`` of a local view, or None when the modality has no
            local view (then ``no_local`` says why and what to use instead).
        n_local: number of local views.
        local_size: the local view's size, in the modality's unit (see the module docstring).
        n_global: number of global views (default: ``len(global_views)``).
        modality: the modality's name, for error messages.
        no_local: the one-line reason given when local views are asked of a modality without.
    """

    global_views: tuple[str | Augmentation, ...]
    local_view: Callable[[Any], str | Augmentation] | None = None
    n_local: int = 0
    local_size: float | int | None = None
    n_global: int | None = None
    modality: str = ""
    no_local: str = ""

    def __post_init__(self) -> None:
        if not self.global_views:
            raise ValueError("a multi-crop recipe needs at least one global view spec")
        if self.n_global is None:
            object.__setattr__(self, "n_global", len(self.global_views))
        if int(self.n_global or 0) < 1 or self.n_local < 0:
            raise ValueError(f"multi-crop needs >= 1 global and >= 0 local views, got "
                             f"{self.n_global}+{self.n_local}")
        if self.n_local and self.local_view is None:
            raise ValueError(self.no_local or f"modality {self.modality!r} has no local views")

    def override(self, n_global: int | None = None, n_local: int | None = None,
                 local_size: float | None = None) -> MultiCrop:
        """The same recipe with other counts or local size (None keeps the recipe's)."""
        if self.local_view is None and (n_local or local_size is not None):
            raise ValueError(self.no_local or f"modality {self.modality!r} has no local views")
        return replace(
            self, n_global=self.n_global if n_global is None else n_global,
            n_local=self.n_local if n_local is None else n_local,
            local_size=self.local_size if local_size is None else local_size)

    def specs(self) -> list[str | Augmentation]:
        """The view specs: ``n_global`` global ones (cycled), then ``n_local`` local ones."""
        n_global = int(self.n_global or 0)
        out = [self.global_views[i % len(self.global_views)] for i in range(n_global)]
        if self.n_local:
            assert self.local_view is not None  # checked in __post_init__
            out += [self.local_view(self.local_size)] * self.n_local
        return out

    def view_generator(self, scope: str | None = None) -> ViewGenerator:
        """A ``ViewGenerator`` of these views (names resolved among ``scope``'s augmentations);
        its ``n_global`` tells a method which views are global."""
        pipes = [build_pipeline(s, scope) for s in self.specs()]
        return ViewGenerator(pipes, n_global=int(self.n_global or 0))
