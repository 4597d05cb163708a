"""VICReg (Bardes, Ponce & LeCun 2022, "VICReg: Variance-Invariance-Covariance Regularization
for Self-Supervised Learning"): invariance between the views, plus a variance and a covariance
term on each view's embeddings that keep them from collapsing."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from anyssl.methods._common import check_views, encoder_dim
from anyssl.objectives_redundancy import VICRegLoss, expander
from anyssl.registry import METHODS
from anyssl.types import Batch, ViewSource

__all__ = ["VICReg"]

#: Expander width per encoder width: 8192 for ResNet-50's 2048 (sec. 4.1; ``--mlp 8192-8192-8192``).
WIDTH_FACTOR = 4


@METHODS.register("vicreg")
class VICReg(nn.Module):
    """VICReg: invariance, variance and covariance terms on the views' embeddings (25/25/1).

    ``z_i = expander(encoder(x_i))`` and ``loss = 25 mse(z_1, z_2) + 25 (v(z_1) + v(z_2)) / 2
    + (c(z_1) + c(z_2))`` with the hinge ``v(z) = mean relu(1 - sqrt(var(z) + 1e-4))`` and
    ``c(z) = sum of squared off-diagonal covariances / D`` (eqs. 1-6). With more than 2 views,
    the mean of that over every pair of views.

    Several processes: ``VICRegLoss`` gathers both views with gradient for the variance and
    covariance (the reference's ``FullGatherLayer``, main_vicreg.py l. 200-201, 307-323); the
    invariance is each rank's own mean, so the mean of the ranks' losses and DDP's averaged
    gradients equal one process's with the whole batch.

    Args:
        encoder, views: the backbone (with ``out_dim``) and the view generator.
        hidden_dim, out_dim: expander widths; ``None`` (the default) is 4 x the encoder's
            width: 8192-8192-8192 for ResNet-50 (sec. 4.1; main_vicreg.py l. 44), which small
            encoders cannot afford.
        num_layers: expander depth, 3 (main_vicreg.py l. 223-232).
        sim_coeff, std_coeff, cov_coeff: lambda, mu, nu = 25, 25, 1 (sec. 4.1; main_vicreg.py
            l. 58-63).
    """

    train_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "lars",  # LARS, biases and BN excluded (sec. 4.1; main_vicreg.py l. 109-115)
        "lr": 0.2,  # --base-lr 0.2 (main_vicreg.py l. 52); sec. 4.1
        "lr_scaling": "linear",  # base_lr x batch_size / 256 (main_vicreg.py l. 170)
        "weight_decay": 1e-6,  # --wd 1e-6 (main_vicreg.py l. 54); sec. 4.1
        "momentum": 0.9,  # LARS momentum (main_vicreg.py l. 251)
        "schedule": "cosine",  # cosine to 1/1000 of the lr (main_vicreg.py l. 167-178)
        "warmup_epochs": 10,  # 10 warm-up epochs (sec. 4.1; main_vicreg.py l. 169), batch 2048
        "final_lr_ratio": 0.001,  # end_lr = base_lr * 0.001 (main_vicreg.py l. 177-178)
    }

    def __init__(
        self,
        encoder: nn.Module,
        views: ViewSource,
        *,
        hidden_dim: int | None = None,
        out_dim: int | None = None,
        num_layers: int = 3,
        sim_coeff: float = 25.0,
        std_coeff: float = 25.0,
        cov_coeff: float = 1.0,
    ) -> None:
        super().__init__()
        check_views(views, "VICReg")
        self.encoder, self.views = encoder, views
        in_dim = encoder_dim(encoder)
        width = WIDTH_FACTOR * in_dim
        self.expander = expander(in_dim, hidden_dim or width, out_dim or width, num_layers)
        self.loss = VICRegLoss(sim_coeff, std_coeff, cov_coeff)

    def training_step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        inputs, _ = batch
        z = [self.expander(self.encoder(v)) for v in self.views(inputs)]  # V x (N x out)
        pairs = list(itertools.combinations(range(len(z)), 2))
        terms = torch.stack([torch.stack(self.loss.terms(z[i], z[j])) for i, j in pairs])
        inv, var, cov = terms.mean(0)  # each averaged over the pairs of views
        loss = self.loss.sim_coeff * inv + self.loss.std_coeff * var + self.loss.cov_coeff * cov
        logs = {"loss": loss.detach(), "invariance": inv.detach(), "variance": var.detach(),
                "covariance": cov.detach()}
        return loss, logs

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Same as ``training_step``, so a ``DistributedDataParallel`` wrapper can call it."""
        return self.training_step(batch)

    def on_step_end(self, step: int, max_steps: int) -> None:
        """Nothing to update after the optimizer step."""
