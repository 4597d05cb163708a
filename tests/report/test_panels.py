"""Report panels: the registry keyed by modality, a panel given as a function, the image
display conversion and the image-text retrieval's caption alignment."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import Subset

from anyssl.modality import get_modality
from anyssl.registry import UnknownNameError
from anyssl.report.panels import PanelContext, resolve_panels
from anyssl.report.sections import Section

pytest.importorskip("matplotlib", reason="the report draws with matplotlib (anyssl[report])")


def test_each_modality_has_its_panels() -> None:
    from anyssl.modalities.image.report import neighbour_grid
    from anyssl.modalities.image_text.report import retrieval_examples
    from anyssl.modalities.timeseries.report import series_neighbours

    get_modality("graph")  # loads every plugin
    panels = {m: resolve_panels(m) for m in ("image", "timeseries", "image-text", "graph", "text")}
    assert panels == {"image": [neighbour_grid], "timeseries": [series_neighbours],
                      "image-text": [retrieval_examples], "graph": [], "text": []}
    assert resolve_panels("image", ["neighbours", retrieval_examples]) == [
        neighbour_grid, retrieval_examples]  # a name or the panel itself
    with pytest.raises(UnknownNameError, match="valid: neighbours"):
        resolve_panels("image", ["retrieval"])


def test_a_panel_given_as_a_function_sees_the_embedded_split(image_run: Path) -> None:
    from anyssl.report import render_report

    seen: list[PanelContext] = []

    def count_panel(ctx: PanelContext) -> Section:
        seen.append(ctx)
        return Section("Label counts", notes=[f"{len(ctx.labels)} labels <counted>"])

    page = render_report([image_run], panels=[count_panel], tsne=False, max_points=40)
    ctx = seen[0]
    assert ctx.split == "test" and ctx.aligned and ctx.features.shape == (40, 128)
    assert len(ctx.dataset) == 40 and len(np.unique(ctx.labels)) == 10
    assert ctx.labels.tolist() == [int(ctx.dataset[i][1]) for i in range(40)]
    assert "<h2>Label counts: digits-simclr</h2>" in page
    assert "40 labels &lt;counted&gt;" in page and "Nearest neighbours" not in page


def test_display_image_of_grey_colour_and_float_images() -> None:
    from anyssl.modalities.image.report import display_image

    grey, cmap = display_image(torch.full((1, 4, 5), 255, dtype=torch.uint8))
    assert cmap == "gray" and grey.shape == (4, 5) and np.all(grey == 1.0)
    rgb, cmap = display_image(torch.zeros(4, 3, 2, dtype=torch.uint8))
    assert cmap is None and rgb.shape == (3, 2, 3)  # an alpha channel is dropped
    scaled, _ = display_image(torch.tensor([[[-2.0, 0.0], [2.0, 1.0]]]))
    assert scaled.tolist() == [[0.0, 0.5], [1.0, 0.75]]
    with pytest.raises(ValueError, match="C x H x W"):
        display_image(torch.zeros(1, 1, 2, 2))


class _OneHotPairs(nn.Module):
    """A two-tower stand-in: an image embeds as the one-hot of its item (its pixel value / 20),
    a caption row as the one-hot of the item it was written for."""

    keys = ("image", "text")

    def __init__(self, rows: dict[tuple[int, ...], int], n: int) -> None:
        super().__init__()
        self.rows, self.n = rows, n

    def encode(self, key: str, x: Tensor) -> Tensor:
        items = (x[:, 0, 0, 0].long() // 20 if key == "image" else
                 torch.tensor([self.rows[tuple(r.tolist())] for r in x]))
        return nn.functional.one_hot(items, self.n).float()


def test_retrieval_captions_line_up_with_their_embeddings() -> None:
    from anyssl.modalities.image_text.datasets import PairDataset, resolve_tokenizer
    from anyssl.modalities.image_text.report import _embed, caption_texts, retrieval_examples

    captions = [["a red square", "red box"], ["blue dot"], ["green leaf", "a green", "leaf"],
                ["yellow sun"]]
    texts = [c for cs in captions for c in cs]
    images = torch.arange(4, dtype=torch.uint8).mul(20).view(4, 1, 1, 1).expand(4, 3, 8, 8)
    ds = PairDataset(images.contiguous(), captions, resolve_tokenizer(None, texts, 300), 8,
                     targets=[0, 1, 0, 1], class_names=["x", "y"])
    rows = {tuple(ds.text[i, j].tolist()): i for i in range(4) for j in range(len(captions[i]))}
    subset = Subset(ds, [2, 0, 3])
    ctx = PanelContext(run=SimpleNamespace(parts=SimpleNamespace(  # type: ignore[arg-type]
        method=_OneHotPairs(rows, 4), modality=get_modality("image-text"))),
        dataset=subset, split="test", features=np.eye(3), labels=np.array([0, 0, 1]),
        aligned=True, class_names=["x", "y"], device=torch.device("cpu"))
    img, txt, owner = _embed(ctx)
    assert owner.tolist() == [0, 0, 0, 1, 1, 2]  # item 2's three captions, item 0's two ...
    assert txt.argmax(1).tolist() == [2, 2, 2, 0, 0, 3]  # ... each embedded as its own item's
    assert img.argmax(1).tolist() == [2, 0, 3]
    assert caption_texts(subset) == [*captions[2], *captions[0], *captions[3]]  # row by row
    section = retrieval_examples(ctx)
    assert section is not None and len(section.pictures) == 2 and not section.notes
