"""The time-series modality's report panel: a few held-out series, each drawn with its nearest
held-out neighbours under the trained encoder. Registered as ``neighbours`` for
``anyssl report``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from anyssl.report.panels import PanelContext, register_panel
from anyssl.report.plots import figure, to_png
from anyssl.report.projection import nearest_neighbours, pick_queries
from anyssl.report.sections import Picture, Section

__all__ = ["NEIGHBOURS", "QUERIES", "series_neighbours"]

#: series shown, and neighbours drawn with each.
QUERIES, NEIGHBOURS = 4, 3


def _channel(dataset: Any, index: int, channel: int = 0) -> np.ndarray:
    """One channel of a ``C x T`` series item, NaN (padding, missing) kept: a gap in the line."""
    x = torch.as_tensor(dataset[int(index)][0]).detach().cpu().float()
    return (x[channel] if x.dim() == 2 else x.reshape(-1)).numpy()


@register_panel("neighbours", modality="timeseries")
def series_neighbours(ctx: PanelContext) -> Section | None:
    """Each query series (black) with its nearest neighbours by cosine similarity of the
    encoder's features (coloured, labelled with their classes); the first channel is drawn."""
    if not ctx.aligned or len(ctx.features) < 2:
        return None
    queries = pick_queries(ctx.labels, QUERIES, ctx.seed)
    nbrs = nearest_neighbours(ctx.features, queries, NEIGHBOURS)  # Q x k
    cols = 2 if len(queries) > 1 else 1
    rows = math.ceil(len(queries) / cols)
    fig = figure(5.0 * cols, 2.4 * rows)
    for i, (q, row) in enumerate(zip(queries, nbrs, strict=True)):
        ax = fig.add_subplot(rows, cols, i + 1)
        for rank, n in enumerate(row):
            ax.plot(_channel(ctx.dataset, n), linewidth=1.0, alpha=0.8,
                    label=f"#{rank + 1}: {ctx.label_name(int(ctx.labels[n]))}"[:24])
        ax.plot(_channel(ctx.dataset, q), color="black", linewidth=2.0,
                label=f"query: {ctx.label_name(int(ctx.labels[q]))}"[:24])
        ax.legend(fontsize="x-small", loc="best")
        ax.set_xlabel("time step", fontsize="small")
        ax.tick_params(labelsize="x-small")
    shape = tuple(torch.as_tensor(ctx.dataset[int(queries[0])][0]).shape)
    channels = shape[0] if len(shape) == 2 else 1
    caption = (f"{len(queries)} {ctx.split} series (black) with their {nbrs.shape[1]} nearest "
               f"{ctx.split} neighbours (cosine similarity of the features)"
               + (f"; channel 1 of {channels} drawn" if channels > 1 else ""))
    return Section("Series and their nearest neighbours", pictures=[Picture(
        to_png(fig), alt="time series with their nearest neighbours", caption=caption)])
