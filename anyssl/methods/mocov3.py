"""MoCo v3 (Chen, Xie & He 2021, "An Empirical Study of Training Self-Supervised Vision
Transformers"): a predictor on the query side, a momentum encoder on the key side, and InfoNCE
against the other keys of the batch (no queue). Reference code: facebookresearch/moco-v3
(``moco/builder.py``, ``main_moco.py``, ``CONFIG.md``)."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from anyssl import distributed
from anyssl.heads import MLPHead
from anyssl.methods._common import check_views, encoder_dim
from anyssl.momentum import MomentumTarget
from anyssl.objectives import info_nce
from anyssl.registry import METHODS
from anyssl.types import Batch, ViewSource

__all__ = ["MoCoV3", "patch_embedding"]

#: The ViT recipe (CONFIG.md, ViT-Small/Base: ``--optimizer=adamw --lr=1.5e-4
#: --weight-decay=.1 --warmup-epochs=40``); ``main_moco.py`` L190 scales every recipe's lr
#: linearly, ``lr = args.lr * args.batch_size / 256``, AdamW's too. AdamW betas: torch's.
VIT_TRAIN_DEFAULTS: dict[str, Any] = {"optimizer": "adamw", "lr": 1.5e-4, "lr_scaling": "linear",
                                      "weight_decay": 0.1, "momentum": 0.9, "schedule": "cosine",
                                      "warmup_epochs": 40}


def patch_embedding(encoder: nn.Module) -> nn.Module | None:
    """The encoder's patch embedding (a ViT's ``patch_embed``, timm's name, also on a wrapped
    timm model), or None for encoders without one (CNNs, series, graph and text encoders)."""
    found = getattr(encoder, "patch_embed", None)
    if isinstance(found, nn.Module):
        return found
    return next((m for name, m in encoder.named_modules()
                 if name.rsplit(".", 1)[-1] == "patch_embed"), None)


@METHODS.register("mocov3")
class MoCoV3(nn.Module):
    """MoCo v3: momentum encoder + predictor, symmetric InfoNCE over the batch, no queue

    ``q_i = predictor(projector(encoder(x_i)))``, ``k_i = momentum_encoder(x_i)`` (the EMA copy
    of encoder + projector) and ``loss = ctr(q_1, k_2) + ctr(q_2, k_1)`` with
    ``ctr(q, k) = 2 T * CE(q @ k_all.T / T, rank*N + i)`` on L2-normalized vectors (Alg. 1;
    builder.py L63-96). With more than 2 views, the mean of that over every pair of views.

    Several processes: the keys of every rank are gathered without gradient (they come from the
    momentum encoder; builder.py ``concat_all_gather``) and each query's positive is its own
    key at ``rank*N + i``; each rank's loss is the mean over its queries, so DDP's averaged
    gradient is the whole batch's. The reference converts BatchNorm to SyncBatchNorm on several
    GPUs (main_moco.py L196), a trainer option here.

    Encoders with a patch embedding (ViTs: ``patch_embedding``) get the ViT recipe of the
    reference: a 3-layer projector, a predictor ending in BatchNorm, T = 0.2, a frozen random
    patch projection (sec. 4.2, ``--stop-grad-conv1``) and the AdamW ``train_defaults`` of
    ``VIT_TRAIN_DEFAULTS``. Any other encoder gets the ResNet recipe (``MoCo_ResNet``).

    Args:
        encoder, views: the backbone (with ``out_dim``) and the view generator (2 views).
        hidden_dim: hidden width of projector and predictor, 4096 (``--moco-mlp-dim``).
        out_dim: projection and prediction size, 256 (``--moco-dim``).
        proj_layers: projector depth; None: 3 for ViTs (sec. 3, ``MoCo_ViT``), 2 otherwise
            (``MoCo_ResNet``: the fc is replaced by ``_build_mlp(2, ...)``, builder.py L105).
        temperature: None: 0.2 for ViTs (CONFIG.md ``--moco-t=.2``), 1.0 otherwise (the
            ``--moco-t`` default, which the ResNet commands of CONFIG.md keep).
        momentum: base momentum 0.99 (``--moco-m``; 0.996 for 1000 ResNet epochs), raised to 1
            on a half cosine (``--moco-m-cos`` in every CONFIG.md command).
        schedule: ``"cosine"`` or ``"constant"``.
        freeze_patch_embed: None: freeze the patch embedding when the encoder has one.
    """

    train_defaults: ClassVar[dict[str, Any]] = {  # the ResNet-50 recipe (README, CONFIG.md)
        "optimizer": "lars",  # main_moco.py --optimizer default (moco/optimizer.py LARS)
        "lr": 0.6,  # --lr default, the 100-epoch command (0.3 for 300 and 1000 epochs)
        "lr_scaling": "linear",  # main_moco.py L190: lr = args.lr * batch_size / 256
        "weight_decay": 1e-6,  # --wd default (1.5e-6 for 1000 epochs)
        "momentum": 0.9,  # LARS momentum, --momentum default
        "schedule": "cosine",  # adjust_learning_rate: half-cycle cosine after warm-up
        "warmup_epochs": 10,  # --warmup-epochs default
    }

    def __init__(
        self,
        encoder: nn.Module,
        views: ViewSource,
        *,
        hidden_dim: int = 4096,
        out_dim: int = 256,
        proj_layers: int | None = None,
        temperature: float | None = None,
        momentum: float = 0.99,
        schedule: str = "cosine",
        freeze_patch_embed: bool | None = None,
    ) -> None:
        super().__init__()
        check_views(views, "MoCoV3")
        if getattr(views, "n_global", None) not in (None, views.n_views):
            raise ValueError("MoCo v3 takes global views only; its views must not be multi-crop")
        self.encoder, self.views = encoder, views
        patch_embed = patch_embedding(encoder)
        vit = patch_embed is not None
        if vit:
            self.train_defaults = dict(VIT_TRAIN_DEFAULTS)  # type: ignore[misc]  # the trainer reads it
        if freeze_patch_embed if freeze_patch_embed is not None else vit:
            if patch_embed is None:
                raise ValueError(f"freeze_patch_embed needs an encoder with a patch_embed "
                                 f"module; {type(encoder).__name__} has none")
            patch_embed.requires_grad_(False)  # random patch projection (vits.py L49-51)
        layers = proj_layers or (3 if vit else 2)
        self.projector = MLPHead(encoder_dim(encoder), hidden_dim, out_dim, layers, last_bn=True)
        # ViT: BN on every predictor layer; ResNet: no BN after the last (builder.py L109, L122)
        self.predictor = MLPHead(out_dim, hidden_dim, out_dim, 2, last_bn=vit)
        self.momentum_encoder = MomentumTarget(nn.Sequential(self.encoder, self.projector),
                                               momentum, schedule)
        self.temperature = temperature if temperature is not None else (0.2 if vit else 1.0)
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")

    def contrast(self, q: Tensor, k: Tensor) -> Tensor:
        """builder.py ``contrastive_loss``: queries against every rank's keys, x 2T.
        Shape: q, k: N x out_dim. Returns a 0-dim tensor."""
        t = self.temperature
        if distributed.world_size() == 1:
            return 2 * t * info_nce(q, k, t)  # logits N x N
        k_all = distributed.gather_no_grad(k)  # (N*W) x out_dim
        return 2 * t * info_nce(q, k, t, key_all=k_all, rank=distributed.rank())  # N x (N*W)

    def training_step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        inputs, _ = batch
        views = self.views(inputs)
        q = [self.predictor(self.projector(self.encoder(v))) for v in views]  # V x (N x out)
        k = [self.momentum_encoder(v) for v in views]  # V x (N x out), no grad
        pairs = list(itertools.combinations(range(len(views)), 2))
        loss = torch.stack([self.contrast(q[i], k[j]) + self.contrast(q[j], k[i])
                            for i, j in pairs]).mean()
        return loss, {"loss": loss.detach(),
                      "momentum": torch.tensor(self.momentum_encoder.momentum)}

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Same as ``training_step``, so a ``DistributedDataParallel`` wrapper can call it."""
        return self.training_step(batch)

    def on_step_end(self, step: int, max_steps: int) -> None:
        """EMA update after optimizer step ``step``, with the momentum the reference uses for
        it: ``adjust_moco_momentum`` of the next iteration (main_moco.py L345, L433), whose
        forward updates the momentum encoder before computing the keys (builder.py L90)."""
        self.momentum_encoder.update(step + 1, max_steps)
