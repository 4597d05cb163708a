"""Building blocks of the runs the benchmarks time: a method with its recipe's views, optimizer
and schedules, one training step as the trainer runs it, and a synthetic uint8 batch."""

from __future__ import annotations

import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from _common import autocast
from torch import Tensor, nn

#: Steps of the schedules built here (their length only sets the lr curve; timing ignores it).
TOTAL_STEPS = 10_000
#: Steps per epoch as the methods' epoch-based hooks see them: one, so DINO's last layer is
#: frozen in step 0 only (``--freeze_last_layer 1``) and the timed steps update every
#: parameter, as every step after the first epoch does.
STEPS_PER_EPOCH = 1
GIB = 2**30


def stored_size(size: int) -> int:
    """Side images are stored at: the view size below 64 px, else ``size * 256/224`` (256 px for
    224 px views, the usual resize-256-then-crop-224 storage)."""
    return size if size < 64 else round(size * 256 / 224)


def recipe_views(method: str, size: int) -> Any:
    """The ``ViewGenerator`` of ``method``'s image recipe at ``size`` px (scope ``image``)."""
    import anyssl.modalities.image  # noqa: F401  (registers the image augmentations)
    from anyssl.modalities.image.recipes import image_recipe
    from anyssl.multicrop import MultiCrop
    from anyssl.views import ViewGenerator, parse_spec

    specs = image_recipe(method, types.SimpleNamespace(encoder_kwargs={"image_size": size}))
    if isinstance(specs, MultiCrop):  # dino, swav: global and local views
        return specs.view_generator("image")
    return ViewGenerator([parse_spec(s, "image") for s in specs])


@dataclass
class RunSchedule:
    """What the trainer does around a method's optimizer step: the lr schedule (``lr``), the
    weight decay schedule (DINO's cosine 0.04 -> 0.4; None for the others) and the gradient
    clipping (``hparams["grad_clip"]``, None: none) of ``anyssl.train.config.resolve_defaults``.
    """

    lr: Any
    weight_decay: Any
    hparams: dict[str, Any]
    params: list[nn.Parameter]

    def step(self) -> None:
        """The lr schedule's step (after the optimizer's)."""
        self.lr.step()


def _scale_preset(method: str, size: int) -> dict[str, Any]:
    """The method's ``scale_defaults`` entry for images of ``size`` px (DINO's 4,096 prototypes
    below 64 px), as ``anyssl.build.scale_preset`` gives the trainer; ``{}`` when none."""
    from anyssl.modalities.image.recipes import image_scale
    from anyssl.registry import METHODS

    scale = image_scale(types.SimpleNamespace(encoder_kwargs={"image_size": size}))
    presets = getattr(METHODS.get(method, "image"), "scale_defaults", None) or {}
    return dict(presets.get(scale, {}))


def build_run(method: str, encoder: str, size: int, device: torch.device, **method_args: Any
              ) -> tuple[Any, torch.optim.Optimizer, RunSchedule]:
    """``method`` (paper defaults with the trainer's per-scale preset, but for ``method_args``,
    e.g. MoCo's ``split_bn``) on a fresh ``encoder`` with its recipe's views, in training mode
    on ``device``, with the optimizer (parameter groups, bias lr, overrides) and schedules the
    trainer builds from its ``train_defaults``.

    The method is returned as ``Any``: it is an ``nn.Module`` with the ``Method`` protocol's
    attributes (``views``, ``training_step``), which ``nn.Module``'s typing does not know."""
    from anyssl.registry import ENCODERS, METHODS
    from anyssl.train.config import TrainConfig, resolve_defaults
    from anyssl.train.optim import build_optimizer
    from anyssl.train.schedule import WeightDecaySchedule, build_scheduler
    from anyssl.train.step_hooks import method_overrides

    preset = _scale_preset(method, size)
    enc = ENCODERS.build(encoder, scope="image", in_channels=3, image_size=size)
    m: nn.Module = METHODS.build(method, encoder=enc, views=recipe_views(method, size),
                                 **{**preset.get("args", {}), **method_args})
    defaults = {**dict(getattr(m, "train_defaults", None) or {}), **preset.get("train", {})}
    m.to(device).train()
    if device.type == "cuda":  # as the trainer does for the image modality (conv_encoder)
        enc.to(memory_format=torch.channels_last)
    h = resolve_defaults(TrainConfig(), defaults)
    opt = build_optimizer(h["optimizer"], m, h["lr"], h["weight_decay"], h["momentum"],
                          overrides=method_overrides(m), bias_lr_factor=h["bias_lr_factor"])
    end = h["weight_decay_end"]
    wd = None if end is None else WeightDecaySchedule(opt, TOTAL_STEPS, end)
    lr = build_scheduler(opt, h["schedule"], TOTAL_STEPS, 0, h["milestones"],
                         h["final_lr_ratio"])
    params = [p for g in opt.param_groups for p in g["params"]]
    return m, opt, RunSchedule(lr, wd, h, params)


def train_step(m: Any, opt: torch.optim.Optimizer, sched: RunSchedule, x: Tensor, step: int,
               device: torch.device, precision: str) -> None:
    """One step as ``anyssl.train.Trainer`` runs it (``_train_step``: views, loss, backward, the
    method's ``before_optimizer_step`` hook, weight decay schedule, finiteness check, gradient
    clipping, optimizer and lr schedule, ``on_step_end``), minus logging and checkpoints."""
    from anyssl.train import step_hooks
    from anyssl.train.nonfinite import check_step

    m.views.manual_seed(step)
    with autocast(device, precision):
        loss, _ = m.training_step((x, None))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    step_hooks.before_optimizer_step(m, step, STEPS_PER_EPOCH, TOTAL_STEPS)
    if sched.weight_decay is not None:
        sched.weight_decay.apply(step)
    # the trainer's check of the loss and the largest gradient (one fused norm, one sync)
    check_step(loss, sched.params, step, skip=False, checkpoint=Path("-"), saved_step=-1)
    if sched.hparams["grad_clip"] is not None:
        step_hooks.clip_gradients(sched.params, sched.hparams["grad_clip"],
                                  sched.hparams["grad_clip_mode"])
    opt.step()
    sched.step()
    m.on_step_end(step, TOTAL_STEPS)


def views_text(views: list[Tensor]) -> str:
    """``"2 x 224 + 8 x 96 px"``: the views' sides, runs of one size counted."""
    runs: list[list[int]] = []
    for v in views:
        side = int(v.shape[-1])
        if runs and runs[-1][1] == side:
            runs[-1][0] += 1
        else:
            runs.append([1, side])
    return " + ".join(f"{n} x {side}" for n, side in runs) + " px"


def step_peak(m: Any, opt: torch.optim.Optimizer, sched: RunSchedule, x: Tensor,
              device: torch.device, precision: str) -> dict[str, float | None]:
    """GiB held before one more ``train_step`` (parameters, buffers, optimizer state, whatever
    else the caller holds) and at its peak (``max_memory_allocated``; CUDA only, else None)."""
    if device.type != "cuda":
        return {"state_gib": None, "peak_gib": None}
    opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    train_step(m, opt, sched, x, 999, device, precision)
    torch.cuda.synchronize(device)
    return {"state_gib": before / GIB, "peak_gib": torch.cuda.max_memory_allocated(device) / GIB}


def uint8_batch(batch: int, size: int, device: torch.device, seed: int = 0) -> Tensor:
    """Synthetic ``batch x 3 x S x S`` uint8 images at the stored size of ``size`` px views."""
    side = stored_size(size)
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, side, side), dtype=torch.uint8,
                         generator=gen).to(device)
