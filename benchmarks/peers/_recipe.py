"""What anyssl used in a run, written as the settings the lightly side builds its run from.

``recipe(...)`` reads the run's resolved ``config.yaml`` (optimizer, lr, weight decay, momentum,
schedule, warm-up), the trainer's step counts, the hyper-parameters off the built method object
(temperature, queue size, key/target momentum and its schedule, head layers, MoCo's BatchNorm
shuffling) and the method's view pipelines, each mapped to the keyword arguments of lightly's
transform for that method. What a lightly transform cannot express is an error naming it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml
from _backbone import layer_summary
from torch import nn

#: lightly's transform per method, and whether its two views are built from one set of keywords.
TRANSFORMS = {"mocov2": ("MoCoV2Transform", True), "simclr": ("SimCLRTransform", True),
              "byol": ("BYOLTransform", False)}
#: The fixed order of the ops in lightly's SimCLR/MoCo/BYOL view transforms.
LIGHTLY_ORDER = ("crop", "flip", "jitter", "grayscale", "blur", "solarize")
_NAMES = {"RandomResizedCrop": "crop", "Flip": "flip", "ColorJitter": "jitter",
          "Grayscale": "grayscale", "GaussianBlur": "blur", "Solarize": "solarize"}


def recipe(method_name: str, run_dir: Path, method: nn.Module, hparams: dict[str, Any],
           steps_per_epoch: int) -> dict[str, Any]:
    """Everything the lightly side needs to train ``method_name`` as anyssl's run did.

    ``hparams`` is the trainer's resolved ``hparams`` (for ``total_steps``, ``warmup_steps`` and
    ``milestones``, which ``config.yaml`` does not store)."""
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    encoder = method.encoder  # a PeerCNN (the peer_cnn plugin)
    views, order_notes = view_kwargs(method_name, method.views)
    return {
        "method": method_name, "seed": cfg["seed"], "epochs": cfg["epochs"],
        "batch_size": cfg["batch_size"], "steps_per_epoch": steps_per_epoch,
        "optimizer": {k: cfg[k] for k in ("optimizer", "lr", "weight_decay", "momentum")},
        "schedule": {"name": cfg["schedule"], "warmup_epochs": cfg["warmup_epochs"],
                     "warmup_steps": hparams["warmup_steps"],
                     "total_steps": hparams["total_steps"],
                     "milestones": list(hparams.get("milestones", [0.6, 0.8]))},
        "method_args": method_args(method),
        "views": views, "view_order_notes": order_notes,
        "backbone": {k: int(getattr(encoder, k)) for k in ("in_channels", "image_size", "width")},
    }


def head_spec(head: nn.Module) -> dict[str, Any]:
    """Sizes and BatchNorm placement of an MLP head, and its ``layer_summary``."""
    leaves = [m for m in head.modules() if not any(True for _ in m.children())]
    linears = [i for i, m in enumerate(leaves) if isinstance(m, nn.Linear)]
    if not linears:
        raise SystemExit(f"cannot read the head {type(head).__name__}: it has no Linear layer")
    first, last = leaves[linears[0]], leaves[linears[-1]]
    assert isinstance(first, nn.Linear) and isinstance(last, nn.Linear)
    bn = [i for i, m in enumerate(leaves) if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    return {"in_dim": first.in_features, "hidden_dim": first.out_features,
            "out_dim": last.out_features, "num_layers": len(linears),
            "hidden_bn": any(i < linears[-1] for i in bn),
            "last_bn": any(i > linears[-1] for i in bn), "summary": layer_summary(head)}


def method_args(method: nn.Module) -> dict[str, Any]:
    """Temperature, queue, momentum target and heads of a built anyssl method (what it has)."""
    out: dict[str, Any] = {}
    loss = getattr(method, "loss", None)
    if loss is not None and hasattr(loss, "temperature"):
        out["temperature"] = float(loss.temperature)
    queue = getattr(method, "queue", None)
    if queue is not None:
        out["queue_size"] = int(queue.size)
    for attr in ("key_encoder", "target"):
        target = getattr(method, attr, None)
        if target is not None:
            out["momentum"] = float(target.base_momentum)
            out["momentum_schedule"] = str(target.schedule)
    for attr in ("head", "projector", "predictor"):
        head = getattr(method, attr, None)
        if isinstance(head, nn.Module):
            out[attr] = head_spec(head)
    for attr in ("symmetric", "shuffle_bn", "split_bn"):
        if hasattr(method, attr):
            out[attr] = getattr(method, attr)
    return out


def _items(pipeline: Any) -> list[tuple[str, Any, float]]:
    """``(name, augmentation, p)`` for each step of a pipeline (Compose of RandomApply ...)."""
    steps = list(getattr(pipeline, "augmentations", [pipeline]))
    out = []
    for step in steps:
        aug, p = (step.augmentation, float(step.p)) if hasattr(step, "augmentation") \
            else (step, 1.0)
        name = _NAMES.get(type(aug).__name__)
        if name is None:
            raise SystemExit(f"anyssl's view step {step!r} has no counterpart in lightly's "
                             "SimCLR/MoCo/BYOL transforms; update benchmarks/peers/_recipe.py")
        out.append((name, aug, p))
    return out


def _jitter_amount(factors: tuple[float, float], center: float, what: str) -> float:
    """torchvision's ColorJitter amount ``v`` of the factor range ``(max(0, c - v), c + v)``."""
    lo, hi = factors
    v = hi - center
    want = -v if center == 0.0 else max(0.0, center - v)
    if not math.isclose(lo, want, abs_tol=1e-9):
        raise SystemExit(f"anyssl's jitter {what} range {lo}-{hi} is not symmetric; lightly's "
                         "transforms take one amount per op")
    return round(v, 12)  # 1.4 - 1.0 -> 0.4


