"""Graph multi-crop: small subgraphs as local views, on the embedded digits-graphs."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch

from anyssl.build import build_views
from anyssl.modality import get_modality


@pytest.fixture(scope="module")
def graphs() -> tuple[object, Batch]:
    ds = get_modality("graph").dataset(None, "train")
    return ds, Batch.from_data_list([ds[i][0] for i in range(8)])


@pytest.mark.parametrize("method,n_views", [
    ("simsiam", 2), ("barlowtwins", 2), ("vicreg", 2), ("mocov3", 2), ("nnclr", 2),
    ("dino", 8), ("swav", 8)])
def test_views_on_digit_graphs(graphs: tuple[object, Batch], method: str, n_views: int) -> None:
    ds, x = graphs
    views = build_views(get_modality("graph"), method, ds)
    assert (views.n_views, views.n_global) == (n_views, 2)
    views.manual_seed(0)
    out = views(x)
    sizes = torch.bincount(x.batch, minlength=8)
    for v in out:
        assert v.num_graphs == 8
    for v in out[2:]:  # local: a connected subgraph of floor(0.2 n) nodes of each graph
        kept = torch.bincount(v.batch, minlength=8)
        assert torch.equal(kept, (0.2 * sizes).floor().long().clamp_min(1))
    if n_views > 2:
        assert not torch.equal(out[2].x, out[3].x)  # each local view draws its own subgraph
    views.manual_seed(0)
    assert all(torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)
               for a, b in zip(out, views(x), strict=True))


def test_local_share_override(graphs: tuple[object, Batch]) -> None:
    ds, x = graphs
    views = build_views(get_modality("graph"), "swav", ds, views="2+2x0.5")
    out = views(x)
    sizes = torch.bincount(x.batch, minlength=8)
    assert len(out) == 4
    assert torch.equal(torch.bincount(out[3].batch, minlength=8), (0.5 * sizes).floor().long())
