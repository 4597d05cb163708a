"""Parity of SimSiam's, Barlow Twins' and VICReg's objectives (values and gradients) against
transcriptions of the reference code, their global-batch form, and bad inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anyssl.objectives_redundancy import (
    BarlowTwinsLoss,
    NegativeCosineLoss,
    VICRegLoss,
    barlow_twins_loss,
    cross_correlation,
    expander,
    negative_cosine,
    off_diagonal,
    vicreg_loss,
    vicreg_terms,
)
from anyssl.registry import OBJECTIVES

N, D, W = 6, 5, 2  # batch, width, "ranks"


def _rand(*shape: int, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_(True)


def _grads(loss: Tensor, *xs: Tensor) -> tuple[Tensor, ...]:
    return torch.autograd.grad(loss, xs)


# ---- transcriptions of the reference code ----------------------------------------------------
def ref_off_diagonal(x: Tensor) -> Tensor:
    """barlowtwins main.py l. 180-184 (and vicreg main_vicreg.py l. 239-242)."""
    n, m = x.shape
    assert n == m
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def ref_simsiam(p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor) -> Tensor:
    """main_simsiam.py l. 295, with builder.py l. 61's detach."""
    criterion = nn.CosineSimilarity(dim=1)
    return -(criterion(p1, z2.detach()).mean() + criterion(p2, z1.detach()).mean()) * 0.5


