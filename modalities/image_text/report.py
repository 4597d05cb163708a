"""The image-text modality's report panel: retrieval examples on the held-out pairs (a few
images with the captions the trained model ranks first for them, and a few captions with the
images it ranks first), CLIP's cross-modal retrieval (Radford et al. 2021, sec. 3.1.5) made
visible. Registered as ``retrieval`` for ``anyssl report``.
"""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from anyssl.modalities.image.report import display_image
from anyssl.report.panels import PanelContext, register_panel
from anyssl.report.plots import figure, to_png
from anyssl.report.projection import pick_queries
from anyssl.report.sections import Picture, Section

__all__ = ["TOP", "caption_texts", "retrieval_examples"]

#: images queried (captions shown per image), captions queried (images shown per caption).
IMAGE_QUERIES, TOP, TEXT_QUERIES, TOP_IMAGES = 4, 3, 3, 5
HIT, MISS = "#2ca02c", "#d62728"


def _source(dataset: Any) -> tuple[Any, list[int]]:
    """The underlying dataset of a (nested) ``Subset`` and the source row of each item."""
    rows = list(range(len(dataset)))
    while isinstance(dataset, Subset):
        rows = [int(dataset.indices[r]) for r in rows]
        dataset = dataset.dataset
    return dataset, rows


def caption_texts(dataset: Any) -> list[str] | None:
    """Every caption of ``dataset``'s items, item by item, each item's in its order: the order
    of the caption rows ``split_rows`` gives (None when the data has no ``captions``)."""
    source, rows = _source(dataset)
    captions = getattr(source, "captions", None)
    return None if captions is None else [str(c) for r in rows for c in captions[r]]


@torch.no_grad()
def _embed(ctx: PanelContext) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unit image embeddings (N x E), caption embeddings (M x E) and each caption's image
    (M long) of the embedded split, under the trained two-tower method."""
    method: Any = ctx.run.parts.method.to(ctx.device).eval()  # a two-tower method (clip)
    modality = ctx.run.parts.modality
    k0, k1 = method.keys
    split_rows = getattr(_source(ctx.dataset)[0], "split_rows", None)
    images, texts, owners, seen = [], [], [], 0
    loader = DataLoader(ctx.dataset, batch_size=256, collate_fn=modality.collate)
    for batch in loader:
        inputs, _ = modality.to_device(batch, ctx.device, False)
        images.append(F.normalize(method.encode(k0, inputs[k0]).float(), dim=1).cpu())
        rows, owner = (split_rows(inputs[k1]) if split_rows is not None else
                       (inputs[k1], torch.arange(len(inputs[k1]))))
        texts.append(F.normalize(method.encode(k1, rows).float(), dim=1).cpu())
        owners.append(owner.long().cpu() + seen)
        seen += len(images[-1])
    return torch.cat(images), torch.cat(texts), torch.cat(owners)


def _image_ax(fig: Any, spec: Any, image: Any, colour: str) -> Any:
    ax = fig.add_subplot(spec)
    arr, cmap = display_image(image)
    ax.imshow(arr, cmap=cmap, vmin=0.0, vmax=1.0)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(3)
    return ax


def _wrap(text: str, width: int = 48) -> str:
    return textwrap.shorten(" ".join(text.split()), width=width, placeholder="…")


def _image_to_text(ctx: PanelContext, img: torch.Tensor, txt: torch.Tensor,
                   owner: torch.Tensor, captions: list[str]) -> bytes:
    queries = pick_queries(ctx.labels, IMAGE_QUERIES, ctx.seed)
    top = (img[queries] @ txt.T).topk(min(TOP, len(txt)), dim=1).indices  # Q x TOP
    fig = figure(6.5, 1.2 * len(queries))
    grid = fig.add_gridspec(len(queries), 2, width_ratios=(1, 4))
    for r, q in enumerate(queries):
        _image_ax(fig, grid[r, 0], ctx.dataset[int(q)][0]["image"], "black")
        ax = fig.add_subplot(grid[r, 1])
        ax.axis("off")
        for rank, j in enumerate(top[r].tolist()):
            hit = int(owner[j]) == int(q)
            ax.text(0.0, 0.85 - 0.33 * rank, f"{rank + 1}. {'✓' if hit else '✗'} "
                    f"{_wrap(captions[j])}", color=HIT if hit else MISS, fontsize=9,
                    transform=ax.transAxes, va="center")
    return bytes(to_png(fig))


def _text_to_image(ctx: PanelContext, img: torch.Tensor, txt: torch.Tensor,
                   owner: torch.Tensor, captions: list[str]) -> bytes:
    rng = np.random.default_rng(ctx.seed)
    picks = rng.choice(len(txt), size=min(TEXT_QUERIES, len(txt)), replace=False)
    k = min(TOP_IMAGES, len(img))
    top = (txt[picks] @ img.T).topk(k, dim=1).indices  # P x k
    fig = figure(1.1 * k + 2.5, 1.3 * len(picks))
    grid = fig.add_gridspec(len(picks), k + 1, width_ratios=(2.5, *([1] * k)))
    for r, j in enumerate(picks):
        ax = fig.add_subplot(grid[r, 0])
        ax.axis("off")
        ax.text(0.0, 0.5, textwrap.fill(_wrap(captions[j], 60), 22), fontsize=8,
                transform=ax.transAxes, va="center")
        for c, i in enumerate(top[r].tolist()):
            _image_ax(fig, grid[r, c + 1], ctx.dataset[i][0]["image"],
                      HIT if i == int(owner[j]) else MISS).set_title(f"{c + 1}", fontsize=7)
    return bytes(to_png(fig))


@register_panel("retrieval", modality="image-text")
def retrieval_examples(ctx: PanelContext) -> Section | None:
    """Image-to-caption and caption-to-image retrieval examples among the held-out pairs; the
    true partner is marked green (✓), others red."""
    captions = caption_texts(ctx.dataset)
    if captions is None or len(ctx.dataset) < 2 or not hasattr(ctx.run.parts.method, "keys"):
        return None
    img, txt, owner = _embed(ctx)
    if len(captions) != len(txt):  # an empty caption has no token row: no safe text per row
        return Section("Retrieval examples", notes=[
            f"left out: {len(captions)} captions but {len(txt)} caption rows were embedded"])
    where = f"among the {len(img)} {ctx.split} images and {len(txt)} captions"
    return Section("Retrieval examples", pictures=[
        Picture(_image_to_text(ctx, img, txt, owner, captions),
                alt="images with the captions ranked first for them",
                caption=f"image → caption: the {TOP} captions ranked first {where}; ✓ = a "
                        "caption of that image"),
        Picture(_text_to_image(ctx, img, txt, owner, captions),
                alt="captions with the images ranked first for them",
                caption=f"caption → image: the {TOP_IMAGES} images ranked first {where}; green "
                        "frame = the caption's image"),
    ])
