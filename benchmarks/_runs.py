"""Building blocks of the runs the benchmarks time: a method with its recipe's views, optimizer
and schedule, one training step as the trainer runs it, and a synthetic uint8 batch."""

from __future__ import annotations

from typing import Any

import torch
from _common import autocast
from torch import Tensor, nn

#: Steps of the schedules built here (their length only sets the lr curve; timing ignores it).
TOTAL_STEPS = 10_000


def stored_size(size: int) -> int:
    """Side images are stored at: the view size below 64 px, else ``size * 256/224`` (256 px for
    224 px views, the usual resize-256-then-crop-224 storage)."""
    return size if size < 64 else round(size * 256 / 224)


def recipe_views(method: str, size: int) -> Any:
    """The ``ViewGenerator`` of ``method``'s image recipe at ``size`` px (scope ``image``)."""
    import types

    import anyssl.modalities.image  # noqa: F401  (registers the image augmentations)
    from anyssl.modalities.image.recipes import image_recipe
    from anyssl.multicrop import MultiCrop
    from anyssl.views import ViewGenerator, parse_spec

    specs = image_recipe(method, types.SimpleNamespace(encoder_kwargs={"image_size": size}))
    if isinstance(specs, MultiCrop):  # dino, swav: global and local views
        return specs.view_generator("image")
    return ViewGenerator([parse_spec(s, "image") for s in specs])


def build_run(method: str, encoder: str, size: int, device: torch.device, **method_args: Any
              ) -> tuple[Any, torch.optim.Optimizer, Any]:
    """``method`` (paper defaults, but for ``method_args``, e.g. MoCo's ``split_bn``) on a fresh
    ``encoder`` with its recipe's views, in training mode on ``device``, with the optimizer and
    lr schedule of its ``train_defaults``.

    The method is returned as ``Any``: it is an ``nn.Module`` with the ``Method`` protocol's
    attributes (``views``, ``training_step``), which ``nn.Module``'s typing does not know."""
    from anyssl.registry import ENCODERS, METHODS
    from anyssl.train.optim import build_optimizer
    from anyssl.train.schedule import build_scheduler

    enc = ENCODERS.build(encoder, scope="image", in_channels=3, image_size=size)
    m: nn.Module = METHODS.build(method, encoder=enc, views=recipe_views(method, size),
                                 **method_args)
    m.to(device).train()
    if device.type == "cuda":  # as the trainer does for conv encoders
        enc.to(memory_format=torch.channels_last)
    d = dict(getattr(m, "train_defaults", {}))
    opt = build_optimizer(d.get("optimizer", "sgd"), m, d.get("lr", 0.1),
                          d.get("weight_decay", 0.0), d.get("momentum", 0.9))
    sched = build_scheduler(opt, d.get("schedule", "cosine"), TOTAL_STEPS, 0,
                            d.get("lr_milestones"))
    return m, opt, sched


def train_step(m: Any, opt: torch.optim.Optimizer, sched: Any, x: Tensor, step: int,
               device: torch.device, precision: str) -> None:
    """One step as ``anyssl.train.Trainer`` runs it, minus logging and checkpoints."""
    m.views.manual_seed(step)
    with autocast(device, precision):
        loss, _ = m.training_step((x, None))
    if not bool(torch.isfinite(loss.detach())):  # the trainer's finiteness check (a sync)
        raise FloatingPointError(f"loss became {loss.item()} at step {step}")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    m.on_step_end(step, TOTAL_STEPS)


def uint8_batch(batch: int, size: int, device: torch.device, seed: int = 0) -> Tensor:
    """Synthetic ``batch x 3 x S x S`` uint8 images at the stored size of ``size`` px views."""
    side = stored_size(size)
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, side, side), dtype=torch.uint8,
                         generator=gen).to(device)