def ref_barlow(z1: Tensor, z2: Tensor, lambd: float, batch_size: int, ranks: int = 1) -> Tensor:
    """barlowtwins main.py l. 204-221 on ``ranks`` processes: BatchNorm is SyncBatchNorm (global
    statistics, main.py l. 89), each rank's ``c`` is divided by the global batch and summed
    (``all_reduce``)."""
    bn = nn.BatchNorm1d(z1.shape[1], affine=False).double()  # training mode: batch statistics
    n1, n2 = bn(z1), bn(z2)  # SyncBatchNorm: the whole batch's statistics
    c = torch.zeros(z1.shape[1], z1.shape[1], dtype=z1.dtype)
    for r in range(ranks):
        rows = slice(r * batch_size // ranks, (r + 1) * batch_size // ranks)
        c_r = n1[rows].T @ n2[rows]
        c_r = c_r.div(batch_size)
        c = c + c_r  # torch.distributed.all_reduce(c)
    on_diag = torch.diagonal(c).add_(-1).pow_(2).sum()
    off_diag = ref_off_diagonal(c).pow_(2).sum()
    return on_diag + lambd * off_diag


def ref_vicreg(x: Tensor, y: Tensor, x_all: Tensor, y_all: Tensor, batch_size: int,
               sim: float = 25.0, std: float = 25.0, cov: float = 1.0) -> Tensor:
    """main_vicreg.py l. 194-220: one rank's loss; ``x_all``/``y_all`` are FullGatherLayer's."""
    num_features = x.shape[1]
    repr_loss = F.mse_loss(x, y)
    x, y = x_all - x_all.mean(dim=0), y_all - y_all.mean(dim=0)
    std_x = torch.sqrt(x.var(dim=0) + 0.0001)
    std_y = torch.sqrt(y.var(dim=0) + 0.0001)
    std_loss = torch.mean(F.relu(1 - std_x)) / 2 + torch.mean(F.relu(1 - std_y)) / 2
    cov_x = (x.T @ x) / (batch_size - 1)
    cov_y = (y.T @ y) / (batch_size - 1)
    cov_loss = ref_off_diagonal(cov_x).pow_(2).sum().div(num_features) + ref_off_diagonal(
        cov_y).pow_(2).sum().div(num_features)
    return sim * repr_loss + std * std_loss + cov * cov_loss


# ---- parity ------------------------------------------------------------------------------------
def test_off_diagonal_is_every_entry_but_the_diagonal() -> None:
    x = torch.arange(16.0).view(4, 4)
    want = torch.tensor([v for i in range(4) for j in range(4) if i != j for v in [x[i, j]]])
    torch.testing.assert_close(off_diagonal(x), want)


def test_simsiam_symmetric_loss_matches_reference() -> None:
    p1, p2, z1, z2 = (_rand(N, D, seed=s) for s in range(4))
    loss = NegativeCosineLoss()
    got = 0.5 * (loss(p1, z2) + loss(p2, z1))
    want = ref_simsiam(p1, p2, z1, z2)
    torch.testing.assert_close(got, want)
    g_got, g_want = _grads(got, p1, p2), _grads(want, p1, p2)
    for a, b in zip(g_got, g_want, strict=True):
        torch.testing.assert_close(a, b)
    assert got.grad_fn is not None and torch.autograd.grad(got, z1, allow_unused=True)[0] is None
    torch.testing.assert_close(negative_cosine(p1, p1), torch.tensor(-1.0, dtype=torch.float64))


@pytest.mark.parametrize("lambd", [0.0051, 0.5])
def test_barlow_twins_matches_reference_values_and_gradients(lambd: float) -> None:
    z1, z2 = _rand(N, D, seed=1), _rand(N, D, seed=2)
    got, want = barlow_twins_loss(z1, z2, lambd), ref_barlow(z1, z2, lambd, N)
    torch.testing.assert_close(got, want)
    for a, b in zip(_grads(got, z1, z2), _grads(want, z1, z2), strict=True):
        torch.testing.assert_close(a, b)


def test_barlow_twins_global_batch_equals_the_references_all_reduce() -> None:
    """The whole batch's loss is what every reference rank computes (SyncBN + all_reduce(c))."""
    z1, z2 = _rand(W * N, D, seed=3), _rand(W * N, D, seed=4)
    torch.testing.assert_close(barlow_twins_loss(z1, z2), ref_barlow(z1, z2, 0.0051, W * N, W))
    # not the per-rank BatchNorm of plain (unsynced) BatchNorm: statistics must be global
    local = sum(barlow_twins_loss(z1[r * N:(r + 1) * N], z2[r * N:(r + 1) * N]) for r in range(W))
    assert not torch.allclose(local / W, barlow_twins_loss(z1, z2))


def test_cross_correlation_of_a_view_with_itself_has_unit_diagonal() -> None:
    z = _rand(N, D, seed=5).detach()
    c = cross_correlation(z, z)
    torch.testing.assert_close(torch.diagonal(c), torch.ones(D, dtype=z.dtype), atol=1e-4,
                               rtol=0)
    torch.testing.assert_close(c, c.T)


def test_vicreg_matches_reference_values_and_gradients() -> None:
    z1, z2 = _rand(N, D, seed=6), _rand(N, D, seed=7)
    got, want = vicreg_loss(z1, z2), ref_vicreg(z1, z2, z1, z2, N)
    torch.testing.assert_close(got, want)
    for a, b in zip(_grads(got, z1, z2), _grads(want, z1, z2), strict=True):
        torch.testing.assert_close(a, b)


def test_vicreg_rank_loss_with_gathered_views_matches_reference() -> None:
    """Each rank: invariance on its rows, variance/covariance on everything (FullGatherLayer);
    the mean of the ranks' losses is the whole batch's loss."""
    z1, z2 = _rand(W * N, D, seed=8), _rand(W * N, D, seed=9)
    per_rank = []
    for r in range(W):
        rows = slice(r * N, (r + 1) * N)
        got = vicreg_loss(z1[rows], z2[rows], 2.0, 3.0, 0.5, z_a_all=z1, z_b_all=z2)
        torch.testing.assert_close(got, ref_vicreg(z1[rows], z2[rows], z1, z2, W * N, 2, 3, 0.5))
        per_rank.append(got)
    torch.testing.assert_close(sum(per_rank) / W, vicreg_loss(z1, z2, 2.0, 3.0, 0.5))


def test_vicreg_terms_see_collapse() -> None:
    z = torch.ones(N, D, dtype=torch.float64)  # every embedding equal: std 0
    inv, var, cov = vicreg_terms(z, z)
    assert float(inv) == 0 and float(cov) == 0
    torch.testing.assert_close(var, torch.tensor(1 - 1e-2, dtype=torch.float64))  # 1 - sqrt(eps)


def test_modules_are_registered_and_use_their_coefficients() -> None:
    z1, z2 = _rand(N, D, seed=10), _rand(N, D, seed=11)
    assert isinstance(OBJECTIVES.build("negative_cosine"), NegativeCosineLoss)
    barlow = OBJECTIVES.build("barlow_twins", lambd=0.1)
    assert isinstance(barlow, BarlowTwinsLoss)
    torch.testing.assert_close(barlow(z1, z2), barlow_twins_loss(z1, z2, 0.1))
    vic = OBJECTIVES.build("vicreg", sim_coeff=1.0, std_coeff=2.0, cov_coeff=3.0)
    assert isinstance(vic, VICRegLoss)
    inv, var, cov = vicreg_terms(z1, z2)
    torch.testing.assert_close(vic(z1, z2), inv + 2 * var + 3 * cov)


def test_expander_ends_with_a_linear_without_bias() -> None:
    head = expander(8, 16, 12)
    kinds = [type(m).__name__ for m in head.layers]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    last = head.layers[-1]
    assert isinstance(last, nn.Linear) and last.bias is None and last.out_features == 12
    assert head(torch.randn(4, 8)).shape == (4, 12)


def test_bfloat16_inputs_give_float32_losses() -> None:
    z1, z2 = torch.randn(N, D).bfloat16(), torch.randn(N, D).bfloat16()
    for loss in (negative_cosine(z1, z2), barlow_twins_loss(z1, z2), vicreg_loss(z1, z2)):
        assert loss.dtype == torch.float32 and torch.isfinite(loss)


# ---- bad inputs --------------------------------------------------------------------------------
def test_bad_inputs_raise() -> None:
    a, b = torch.randn(N, D), torch.randn(N, D + 1)
    with pytest.raises(ValueError, match="square"):
        off_diagonal(torch.randn(3, 4))
    with pytest.raises(ValueError, match="same shape"):
        negative_cosine(a, b)
    with pytest.raises(ValueError, match="same shape"):
        barlow_twins_loss(a, b)
    with pytest.raises(ValueError, match="batch of 2"):
        cross_correlation(a[:1], a[:1])
    with pytest.raises(ValueError, match="lambd"):
        BarlowTwinsLoss(-1.0)
    with pytest.raises(ValueError, match="both"):
        vicreg_terms(a, a, z_a_all=a)
    with pytest.raises(ValueError, match="M x"):
        vicreg_terms(a, a, z_a_all=torch.randn(N, 3), z_b_all=torch.randn(N, 3))
    with pytest.raises(ValueError, match="coefficients"):
        VICRegLoss(std_coeff=-1.0)
