"""Non-contrastive objectives: SimSiam's negative cosine, Barlow Twins' cross-correlation loss
and VICReg's variance / invariance / covariance terms. Pure functions first, then thin modules.

Statistics over the batch (Barlow Twins' batch normalization and cross-correlation, VICReg's
variance and covariance) are taken over the *global* batch: the functions take the embeddings
of every process as arguments (``z_a_all``, ...), and the modules gather them with gradient
(``distributed.gather_with_grad``, a no-op on one device). Every rank then holds the global
value of those terms; ``gather_with_grad``'s backward sums every rank's gradient for each
slice, and DDP's average over the ranks gives exactly the gradient of one process holding the
whole batch (``tests/test_distributed_methods_redundancy.py``). Under autocast the embeddings
are upcast to float32 first and the D x D matrices are computed in float32 (``matmul_fp32``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anyssl import distributed
from anyssl.heads import MLPHead
from anyssl.objectives import _check_pair, _upcast, matmul_fp32
from anyssl.registry import OBJECTIVES

__all__ = ["BarlowTwinsLoss", "NegativeCosineLoss", "VICRegLoss", "barlow_twins_loss",
           "cross_correlation", "expander", "negative_cosine", "off_diagonal", "vicreg_loss",
           "vicreg_terms"]


def off_diagonal(x: Tensor) -> Tensor:
    """The off-diagonal entries of a square matrix, flattened (the Barlow Twins and VICReg
    reference code's ``off_diagonal``). Shape: D x D -> D*(D-1)."""
    n, m = x.shape
    if n != m:
        raise ValueError(f"off_diagonal needs a square matrix, got {tuple(x.shape)}")
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def negative_cosine(p: Tensor, z: Tensor) -> Tensor:
    """SimSiam's ``D(p, z) = -cos(p, z)`` (Chen & He 2021, eq. 1), mean over the batch.

    The caller detaches ``z`` (the stop-gradient of eq. 3). Shape: p, z: N x D; returns 0-dim.
    """
    _check_pair(p, z, "p and z")
    return -F.cosine_similarity(_upcast(p), _upcast(z), dim=1).mean()


def _batch_norm(z: Tensor, eps: float) -> Tensor:
    """BatchNorm without affine in training mode: batch mean, biased batch variance."""
    return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + eps)  # N x D


def cross_correlation(z_a: Tensor, z_b: Tensor, eps: float = 1e-5) -> Tensor:
    """Barlow Twins' empirical cross-correlation (Zbontar et al. 2021, eq. 2):
    ``c = bn(z_a).T @ bn(z_b) / N`` with ``bn`` a non-affine BatchNorm over the batch (the
    reference's ``nn.BatchNorm1d(D, affine=False)``, eps 1e-5, in training mode).

    Shape: z_a, z_b: N x D (the whole batch, N > 1); returns D x D.
    """
    _check_pair(z_a, z_b, "z_a and z_b")
    if z_a.shape[0] < 2:
        raise ValueError(f"cross_correlation needs a batch of 2 or more, got {z_a.shape[0]}")
    a, b = _batch_norm(_upcast(z_a), eps), _batch_norm(_upcast(z_b), eps)  # N x D each
    return matmul_fp32(a.T, b) / z_a.shape[0]  # D x D


def barlow_twins_loss(z_a: Tensor, z_b: Tensor, lambd: float = 0.0051) -> Tensor:
    """Barlow Twins' loss (Zbontar et al. 2021, eq. 1): ``sum_i (1 - c_ii)^2 + lambd *
    sum_{i != j} c_ij^2`` of ``c = cross_correlation(z_a, z_b)``.

    ``z_a``/``z_b`` are the embeddings of the whole (global) batch: the reference normalizes with
    SyncBatchNorm and all-reduces ``c``, which is the same matrix. Shape: N x D; returns 0-dim.
    """
    if lambd < 0:
        raise ValueError(f"lambd must be >= 0, got {lambd}")
    c = cross_correlation(z_a, z_b)  # D x D
    on_diag = (torch.diagonal(c) - 1).pow(2).sum()
    return on_diag + lambd * off_diagonal(c).pow(2).sum()


def _variance(z: Tensor, eps: float) -> Tensor:
    std = torch.sqrt(z.var(dim=0) + eps)  # D, unbiased as in the reference
    return F.relu(1 - std).mean()


def _covariance(z: Tensor) -> Tensor:
    z = z - z.mean(dim=0)  # N x D
    cov = matmul_fp32(z.T, z) / (z.shape[0] - 1)  # D x D
    return off_diagonal(cov).pow(2).sum() / z.shape[1]


def vicreg_terms(
    z_a: Tensor, z_b: Tensor, *, z_a_all: Tensor | None = None, z_b_all: Tensor | None = None,
    eps: float = 1e-4,
) -> tuple[Tensor, Tensor, Tensor]:
    """VICReg's three terms (Bardes et al. 2022, eqs. 1-6, as facebookresearch/vicreg's
    ``VICReg.forward`` computes them): the invariance ``mse(z_a, z_b)`` over the local batch,
    the variance ``mean relu(1 - sqrt(var + eps))`` and the covariance ``sum of squared
    off-diagonal entries / D``, each averaged (variance) or summed (covariance) over both views
    and computed over ``z_a_all``/``z_b_all``, the embeddings of every process (default: the
    local ones; the reference's ``FullGatherLayer``).

    Shape: z_a, z_b: N x D; z_a_all, z_b_all: M x D (M > 1). Returns three 0-dim tensors.
    """
    _check_pair(z_a, z_b, "z_a and z_b")
    if (z_a_all is None) != (z_b_all is None):
        raise ValueError("pass both z_a_all and z_b_all (the gathered views) or neither")
    a_all = _upcast(z_a if z_a_all is None else z_a_all)  # M x D
    b_all = _upcast(z_b if z_b_all is None else z_b_all)
    _check_pair(a_all, b_all, "z_a_all and z_b_all")
    if a_all.shape[1] != z_a.shape[1] or a_all.shape[0] < 2:
        raise ValueError(f"the gathered views must be M x {z_a.shape[1]} with M > 1, got "
                         f"{tuple(a_all.shape)}")
    invariance = F.mse_loss(_upcast(z_a), _upcast(z_b))
    variance = (_variance(a_all, eps) + _variance(b_all, eps)) / 2
    covariance = _covariance(a_all) + _covariance(b_all)
    return invariance, variance, covariance


