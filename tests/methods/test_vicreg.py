"""VICReg: invariance + variance + covariance (25 / 25 / 1) on the expander's outputs."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from anyssl.methods.vicreg import VICReg
from anyssl.objectives_redundancy import vicreg_loss, vicreg_terms


def test_paper_defaults(make_parts) -> None:
    method = VICReg(*make_parts())
    linears = [m for m in method.expander.layers if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [96, 96, 96]  # 4 x 24: 8192 for ResNet-50
    assert linears[-1].bias is None  # main_vicreg.py l. 231
    loss = method.loss
    assert (loss.sim_coeff, loss.std_coeff, loss.cov_coeff) == (25.0, 25.0, 1.0)
    d = VICReg.train_defaults
    assert (d["optimizer"], d["lr"], d["lr_scaling"], d["weight_decay"], d["warmup_epochs"]) == (
        "lars", 0.2, "linear", 1e-6, 10)


def test_loss_and_logged_terms(make_parts, toy_batch) -> None:
    method = VICReg(*make_parts(), hidden_dim=32, out_dim=16, sim_coeff=2.0)
    ref = copy.deepcopy(method)
    method.views.manual_seed(3)
    ref.views.manual_seed(3)
    loss, logs = method.training_step(toy_batch)
    z1, z2 = (ref.expander(ref.encoder(v)) for v in ref.views(toy_batch[0]))
    torch.testing.assert_close(loss, vicreg_loss(z1, z2, 2.0, 25.0, 1.0))
    inv, var, cov = vicreg_terms(z1, z2)
    for key, want in (("invariance", inv), ("variance", var), ("covariance", cov)):
        torch.testing.assert_close(logs[key], want.detach())


def test_bad_coefficients_raise(make_parts) -> None:
    with pytest.raises(ValueError, match="coefficients"):
        VICReg(*make_parts(), cov_coeff=-1.0)
