"""SimCLR: NT-Xent between the views' projections, averaged over view pairs."""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn

from anyssl.methods.simclr import SimCLR
from anyssl.objectives import nt_xent


def test_reference_defaults(make_parts) -> None:
    """google-research/simclr: BatchNorm on every projector layer (the last with a scale and no
    shift), hidden width = the encoder's; its README's CIFAR-10 command as the class defaults and
    its ImageNet command (sqrt lr scaling, temperature 0.1) for large data."""
    encoder, views = make_parts()
    method = SimCLR(encoder, views)
    layers = [type(m) for m in method.projector.layers]
    assert layers == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d]
    last = method.projector.layers[-1]
    assert last.weight is not None and last.bias is None
    assert method.projector.layers[0].out_features == encoder.out_dim
    assert method.projector.out_dim == 128 and method.loss.temperature == 0.5
    d = SimCLR.train_defaults
    assert (d["optimizer"], d["lr"], d["lr_scaling"], d["weight_decay"]) == (
        "lars", 1.0, "linear", 1e-4)
    large = SimCLR.scale_defaults["large"]
    assert large["train"] == {"lr": 0.075, "lr_scaling": "sqrt", "weight_decay": 1e-4}
    assert large["args"] == {"temperature": 0.1}
    plain = SimCLR(*make_parts(), last_bn=False)
    assert [type(m) for m in plain.projector.layers][-1] is nn.Linear


def test_hidden_dim_can_be_set(make_parts) -> None:
    encoder, views = make_parts()
    method = SimCLR(encoder, views, hidden_dim=64, out_dim=8)
    assert method.projector.layers[0].out_features == 64


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
