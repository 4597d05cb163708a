"""lightly's side, the parts: MoCo v2, SimCLR and BYOL built from lightly's modules as lightly's
examples (``examples/pytorch/{moco,simclr,byol}.py``) build them, its transforms, optimizer and
schedule, each set to what anyssl's run used (the ``recipe`` of ``_recipe.py``).

Runs in ``.venv-lightly`` (lightly 1.6.0, no anyssl); lightly is imported inside the functions,
so the main environment's mypy and ruff check this file without lightly installed.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from _backbone import PeerCNN, layer_summary
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def build_backbone(recipe: dict[str, Any]) -> PeerCNN:
    """The shared ``PeerCNN``; with anyssl's MoCo ``split_bn`` > 1, its BatchNorm layers are
    lightly's ``SplitBatchNorm`` (as lightly's one-GPU MoCo benchmark builds its ResNet)."""
    b, args = recipe["backbone"], recipe["method_args"]
    splits = int(args.get("split_bn") or 0)
    if splits > 1:
        from lightly.models.batchnorm import get_norm_layer

        if recipe["batch_size"] % splits:
            raise SystemExit(f"lightly's SplitBatchNorm needs a batch that is a multiple of "
                             f"{splits} (anyssl's split_bn); got --batch-size "
                             f"{recipe['batch_size']}")

        return PeerCNN(b["in_channels"], b["image_size"], b["width"],
                       norm=lambda c: get_norm_layer(c, splits))
    return PeerCNN(b["in_channels"], b["image_size"], b["width"])


class LightlyMethod(nn.Module):
    """A backbone, lightly heads and a lightly loss; ``loss(x0, x1)`` of one batch of views."""

    backbone: nn.Module

    def online_modules(self) -> list[nn.Module]:
        """The trained modules (what the optimizer sees)."""
        return [m for n, m in self.named_children() if not n.endswith("_momentum")
                and n != "criterion"]

    def target_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """``(online, momentum copy)`` pairs for ``update_momentum``; none without a target."""
        return []

    def update_targets(self, momentum: float) -> None:
        """lightly's ``update_momentum`` on every pair (before the step, as its examples do)."""
        from lightly.models.utils import update_momentum

        for online, target in self.target_pairs():
            update_momentum(online, target, m=momentum)

    def head_summaries(self) -> dict[str, str]:
        """``layer_summary`` of each head, under anyssl's attribute names."""
        return {}

    def loss(self, x0: Tensor, x1: Tensor) -> Tensor:
        raise NotImplementedError


def _momentum_copies(model: nn.Module, names: tuple[str, ...]) -> None:
    from lightly.models.utils import deactivate_requires_grad

    for name in names:
        copied = copy.deepcopy(getattr(model, name))
        deactivate_requires_grad(copied)
        setattr(model, f"{name}_momentum", copied)


class MoCo(LightlyMethod):
    """lightly's MoCo: ``MoCoProjectionHead``, momentum copies, ``NTXentLoss`` with a memory bank
    of anyssl's queue size; the key batch is shuffled (``batch_shuffle``) when BN is split."""

    backbone_momentum: nn.Module
    projection_head_momentum: nn.Module

    def __init__(self, backbone: nn.Module, args: dict[str, Any]) -> None:
        super().__init__()
        from lightly.loss import NTXentLoss
        from lightly.models.modules import MoCoProjectionHead

        h = args["head"]
        self.backbone = backbone
        self.projection_head = MoCoProjectionHead(h["in_dim"], h["hidden_dim"], h["out_dim"],
                                                  num_layers=h["num_layers"],
                                                  batch_norm=h["hidden_bn"])
        _momentum_copies(self, ("backbone", "projection_head"))
        self.criterion = NTXentLoss(temperature=args["temperature"],
                                    memory_bank_size=(args["queue_size"], h["out_dim"]))
        self.shuffle = bool(args.get("shuffle_bn", True)) and int(args.get("split_bn") or 0) > 1
        self.symmetric = bool(args.get("symmetric", False))

    def target_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.backbone, self.backbone_momentum),
                (self.projection_head, self.projection_head_momentum)]

    def head_summaries(self) -> dict[str, str]:
        return {"head": layer_summary(self.projection_head)}

    def _keys(self, x: Tensor) -> Tensor:
        from lightly.models.utils import batch_shuffle, batch_unshuffle

        if self.shuffle:
            x, order = batch_shuffle(x)
        key = self.projection_head_momentum(self.backbone_momentum(x).flatten(start_dim=1))
        return (batch_unshuffle(key, order) if self.shuffle else key).detach()  # N x out_dim

    def _one_way(self, x_q: Tensor, x_k: Tensor) -> Tensor:
        query = self.projection_head(self.backbone(x_q).flatten(start_dim=1))  # N x out_dim
        return self.criterion(query, self._keys(x_k))  # logits N x (1 + K)

    def loss(self, x0: Tensor, x1: Tensor) -> Tensor:
        loss = self._one_way(x0, x1)
        return 0.5 * (loss + self._one_way(x1, x0)) if self.symmetric else loss


