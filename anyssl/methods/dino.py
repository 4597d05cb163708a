"""DINO (Caron et al. 2021, "Emerging Properties in Self-Supervised Vision Transformers"):
self-distillation with no labels. A student matches the centered, sharpened output of a
teacher, the EMA of the student, across views; multi-crop: the teacher sees the global views."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from anyssl.heads_dino import DINOHead
from anyssl.methods._common import check_views, encoder_dim
from anyssl.momentum import MomentumTarget
from anyssl.objectives_cluster import DINOLoss, teacher_temperature
from anyssl.registry import METHODS
from anyssl.types import Batch, ViewSource

__all__ = ["DINO"]


@METHODS.register("dino")
class DINO(nn.Module):
    """DINO: a student matches an EMA teacher's centered, sharpened outputs; multi-crop.

    ``s_v = head(encoder(x_v))`` for every view, ``t_i = teacher(x_i)`` for the ``n_global``
    global views (the views' ``n_global``, default all), and ``loss = dino_loss`` over the pairs
    ``(t_i, s_v)``, ``v != i`` (Algorithm 1; ``main_dino.py`` ``DINOLoss``). The center is
    updated after each step's loss. Views of another size (local crops) are encoded one view at
    a time, so any modality's views work; the head runs once on all the features.

    Epoch-based settings (teacher temperature warm-up, last layer frozen for the first
    ``freeze_last_layer`` epochs) follow the trainer's ``before_optimizer_step`` hook; the epoch
    it reached is saved with the weights. Without the hook, the method stays in epoch 0.

    Several processes: each rank's loss is the mean over its samples (DDP averages the
    gradients); the center is the all-reduced mean of every rank's teacher outputs, as in
    ``DINOLoss.update_center``. The teacher follows the DDP-synchronized student, so it is the
    same on every rank.

    Args:
        encoder, views: the backbone (with ``out_dim``) and the view generator (global first).
        out_dim: prototypes K, 65,536 for ImageNet (``main_dino.py --out_dim``); 4,096 is
            solo-learn's CIFAR setting (``scripts/pretrain/cifar/dino.yaml``), ``scale_defaults``.
        hidden_dim, bottleneck_dim: head widths 2048 and 256 (``DINOHead``).
        norm_last_layer: freeze the norm of the last layer (``--norm_last_layer``, True; the
            README uses False for ViT-S/16).
        momentum: teacher EMA base 0.996, to 1 on a cosine (``--momentum_teacher``).
        teacher_temp, warmup_teacher_temp, warmup_teacher_temp_epochs: 0.04, 0.04, 0 (the
            code's defaults; the README's ViT-S 300-epoch recipe: 0.07 after 30 epochs).
        student_temp: 0.1 (``DINOLoss``). center_momentum: 0.9 (``DINOLoss``).
        freeze_last_layer: epochs with the last layer frozen, 1 (``--freeze_last_layer``).
    """

    train_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adamw",  # main_dino.py --optimizer adamw (recommended with ViTs)
        "lr": 0.0005,  # --lr 0.0005 at batch 256 (main_dino.py L96-98)
        "lr_scaling": "linear",  # lr x B/256, "linear scaling rule" (main_dino.py L239)
        "weight_decay": 0.04,  # --weight_decay 0.04, cosine to --weight_decay_end
        "weight_decay_end": 0.4,  # --weight_decay_end 0.4 (utils.cosine_scheduler, L244-248)
        "momentum": 0.9,  # AdamW's beta1 (torch.optim.AdamW defaults, main_dino.py L227)
        "schedule": "cosine",  # cosine to --min_lr 1e-6 after the warm-up (L238-243)
        "warmup_epochs": 10,  # --warmup_epochs 10
        # --min_lr 1e-6 is absolute; at the reference batch 256 the peak is 0.0005, so the floor
        # is 1e-6 / 0.0005 = 0.002 of it (utils.cosine_scheduler final_value, main_dino.py L238-243)
        "final_lr_ratio": 0.002,
        # --clip_grad 3.0 (main_dino.py L87): utils.clip_gradients (utils.py L132-141) bounds each
        # parameter tensor's gradient norm, not the global norm, hence "per_parameter"
        "grad_clip": 3.0,
        "grad_clip_mode": "per_parameter",
    }
    #: Defaults per data scale: ``train`` overrides ``train_defaults``, ``args`` the constructor.
    scale_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "small": {"source": "solo-learn scripts/pretrain/cifar/dino.yaml (num_prototypes 4096)",
                  "train": {}, "args": {"out_dim": 4096}},
        "large": {"source": "facebookresearch/dino main_dino.py defaults", "train": {},
                  "args": {}},
    }

    def __init__(
        self,
        encoder: nn.Module,
        views: ViewSource,
        *,
        out_dim: int = 65536,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        norm_last_layer: bool = True,
        momentum: float = 0.996,
        teacher_temp: float = 0.04,
        warmup_teacher_temp: float = 0.04,
        warmup_teacher_temp_epochs: int = 0,
        student_temp: float = 0.1,
        center_momentum: float = 0.9,
        freeze_last_layer: int = 1,
    ) -> None:
        super().__init__()
        check_views(views, "DINO")
        self.encoder, self.views = encoder, views
        self.n_global = int(getattr(views, "n_global", None) or views.n_views)
        if not 1 <= self.n_global <= views.n_views:
            raise ValueError(f"n_global must be in [1, {views.n_views}], got {self.n_global}")
        self.head = DINOHead(encoder_dim(encoder), out_dim, hidden_dim, bottleneck_dim,
                             norm_last_layer=norm_last_layer)
        self.teacher = MomentumTarget(nn.Sequential(self.encoder, self.head), momentum, "cosine")
        self.loss = DINOLoss(out_dim, student_temp, center_momentum)
        self.temps = (warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs)
        self.freeze_last_layer, self.epoch = freeze_last_layer, 0

    def training_step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        inputs, _ = batch
        views = self.views(inputs)
        feats = torch.cat([self.encoder(v) for v in views])  # V*N x D
        student = self.head(feats).chunk(len(views))  # V x (N x K)
        teacher = [self.teacher(v) for v in views[: self.n_global]]  # G x (N x K), no grad
        temp = teacher_temperature(self.epoch, *self.temps)
        loss = self.loss(student, teacher, temp)
        return loss, {"loss": loss.detach(), "teacher_temp": torch.tensor(temp),
                      "momentum": torch.tensor(self.teacher.momentum)}

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Same as ``training_step``, so a ``DistributedDataParallel`` wrapper can call it."""
        return self.training_step(batch)

    def before_optimizer_step(self, step: int, steps_per_epoch: int, max_steps: int) -> None:
        """Drop the last layer's gradients during the first ``freeze_last_layer`` epochs
        (``utils.cancel_gradients_last_layer``); note the epoch of the next step."""
        if step // steps_per_epoch < self.freeze_last_layer:
            for p in self.head.last_layer.parameters():
                p.grad = None
        self.epoch = (step + 1) // steps_per_epoch

    def on_step_end(self, step: int, max_steps: int) -> None:
        """EMA update of the teacher (student backbone + head) on the cosine momentum."""
        self.teacher.update(step, max_steps)

    def get_extra_state(self) -> Tensor:
        """The epoch reached (teacher temperature warm-up) travels with the checkpoint."""
        return torch.tensor(self.epoch)

    def set_extra_state(self, state: Tensor) -> None:
        self.epoch = int(state)
