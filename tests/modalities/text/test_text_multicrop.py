"""Text multi-crop: contiguous spans as local views, on the embedded openmoji captions."""

from __future__ import annotations

import math

import pytest
import torch

from anyssl.build import build_views
from anyssl.modalities.text.augment_span import Span
from anyssl.modalities.text.tokenizer import END, N_SPECIAL, PAD, START
from anyssl.modality import get_modality


def _rows(n_text: list[int], length: int) -> torch.Tensor:
    x = torch.full((len(n_text), length), PAD)
    for i, n in enumerate(n_text):
        x[i, 0], x[i, n + 1] = START, END
        x[i, 1:n + 1] = N_SPECIAL + 100 * i + torch.arange(n)  # distinct, increasing tokens
    return x


def test_span_keeps_a_contiguous_share_of_each_caption() -> None:
    n_text = [20, 10, 1, 0, 30] * 10
    x = _rows(n_text, 32)
    out = Span(scale=(0.25, 0.5))(x, torch.Generator().manual_seed(0))
    assert out.shape == (50, math.ceil(0.5 * 30) + 2)
    widths = set()
    for i, n in enumerate(n_text):
        row = out[i]
        end = int((row == END).nonzero()[0, 0])
        w = end - 1
        assert row[0] == START and (row[end + 1:] == PAD).all()
        if n == 0:
            assert w == 0
            continue
        assert 1 <= w <= max(1, round(0.5 * n)) and w >= min(n, max(1, round(0.25 * n)))
        span = row[1:end]
        assert torch.equal(span, span[0] + torch.arange(w))  # contiguous in the caption
        assert bool(torch.isin(span, x[i]).all())
        widths.add((n, w, int(span[0])))
    assert len(widths) > 12  # shares and starts drawn per caption


def test_span_bad_input() -> None:
    with pytest.raises(ValueError, match="span scale"):
        Span(scale=(0.6, 0.2))
    with pytest.raises(ValueError, match="B x L long token ids"):
        Span()(torch.zeros(2, 3, 8, dtype=torch.long))


@pytest.fixture(scope="module")
def captions() -> tuple[object, torch.Tensor]:
    ds = get_modality("text").dataset(None, "train")
    return ds, torch.stack([ds[i][0] for i in range(8)])  # 8 x 32


@pytest.mark.parametrize("method,n_views", [
    ("simsiam", 2), ("barlowtwins", 2), ("vicreg", 2), ("mocov3", 2), ("nnclr", 2),
    ("dino", 8), ("swav", 8)])
def test_views_on_openmoji(captions: tuple[object, torch.Tensor], method: str,
                           n_views: int) -> None:
    ds, x = captions
    views = build_views(get_modality("text"), method, ds)
    assert (views.n_views, views.n_global) == (n_views, 2)
    views.manual_seed(0)
    out = views(x)
    assert [v.shape[1] for v in out] == [32, 32] + [17] * (n_views - 2)  # ceil(0.5 x 30) + 2
    for v in out:
        assert bool((v[:, 0] == START).all() and ((v == END).sum(dim=1) == 1).all())
    views.manual_seed(0)
    assert all(torch.equal(a, b) for a, b in zip(out, views(x), strict=True))