class SimCLR(LightlyMethod):
    """lightly's SimCLR: ``SimCLRProjectionHead`` and ``NTXentLoss`` (in-batch negatives)."""

    def __init__(self, backbone: nn.Module, args: dict[str, Any]) -> None:
        super().__init__()
        from lightly.loss import NTXentLoss
        from lightly.models.modules import SimCLRProjectionHead

        h = args["projector"]
        self.backbone = backbone
        self.projection_head = SimCLRProjectionHead(h["in_dim"], h["hidden_dim"], h["out_dim"],
                                                    num_layers=h["num_layers"],
                                                    batch_norm=h["hidden_bn"])
        self.criterion = NTXentLoss(temperature=args["temperature"])

    def head_summaries(self) -> dict[str, str]:
        return {"projector": layer_summary(self.projection_head)}

    def loss(self, x0: Tensor, x1: Tensor) -> Tensor:
        z0 = self.projection_head(self.backbone(x0).flatten(start_dim=1))  # N x out_dim
        z1 = self.projection_head(self.backbone(x1).flatten(start_dim=1))
        return self.criterion(z0, z1)  # logits 2N x (2N - 1)


class BYOL(LightlyMethod):
    """lightly's BYOL: ``BYOLProjectionHead`` + ``BYOLPredictionHead``, momentum copies and
    ``NegativeCosineSimilarity``, summed as anyssl's ``(2 - 2 cos) + (2 - 2 cos)`` (lightly's
    example averages the two ``-cos`` terms: a quarter of this gradient)."""

    backbone_momentum: nn.Module
    projection_head_momentum: nn.Module

    def __init__(self, backbone: nn.Module, args: dict[str, Any]) -> None:
        super().__init__()
        from lightly.loss import NegativeCosineSimilarity
        from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead

        p, q = args["projector"], args["predictor"]
        self.backbone = backbone
        self.projection_head = BYOLProjectionHead(p["in_dim"], p["hidden_dim"], p["out_dim"])
        self.prediction_head = BYOLPredictionHead(q["in_dim"], q["hidden_dim"], q["out_dim"])
        _momentum_copies(self, ("backbone", "projection_head"))
        self.criterion = NegativeCosineSimilarity()

    def target_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.backbone, self.backbone_momentum),
                (self.projection_head, self.projection_head_momentum)]

    def head_summaries(self) -> dict[str, str]:
        return {"projector": layer_summary(self.projection_head),
                "predictor": layer_summary(self.prediction_head)}

    def loss(self, x0: Tensor, x1: Tensor) -> Tensor:
        p = [self.prediction_head(self.projection_head(self.backbone(x).flatten(start_dim=1)))
             for x in (x0, x1)]  # 2 x (N x out_dim)
        z = [self.projection_head_momentum(self.backbone_momentum(x).flatten(start_dim=1))
             .detach() for x in (x0, x1)]
        return 4.0 + 2.0 * (self.criterion(p[0], z[1]) + self.criterion(p[1], z[0]))


