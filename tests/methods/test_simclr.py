"""SimCLR: NT-Xent between the views' projections, averaged over view pairs."""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn

from anyssl.methods.simclr import SimCLR
from anyssl.objectives import nt_xent


def test_paper_defaults(make_parts) -> None:
    method = SimCLR(*make_parts())
    layers = [type(m) for m in method.projector.layers]
    assert layers == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert method.projector.layers[0].out_features == 2048 and method.projector.out_dim == 128
    assert method.loss.temperature == 0.5
    assert SimCLR.train_defaults["optimizer"] == "lars" and SimCLR.train_defaults["lr"] == 0.3


def test_hidden_dim_none_uses_encoder_width(make_parts) -> None:
    encoder, views = make_parts()
    method = SimCLR(encoder, views, hidden_dim=None, out_dim=8)
    assert method.projector.layers[0].out_features == encoder.out_dim


def test_loss_is_mean_nt_xent_over_view_pairs(make_parts, toy_batch) -> None:
    for n_views in (2, 3):
        encoder, views = make_parts(n_views=n_views)
        method = SimCLR(encoder, views, hidden_dim=32, out_dim=16, temperature=0.2)
        ref = copy.deepcopy(method)
        method.views.manual_seed(1)
        ref.views.manual_seed(1)
        loss, _ = method.training_step(toy_batch)
        z = [ref.projector(ref.encoder(v)) for v in ref.views(toy_batch[0])]
        pairs = list(itertools.combinations(range(n_views), 2))
        want = sum(nt_xent(z[i], z[j], 0.2) for i, j in pairs) / len(pairs)
        torch.testing.assert_close(loss, want)
