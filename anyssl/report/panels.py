"""Report panels: the modality-specific parts of a report (an image run's nearest-neighbour grid,
a time-series run's series with their neighbours, an image-text run's retrievals).

A panel is a function ``panel(ctx: PanelContext) -> Section | None`` (None: nothing to show for
this run) registered in ``REPORT_PANELS`` with its modality as scope::

    from anyssl.report.panels import register_panel

    @register_panel("neighbours", modality="image")
    def neighbours(ctx): ...

A modality plugin registers its panels from its ``report.py``; the core stays generic (every
run's report has curves, the table and a 2-D map of the embeddings).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from anyssl.registry import Registry
from anyssl.report.sections import Section

if TYPE_CHECKING:
    from anyssl.api import LoadedRun

__all__ = ["REPORT_PANELS", "PanelContext", "ReportPanel", "class_names", "register_panel",
           "resolve_panels"]


@dataclass
class PanelContext:
    """What a panel may use: the rebuilt run and the embedded split.

    Attributes:
        run: the run rebuilt from its checkpoint (``config``, ``parts`` with the trained
            ``method`` and data, ``encoder``).
        dataset: the embedded split (the test split, or the training split when the data has
            no test split), possibly a class-balanced ``Subset`` of it.
        split: ``"test"`` or ``"train"``.
        features: the encoder's features of ``dataset``, ``N x D`` float32.
        labels: their labels, ``N`` int64 (-1 = unlabelled).
        aligned: True when row ``i`` of ``features`` is item ``i`` of ``dataset`` (False for
            node-level graph data, whose rows are nodes).
        class_names: one name per label, when the data has them.
        device: where the encoder runs.
        seed: seeds every random choice (which queries are shown).
    """

    run: LoadedRun
    dataset: Any
    split: str
    features: np.ndarray
    labels: np.ndarray
    aligned: bool
    class_names: list[str] | None
    device: torch.device
    seed: int = 0

    def label_name(self, label: int) -> str:
        """The name of ``label`` (its number when the data has no names; ``?`` for -1)."""
        if label < 0:
            return "?"
        if self.class_names and label < len(self.class_names):
            return str(self.class_names[label])
        return str(label)


class ReportPanel(Protocol):
    """A modality's part of the report for one run."""

    def __call__(self, ctx: PanelContext) -> Section | None: ...


REPORT_PANELS: Registry[Section | None] = Registry("report panel")


def register_panel(name: str, *, modality: str,
                   description: str | None = None) -> Callable[[Any], Any]:
    """Decorator: register a panel function under ``name`` for ``modality`` (the scope)."""
    return REPORT_PANELS.register(name, scope=modality, description=description)


def resolve_panels(modality: str,
                   panels: Sequence[str | ReportPanel] | None = None) -> list[ReportPanel]:
    """The panels of a ``modality``'s report: ``panels`` by name (looked up in its scope; a bad
    name lists the valid ones) or as functions; None: every panel registered for it."""
    if panels is None:
        names = [e.name for e in REPORT_PANELS.entries(modality) if e.scope == modality]
        return [REPORT_PANELS.get(n, modality) for n in names]
    return [p if callable(p) else REPORT_PANELS.get(p, modality) for p in panels]


def class_names(dataset: Any) -> list[str] | None:
    """A dataset's class names (``classes`` or ``class_names``), looking through ``Subset``s."""
    while dataset is not None:
        names = getattr(dataset, "classes", None) or getattr(dataset, "class_names", None)
        if names:
            return [str(n) for n in names]
        dataset = getattr(dataset, "dataset", None)
    return None
