"""CLIP (Radford et al. 2021, "Learning Transferable Visual Models From Natural Language
Supervision"): two towers embed the two sides of each pair (image, caption), linear projections
map both into one space, and a symmetric contrastive loss with a learnable temperature pulls the
pairs together (fig. 3). Follows open_clip's ``model.py`` and ``loss.py``."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anyssl.methods._common import encoder_dim
from anyssl.objectives_pair import ClipLoss
from anyssl.registry import METHODS
from anyssl.types import Batch, ViewSource

__all__ = ["CLIP"]


def _check_pair_encoder(encoder: Any) -> tuple[str, str]:
    keys = getattr(encoder, "keys", None)
    if not (isinstance(keys, tuple) and len(keys) == 2 and callable(getattr(encoder, "tower", None))
            and callable(getattr(encoder, "encode", None))):
        raise ValueError(
            f"clip needs a two-tower encoder (anyssl.pair.PairEncoder), got "
            f"{type(encoder).__name__}; use --modality image-text or build a PairEncoder"
        )
    first = getattr(encoder, "primary", keys[0])  # the primary (image) side first
    return (keys[0], keys[1]) if first == keys[0] else (keys[1], keys[0])


@torch.no_grad()
def _in_batch_accuracy(a: Tensor, b: Tensor) -> Tensor:
    """Mean of the a -> b and b -> a top-1 retrieval accuracy within the batch (0-dim float32).
    Shape: a, b: N x D."""
    sims = a @ b.T  # N x N
    target = torch.arange(a.shape[0], device=a.device)  # N
    a_to_b = (sims.argmax(dim=1) == target).float().mean()
    b_to_a = (sims.argmax(dim=0) == target).float().mean()
    return (a_to_b + b_to_a) / 2


@METHODS.register("clip")
class CLIP(nn.Module):
    """CLIP: two towers, symmetric InfoNCE over paired inputs, learnable temperature.

    ``a = normalize(W_a f_a(x_a))``, ``b = normalize(W_b f_b(x_b))`` and
    ``loss = clip_loss(a, b, exp(t))`` with the learnable log-scale ``t`` (fig. 3).

    Args:
        encoder: a two-tower ``anyssl.pair.PairEncoder`` (``keys``, ``tower``, ``encode``);
            ``self.keys`` puts its ``primary`` (image) side first.
        views: a one-view source of dict batches (``anyssl.pair.KeyedViews``).
        embed_dim: size of the joint embedding (512 for CLIP's RN50 and ViT-B, Table 19/20;
            256 suits the small encoders here).
        init_temperature: the initial temperature, 0.07 (sec. 2.5, from Wu et al. 2018).
        max_logit_scale: the clip of ``exp(t)``, 100 (sec. 2.5: "to prevent scaling the logits
            by more than 100").
        local_loss: open_clip's ``--local-loss``: with several processes, score only the local
            rows against the gathered batch (same global loss, a W-th of the logits).
    """

    #: Paired inputs only: modalities list ``clip`` in ``Modality.methods`` to offer it.
    needs_pair: ClassVar[bool] = True
    train_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adamw",  # Adam with decoupled weight decay (sec. 2.5)
        "lr": 5e-4,  # RN50 / ViT-B/32 at batch 32,768 (Table 19/20); open_clip's usual 5e-4
        "lr_scaling": "none",  # AdamW at a fixed lr: the paper and open_clip scale no lr
        "weight_decay": 0.2,  # Table 19/20; not on gains, biases or logit_scale (param_groups)
        # AdamW beta1. build_optimizer uses betas (0.9, 0.999) with eps 1e-8: the paper's ResNet
        # setting; its ViTs (and open_clip's ViT recipes) use beta2 0.98 and eps 1e-6.
        "momentum": 0.9,
        "schedule": "cosine",  # cosine decay (sec. 2.5)
        "warmup_epochs": 1,  # the paper warms up 2,000 steps, open_clip 10,000 by default
        "batch_size": 256,  # the paper uses 32,768 (sec. 2.5); the lr does not scale with it
    }

    def __init__(
        self,
        encoder: nn.Module,
        views: ViewSource,
        *,
        embed_dim: int = 256,
        init_temperature: float = 0.07,
        max_logit_scale: float = 100.0,
        local_loss: bool = False,
    ) -> None:
        super().__init__()
        keys = _check_pair_encoder(encoder)
        if getattr(views, "n_views", None) != 1:
            raise ValueError(
                f"clip needs a one-view source of dict batches (anyssl.pair.KeyedViews), got "
                f"{getattr(views, 'n_views', None)} views"
            )
        if embed_dim < 1 or init_temperature <= 0 or max_logit_scale < 1:
            raise ValueError(
                f"clip needs embed_dim >= 1, init_temperature > 0 and max_logit_scale >= 1, got "
                f"{embed_dim}, {init_temperature}, {max_logit_scale}"
            )
        self.encoder, self.views, self._keys = encoder, views, keys
        self.max_logit_scale = float(max_logit_scale)
        self.projections = nn.ModuleDict()
        for key in keys:
            width = encoder_dim(encoder.tower(key))  # type: ignore[operator]
            proj = nn.Linear(width, embed_dim, bias=False)
            nn.init.normal_(proj.weight, std=width**-0.5)  # open_clip's text/visual projection
            self.projections[key] = proj
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / init_temperature)))
        self.loss = ClipLoss(local_loss=local_loss)

    @property
    def keys(self) -> tuple[str, str]:
        """The two input keys, primary (image) side first."""
        return self._keys

    def encode(self, key: str, x: Any) -> Tensor:
        """L2-normalized joint embedding of one side. Shape: B x ... -> B x embed_dim."""
        if key not in self.projections:
            raise ValueError(f"no side {key!r}; clip's sides are {list(self.projections)}")
        feats = self.encoder.encode(key, x)  # type: ignore[operator]  # B x width
        return F.normalize(self.projections[key](feats), dim=-1)  # B x embed_dim

    def scale(self) -> Tensor:
        """``exp(logit_scale)`` clamped to ``max_logit_scale`` (0-dim)."""
        return self.logit_scale.exp().clamp(max=self.max_logit_scale)

    def training_step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        inputs, _ = batch
        view = self.views(inputs)[0]
        k0, k1 = self.keys
        a, b = self.encode(k0, view[k0]), self.encode(k1, view[k1])  # N x E each
        scale = self.scale()
        loss = self.loss(a, b, scale)
        logs = {"loss": loss.detach(), "logit_scale": scale.detach().float(),
                "acc": _in_batch_accuracy(a.detach(), b.detach())}
        return loss, logs

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Same as ``training_step``, so a ``DistributedDataParallel`` wrapper can call it."""
        return self.training_step(batch)

    @torch.no_grad()
    def on_step_end(self, step: int, max_steps: int) -> None:
        """Clamp ``logit_scale`` to ``[0, log(max_logit_scale)]`` after the optimizer step
        (open_clip's training loop)."""
        self.logit_scale.clamp_(0, math.log(self.max_logit_scale))
