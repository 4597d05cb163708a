"""Embed a run's held-out split for its report: rebuild the run from ``last.pt``, embed at most
``max_points`` samples (class-balanced), and draw the 2-D maps."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Subset

from anyssl.report.panels import PanelContext, class_names
from anyssl.report.plots import map_png
from anyssl.report.projection import TSNE_MAX_POINTS, pca_2d, subsample, tsne_2d
from anyssl.report.sections import Picture, Section

__all__ = ["embed_run", "map_section"]


def _item_labels(dataset: Any) -> np.ndarray | None:
    """Per-item labels from ``targets`` when there is one per item, else None."""
    targets = getattr(dataset, "targets", None)
    if targets is None:
        return None
    labels = np.asarray(targets.cpu() if isinstance(targets, torch.Tensor) else targets)
    return labels.astype(np.int64) if labels.ndim == 1 and len(labels) == len(dataset) else None


def embed_run(checkpoint: Any, *, max_points: int, device: torch.device,
              seed: int = 0, batch_size: int = 256) -> PanelContext:
    """Rebuild the run of ``checkpoint`` and embed (a class-balanced sample of at most
    ``max_points`` items of) its test split, or its training split when it has none."""
    from anyssl.api import load_run
    from anyssl.eval.embed import embed

    run = load_run(checkpoint)
    split = "test" if run.parts.test_set is not None and len(run.parts.test_set) else "train"
    dataset: Any = run.parts.test_set if split == "test" else run.parts.train_set
    labels = _item_labels(dataset)
    if labels is not None and len(labels) > max_points:
        dataset = Subset(dataset, subsample(labels, max_points, seed).tolist())
    feats, ys = embed(run.encoder.to(device), dataset, batch_size=batch_size, device=device,
                      collate=run.parts.modality.collate, to_device=run.parts.modality.to_device)
    return PanelContext(run=run, dataset=dataset, split=split, features=feats,
                        labels=np.asarray(ys, dtype=np.int64), aligned=len(feats) == len(dataset),
                        class_names=class_names(dataset), device=device, seed=seed)


def map_section(ctx: PanelContext, *, title: str, max_points: int, tsne: bool = True) -> Section:
    """PCA (and t-SNE, up to ``TSNE_MAX_POINTS`` points) of the embedded split, by label."""
    feats, labels = ctx.features, ctx.labels
    notes = []
    if len(feats) > max_points:  # rows that are not items (graph nodes): sample them here
        keep = subsample(labels, max_points, ctx.seed)
        feats, labels = feats[keep], labels[keep]
    n = len(feats)
    what = f"{n} {ctx.split} samples, {feats.shape[1]}-d features"
    if (labels < 0).all():
        notes.append("the data has no labels: every point is grey")
    pictures = [Picture(map_png(pca_2d(feats), labels, title="PCA",
                                class_names=ctx.class_names),
                        alt=f"PCA map of {what}", caption=f"PCA of {what}, coloured by label")]
    if tsne and 4 <= n <= TSNE_MAX_POINTS:
        pictures.append(Picture(map_png(tsne_2d(feats, ctx.seed), labels, title="t-SNE",
                                        class_names=ctx.class_names),
                                alt=f"t-SNE map of {what}",
                                caption=f"t-SNE (scikit-learn) of {what}"))
    elif tsne:
        notes.append(f"t-SNE left out: it maps 4 to {TSNE_MAX_POINTS} points, here {n} "
                     "(lower --max-points for one)")
    return Section(title, pictures=pictures, notes=notes)
