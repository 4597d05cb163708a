"""The optional keys of a method's ``train_defaults`` beyond optimizer, lr and schedule: the
recipe details a reference implementation sets and a generic trainer would miss.

- ``weight_decay_end``: the end of a cosine weight decay schedule (DINO: 0.04 -> 0.4).
- ``bias_lr``: the base lr of biases and norm parameters (Barlow Twins: 0.0048 vs 0.2).
- ``final_lr_ratio``: the cosine lr ends at this fraction of the peak lr, in [0, 1]
  (Barlow Twins, VICReg: 0.001; default 0, a cosine to zero).
- ``grad_clip`` and ``grad_clip_mode``: gradient clipping at a max norm, of the whole gradient
  (``"global"``, ``torch.nn.utils.clip_grad_norm_``) or of each parameter tensor's gradient
  (``"per_parameter"``, DINO's ``utils.clip_gradients``); default no clipping, ``"global"``.

A config value wins over the method's (``TrainConfig`` has ``grad_clip``, ``grad_clip_mode``
and ``final_lr_ratio``).
"""

from __future__ import annotations

from typing import Any

from anyssl.train.safe_yaml import ConfigError

__all__ = ["GRAD_CLIP_MODES", "check_config", "check_final_lr_ratio", "check_grad_clip_mode",
           "recipe_extras"]

#: How ``grad_clip`` bounds the gradients: their global norm, or each parameter tensor's norm.
GRAD_CLIP_MODES = ("global", "per_parameter")


def _number(name: str, value: Any, low: float = 0.0) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
        raise ConfigError(f"{name} must be a number >= {low:g}, got {value!r}")
    return float(value)


def check_final_lr_ratio(value: Any) -> float | None:
    """``value`` as a float in [0, 1] (None stays None); ``ConfigError`` otherwise."""
    ratio = _number("final_lr_ratio", value)
    if ratio is not None and ratio > 1:
        raise ConfigError(f"final_lr_ratio is a fraction of the peak lr in [0, 1], got {value!r}")
    return ratio


def check_grad_clip_mode(value: Any) -> str:
    """``value`` if it is one of ``GRAD_CLIP_MODES``; ``ConfigError`` naming them otherwise."""
    if value not in GRAD_CLIP_MODES:
        raise ConfigError(f"unknown grad_clip_mode {value!r}; choose one of: "
                          f"{', '.join(GRAD_CLIP_MODES)}")
    return str(value)


def check_config(config: Any) -> None:
    """Refuse a ``TrainConfig`` whose ``grad_clip`` is not positive, whose ``grad_clip_mode`` is
    unknown or whose ``final_lr_ratio`` is outside [0, 1] (None: the method's, is fine)."""
    if config.grad_clip is not None and not config.grad_clip > 0:
        raise ConfigError(f"grad_clip must be > 0 (None: the method's), got {config.grad_clip}")
    if config.grad_clip_mode is not None:
        check_grad_clip_mode(config.grad_clip_mode)
    check_final_lr_ratio(config.final_lr_ratio)


def recipe_extras(config: Any, defaults: dict[str, Any], base_lr: float) -> dict[str, Any]:
    """The effective ``weight_decay_end`` (None: constant weight decay), ``bias_lr_factor`` (the
    biases' and norm parameters' lr over the weights'), ``final_lr_ratio``, ``grad_clip`` (None:
    no clipping) and ``grad_clip_mode`` of a run: ``config``'s value where it sets one (a
    ``TrainConfig``), else the method's ``train_defaults`` (``defaults``), else the default."""
    end = _number("weight_decay_end", defaults.get("weight_decay_end"))
    bias_lr = _number("bias_lr", defaults.get("bias_lr"))
    factor = 1.0 if bias_lr is None or base_lr <= 0 else bias_lr / base_lr
    ratio = config.final_lr_ratio
    if ratio is None:
        ratio = check_final_lr_ratio(defaults.get("final_lr_ratio", 0.0))
    clip = config.grad_clip
    if clip is None:
        clip = _number("grad_clip", defaults.get("grad_clip"))
        if clip == 0:
            raise ConfigError("grad_clip must be > 0 (leave it out for no clipping), got 0")
    mode = check_grad_clip_mode(config.grad_clip_mode or defaults.get("grad_clip_mode", "global"))
    return {"weight_decay_end": end, "bias_lr_factor": factor, "final_lr_ratio": float(ratio),
            "grad_clip": None if clip is None else float(clip), "grad_clip_mode": mode}
