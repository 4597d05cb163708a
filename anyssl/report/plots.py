"""matplotlib drawings for the report, each returned as PNG bytes.

matplotlib (the ``report`` extra) is imported inside each function, and figures are made with
``matplotlib.figure.Figure`` on the Agg canvas, never through ``pyplot``: no global state, no
display, nothing left open.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["DPI", "curves_png", "figure", "label_colours", "map_png", "require_matplotlib",
           "to_png"]

#: Resolution of every picture: small pages, still legible.
DPI = 80
#: Unlabelled points (label -1) are drawn in this grey.
UNLABELLED = (0.6, 0.6, 0.6, 1.0)


def require_matplotlib() -> None:
    """Raise a one-line ``ImportError`` naming the ``report`` extra when matplotlib is absent."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as err:
        raise ImportError(f"the report draws with matplotlib ({err}); pip install "
                          "'anyssl[report]'") from None


def figure(width: float, height: float) -> Any:
    """A new matplotlib ``Figure`` of ``width`` x ``height`` inches on the Agg canvas."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Any) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def curves_png(curves: Sequence[tuple[str, Sequence[int], Sequence[float]]], *, title: str,
               ylabel: str, percent: bool = False) -> bytes:
    """One line per ``(label, steps, values)`` against the optimizer step; a legend when there
    are several; ``percent`` shows fractions as percentages. A curve of one point is a marker."""
    from matplotlib.ticker import MaxNLocator

    fig = figure(6.0, 3.2)
    ax = fig.add_subplot()
    for label, steps, values in curves:
        ys = [100 * v for v in values] if percent else list(values)
        ax.plot(list(steps), ys, label=label, marker="o" if len(ys) < 3 else None, linewidth=1.5)
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"{ylabel} (%)" if percent else ylabel)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize="small")
    return to_png(fig)


def label_colours(labels: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """RGBA colours per point (``tab10``/``tab20`` up to 20 labels, ``viridis`` beyond; grey
    for -1) and the sorted distinct non-negative labels.

    Shape:
        labels: ``N`` ints -> colours ``N x 4``.
    """
    from matplotlib import colormaps

    classes = sorted(int(c) for c in np.unique(labels) if c >= 0)
    cmap = colormaps["tab10" if len(classes) <= 10 else "tab20" if len(classes) <= 20 else
                     "viridis"]
    # a listed map (tab10, tab20) takes the class's slot as an int, viridis a fraction
    slot: dict[int, Any] = {c: i if len(classes) <= 20 else i / max(len(classes) - 1, 1)
                            for i, c in enumerate(classes)}
    colours = np.array([cmap(slot[int(y)]) if y >= 0 else UNLABELLED for y in labels])
    return colours.reshape(len(labels), 4), classes


def map_png(points: np.ndarray, labels: np.ndarray, *, title: str,
            class_names: Sequence[str] | None = None) -> bytes:
    """A scatter plot of 2-D points coloured by label, with a legend of at most 20 classes.

    Shape:
        points: ``N x 2``; labels: ``N`` ints (-1 = unlabelled).
    """
    from matplotlib.lines import Line2D

    fig = figure(5.0, 4.2)
    ax = fig.add_subplot()
    colours, classes = label_colours(labels)
    size = max(4.0, min(24.0, 4000.0 / max(len(points), 1)))
    ax.scatter(points[:, 0], points[:, 1], c=colours, s=size, linewidths=0)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    if 0 < len(classes) <= 20:
        names = [str(class_names[c]) if class_names and c < len(class_names) else str(c)
                 for c in classes]
        handles = [Line2D([], [], marker="o", linestyle="", color=colours[labels == c][0],
                          label=_short(n)) for c, n in zip(classes, names, strict=True)]
        ax.legend(handles=handles, fontsize="x-small", loc="center left",
                  bbox_to_anchor=(1.0, 0.5), ncols=max(1, math.ceil(len(classes) / 12)))
    return to_png(fig)


def _short(text: str, limit: int = 18) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
