"""The image modality's report panel: a nearest-neighbour grid (each row a held-out query image
and its 8 most similar held-out images under the trained encoder, the view of DINO's and
SimCLR's retrieval figures). Registered as ``neighbours`` for ``anyssl report``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from anyssl.report.panels import PanelContext, register_panel
from anyssl.report.plots import figure, to_png
from anyssl.report.projection import nearest_neighbours, pick_queries
from anyssl.report.sections import Picture, Section

__all__ = ["QUERIES", "display_image", "neighbour_grid"]

#: rows of the grid and neighbours per row.
QUERIES, NEIGHBOURS = 6, 8
SAME, OTHER = "#2ca02c", "#d62728"  # frame of a neighbour with the query's label, or not


def display_image(image: Any) -> tuple[np.ndarray, str | None]:
    """An image item as ``imshow`` takes it, with its colour map: uint8 or float
    ``C x H x W`` (C = 1: grey, ``H x W``; C >= 3: the first three channels, ``H x W x 3``);
    floats are rescaled to [0, 1] over the image."""
    x = torch.as_tensor(image).detach().cpu()
    if x.dim() == 2:
        x = x[None]
    if x.dim() != 3:
        raise ValueError(f"an image item must be C x H x W, got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        arr = x.numpy().astype(np.float32) / 255.0
    else:
        arr = x.float().numpy()
        lo, hi = np.nanmin(arr), np.nanmax(arr)
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    if arr.shape[0] < 3:
        return arr[0], "gray"
    return np.transpose(arr[:3], (1, 2, 0)), None


def _item_image(dataset: Any, index: int) -> Any:
    sample = dataset[int(index)][0]
    return sample["image"] if isinstance(sample, dict) else sample


def _cell(fig: Any, rows: int, pos: int, image: Any, colour: str, title: str) -> None:
    ax = fig.add_subplot(rows, NEIGHBOURS + 1, pos)
    arr, cmap = display_image(image)
    ax.imshow(arr, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(3)
    ax.set_title(title, fontsize=7)


@register_panel("neighbours", modality="image")
def neighbour_grid(ctx: PanelContext) -> Section | None:
    """Rows of a query image (black frame) and its nearest neighbours by cosine similarity of
    the encoder's features, framed green when they share the query's label, red otherwise."""
    if not ctx.aligned or len(ctx.features) < 2:
        return None
    queries = pick_queries(ctx.labels, QUERIES, ctx.seed)
    nbrs = nearest_neighbours(ctx.features, queries, NEIGHBOURS)  # Q x k
    fig = figure(0.85 * (NEIGHBOURS + 1), 0.95 * len(queries))
    same = 0
    for r, (q, row) in enumerate(zip(queries, nbrs, strict=True)):
        base = r * (NEIGHBOURS + 1)
        _cell(fig, len(queries), base + 1, _item_image(ctx.dataset, q), "black",
              f"query: {ctx.label_name(int(ctx.labels[q]))}"[:16])
        for c, n in enumerate(row):
            match = ctx.labels[n] == ctx.labels[q] and ctx.labels[q] >= 0
            same += int(match)
            _cell(fig, len(queries), base + c + 2, _item_image(ctx.dataset, n),
                  SAME if match else OTHER, ctx.label_name(int(ctx.labels[n]))[:12])
    share = same / max(nbrs.size, 1)
    caption = (f"{len(queries)} {ctx.split} queries and their {nbrs.shape[1]} nearest "
               f"{ctx.split} neighbours (cosine); {100 * share:.0f}% share the query's label "
               "(green frame)")
    return Section("Nearest neighbours", pictures=[Picture(
        to_png(fig), alt="grid of query images and their nearest neighbours", caption=caption)])