def _one_view(items: list[tuple[str, Any, float]]) -> dict[str, Any]:
    """lightly view-transform keywords (``input_size``, ``cj_*``, ``min_scale`` ...)."""
    kw: dict[str, Any] = {"cj_prob": 0.0, "cj_strength": 1.0, "cj_bright": 0.0,
                          "cj_contrast": 0.0, "cj_sat": 0.0, "cj_hue": 0.0,
                          "random_gray_scale": 0.0, "gaussian_blur": 0.0, "sigmas": [0.1, 2.0],
                          "vf_prob": 0.0, "hf_prob": 0.0, "rr_prob": 0.0, "normalize": None,
                          "solarization_prob": 0.0}
    for name, aug, p in items:
        if name == "crop":
            if p != 1.0 or aug.size[0] != aug.size[1] or aug.scale[1] != 1.0 or not (
                    math.isclose(aug.ratio[0], 3 / 4) and math.isclose(aug.ratio[1], 4 / 3)):
                raise SystemExit(f"lightly's crop is square, always applied, scale up to 1 and "
                                 f"ratio 3/4-4/3; anyssl's is {aug!r} (p={p})")
            kw.update(input_size=aug.size[0], min_scale=aug.scale[0],
                      hf_prob=kw["hf_prob"] or aug.flip)
        elif name == "flip":
            kw["hf_prob"] = aug.p * p
        elif name == "jitter":
            kw.update(cj_prob=p, cj_bright=_jitter_amount(aug.brightness, 1.0, "brightness"),
                      cj_contrast=_jitter_amount(aug.contrast, 1.0, "contrast"),
                      cj_sat=_jitter_amount(aug.saturation, 1.0, "saturation"),
                      cj_hue=_jitter_amount(aug.hue, 0.0, "hue"))
        elif name == "grayscale":
            kw["random_gray_scale"] = p
        elif name == "blur":
            kw.update(gaussian_blur=p, sigmas=list(aug.sigma))
        elif name == "solarize":
            if not math.isclose(aug.threshold, 0.5):
                raise SystemExit(f"lightly solarizes above 128/255; anyssl's threshold is "
                                 f"{aug.threshold}")
            kw["solarization_prob"] = p
    if "input_size" not in kw:
        raise SystemExit("anyssl's views have no crop; lightly's transforms always crop")
    return kw


def view_kwargs(method_name: str, views: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """One lightly keyword dict per anyssl view, and notes where anyssl's op order differs."""
    if method_name not in TRANSFORMS:
        raise SystemExit(f"no lightly counterpart for method {method_name!r}; "
                         f"choose from {', '.join(TRANSFORMS)}")
    transform, shared = TRANSFORMS[method_name]
    per_view = [_items(p) for p in views.pipelines]
    try:
        kwargs = [_one_view(items) for items in per_view]
    except AttributeError as err:  # an anyssl augmentation renamed what this file reads
        raise SystemExit(f"cannot read anyssl's {method_name} views ({err}); update "
                         "benchmarks/peers/_recipe.py") from None
    notes = []
    for i, items in enumerate(per_view):
        names = [n for n, _, _ in items]
        if names != sorted(names, key=LIGHTLY_ORDER.index):
            notes.append(f"view {i + 1}: anyssl runs {', '.join(names)}; lightly runs them in "
                         f"the order {', '.join(LIGHTLY_ORDER)}")
    if shared:
        if kwargs[0] != kwargs[1]:
            raise SystemExit(f"anyssl's {method_name} views differ, but lightly's {transform} "
                             "makes both views with one set of parameters")
        if kwargs[0]["solarization_prob"]:
            raise SystemExit(f"lightly's {transform} has no solarization; anyssl's "
                             f"{method_name} recipe solarizes")
    return kwargs, notes