METHODS: dict[str, type[LightlyMethod]] = {"mocov2": MoCo, "simclr": SimCLR, "byol": BYOL}


def build_method(recipe: dict[str, Any]) -> LightlyMethod:
    """The recipe's method on a fresh ``PeerCNN`` (seed the RNG first for anyssl's init)."""
    return METHODS[recipe["method"]](build_backbone(recipe), recipe["method_args"])


def momentum_at(args: dict[str, Any], step: int, total_steps: int) -> float:
    """The key/target momentum of ``step``: anyssl's base, constant or raised to 1 by lightly's
    ``cosine_schedule`` (BYOL)."""
    from lightly.utils.scheduler import cosine_schedule

    base, schedule = float(args.get("momentum", 0.0)), args.get("momentum_schedule", "constant")
    if schedule == "constant":
        return base
    if schedule == "cosine":  # steps past the end (the worker measurement) stay at 1
        return cosine_schedule(min(step, total_steps), total_steps, base, 1.0)
    raise SystemExit(f"momentum schedule {schedule!r} has no lightly counterpart here")


def build_optimizer(model: LightlyMethod, opt: dict[str, Any]) -> Optimizer:
    """anyssl's optimizer choice over the online modules: SGD and Adam decay every parameter;
    lightly's ``LARS`` and AdamW leave biases and norm parameters undecayed (and LARS leaves
    them out of its trust ratio), split by lightly's ``get_weight_decay_parameters``."""
    from lightly.models.utils import get_weight_decay_parameters

    name, lr, wd, mom = opt["optimizer"], opt["lr"], opt["weight_decay"], opt["momentum"]
    modules = model.online_modules()
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=mom, weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(mom, 0.999), weight_decay=wd)
    decay, no_decay = get_weight_decay_parameters(modules)
    groups = [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]
    if name == "lars":
        from lightly.utils.lars import LARS

        return LARS(groups, lr=lr, momentum=mom)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(mom, 0.999))
    raise SystemExit(f"optimizer {name!r} has no lightly-side counterpart here")


def lr_factor(step: int, schedule: dict[str, Any]) -> float:
    """anyssl's schedules (``anyssl.train.schedule``, copied): linear warm-up to 1 at step
    ``warmup_steps - 1``, then cosine to 0 at ``total_steps``, x0.1 per milestone, or 1."""
    warmup, total, name = schedule["warmup_steps"], schedule["total_steps"], schedule["name"]
    if step < warmup:
        return (step + 1) / warmup
    if name == "cosine":
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if name == "step":
        return 0.1 ** sum(step >= round(m * total) for m in schedule["milestones"])
    return 1.0


def build_scheduler(optimizer: Optimizer, schedule: dict[str, Any]) -> LambdaLR:
    """A per-step ``LambdaLR`` over ``lr_factor``."""
    return LambdaLR(optimizer, lambda step: lr_factor(step, schedule))


def build_transform(recipe: dict[str, Any]) -> Any:
    """lightly's transform of the method with anyssl's view parameters (no normalization: the
    backbone normalizes; ``ToTensor`` gives [0, 1])."""
    from lightly.transforms.byol_transform import (
        BYOLTransform,
        BYOLView1Transform,
        BYOLView2Transform,
    )
    from lightly.transforms.moco_transform import MoCoV2Transform
    from lightly.transforms.simclr_transform import SimCLRTransform

    views = [{**v, "sigmas": tuple(v["sigmas"])} for v in recipe["views"]]
    if recipe["method"] == "byol":
        return BYOLTransform(BYOLView1Transform(**views[0]), BYOLView2Transform(**views[1]))
    kw = {k: v for k, v in views[0].items() if k != "solarization_prob"}
    cls = MoCoV2Transform if recipe["method"] == "mocov2" else SimCLRTransform
    return cls(**kw)