def vicreg_loss(
    z_a: Tensor, z_b: Tensor, sim_coeff: float = 25.0, std_coeff: float = 25.0,
    cov_coeff: float = 1.0, *, z_a_all: Tensor | None = None, z_b_all: Tensor | None = None,
) -> Tensor:
    """``sim_coeff * invariance + std_coeff * variance + cov_coeff * covariance`` of
    ``vicreg_terms`` (Bardes et al. 2022, eq. 6; lambda = mu = 25, nu = 1, sec. 4.1).
    Shape: z_a, z_b: N x D; z_a_all, z_b_all: M x D. Returns a 0-dim tensor."""
    inv, var, cov = vicreg_terms(z_a, z_b, z_a_all=z_a_all, z_b_all=z_b_all)
    return sim_coeff * inv + std_coeff * var + cov_coeff * cov


def expander(in_dim: int, hidden_dim: int, out_dim: int, num_layers: int = 3) -> MLPHead:
    """Barlow Twins' projector and VICReg's expander: Linear-BN-ReLU ``num_layers - 1`` times,
    then a Linear *without* bias (barlowtwins main.py l. 195-202, vicreg main_vicreg.py
    l. 223-232): the loss normalizes or centres the embeddings, so a bias would get no
    gradient. Shape: N x in_dim -> N x out_dim."""
    head = MLPHead(in_dim, hidden_dim, out_dim, num_layers)
    last = head.layers[-1]
    assert isinstance(last, nn.Linear)
    last.register_parameter("bias", None)
    return head


# ---- modules -----------------------------------------------------------------------------------
@OBJECTIVES.register("negative_cosine")
class NegativeCosineLoss(nn.Module):
    """SimSiam's ``-cos(p, stopgrad(z))`` (Chen & He 2021, eq. 1); detaches ``z``."""

    def forward(self, p: Tensor, z: Tensor) -> Tensor:
        """Shape: p, z: N x D. Returns a 0-dim tensor."""
        return negative_cosine(p, z.detach())


@OBJECTIVES.register("barlow_twins")
class BarlowTwinsLoss(nn.Module):
    """Barlow Twins' loss over the global batch (Zbontar et al. 2021, eq. 1): both views are
    gathered from every process with gradient when ``gather`` (a no-op on one device), so
    every rank computes the whole batch's loss."""

    def __init__(self, lambd: float = 0.0051, gather: bool = True) -> None:
        super().__init__()
        if lambd < 0:
            raise ValueError(f"lambd must be >= 0, got {lambd}")
        self.lambd, self.gather = lambd, gather

    def forward(self, z_a: Tensor, z_b: Tensor) -> Tensor:
        """Shape: z_a, z_b: N x D (this process's rows). Returns a 0-dim tensor."""
        if self.gather:
            z_a, z_b = distributed.gather_with_grad(z_a), distributed.gather_with_grad(z_b)
        return barlow_twins_loss(z_a, z_b, self.lambd)

    def extra_repr(self) -> str:
        return f"lambd={self.lambd}"


@OBJECTIVES.register("vicreg")
class VICRegLoss(nn.Module):
    """VICReg's loss (Bardes et al. 2022, eq. 6): invariance on this process's rows, variance
    and covariance over both views gathered from every process with gradient when ``gather``.
    ``forward`` returns the loss; ``terms`` the three unweighted terms."""

    def __init__(self, sim_coeff: float = 25.0, std_coeff: float = 25.0, cov_coeff: float = 1.0,
                 gather: bool = True) -> None:
        super().__init__()
        if min(sim_coeff, std_coeff, cov_coeff) < 0:
            raise ValueError(f"VICReg coefficients must be >= 0, got {sim_coeff}, {std_coeff}, "
                             f"{cov_coeff}")
        self.sim_coeff, self.std_coeff, self.cov_coeff = sim_coeff, std_coeff, cov_coeff
        self.gather = gather

    def terms(self, z_a: Tensor, z_b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Invariance, variance, covariance. Shape: z_a, z_b: N x D; returns three 0-dim."""
        if not self.gather or distributed.world_size() == 1:
            return vicreg_terms(z_a, z_b)
        return vicreg_terms(z_a, z_b, z_a_all=distributed.gather_with_grad(z_a),
                            z_b_all=distributed.gather_with_grad(z_b))

    def forward(self, z_a: Tensor, z_b: Tensor) -> Tensor:
        """Shape: z_a, z_b: N x D. Returns a 0-dim tensor."""
        inv, var, cov = self.terms(z_a, z_b)
        return self.sim_coeff * inv + self.std_coeff * var + self.cov_coeff * cov

    def extra_repr(self) -> str:
        return f"sim_coeff={self.sim_coeff}, std_coeff={self.std_coeff}, cov_coeff={self.cov_coeff}"
