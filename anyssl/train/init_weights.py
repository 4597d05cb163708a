"""``anyssl train --init FILE``: start the encoder from saved weights (continued pre-training).

FILE is an ``anyssl export`` (state dict or safetensors, with its ``FILE.json``), an anyssl run
checkpoint (its encoder), or another tool's state dict: torchvision's ``resnet18().state_dict()``
(``fc.*`` ignored), a timm model's, solo-learn's / Lightning's ``{"state_dict": ...}`` with a
``backbone.`` prefix, DDP's ``module.`` prefix. Names map onto the encoder through the weight
layout of its class (``anyssl.export.layout_of``). Every encoder weight must be given and fit
its shape; the encoder's own normalization (mean / std) is kept and must match the file's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from anyssl.export import layout_of, normalization, pick_tower
from anyssl.momentum import MomentumTarget
from anyssl.pair import PairEncoder

__all__ = ["apply_init", "load_into", "read_weights"]

#: Wrappers other tools save a model's state dict under (Lightning, DeiT / timm training).
WRAPPER_KEYS = ("state_dict", "model", "module")
#: Prefixes stripped when no key fits the encoder with them (DDP, solo-learn, Lightning).
PREFIXES = ("module.", "backbone.", "encoder.", "model.")


def read_weights(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any] | None]:
    """The tensors of a weights file (safetensors, or ``torch.load(weights_only=True)``) and
    the JSON an ``anyssl export`` wrote beside it (None when there is none)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--init {path}: no such file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state: Any = load_file(str(path))
        except Exception as err:  # safetensors raises its own SafetensorError
            raise ValueError(f"--init {path} is not a readable safetensors file ({err})") from None
    else:
        from anyssl.train.checkpoint import load_checkpoint

        state = load_checkpoint(path, map_location="cpu")
    info_path = Path(f"{path}.json")
    info = json.loads(info_path.read_text()) if info_path.is_file() else None
    return _unwrap(state, path), info


def _unwrap(state: Any, path: Path) -> dict[str, Tensor]:
    """The flat ``name -> tensor`` dict inside a file: an anyssl checkpoint's encoder, a
    wrapper's ``state_dict`` / ``model``, or the file itself."""
    if isinstance(state, dict) and isinstance(state.get("method"), dict) and "config" in state:
        state = {k.removeprefix("encoder."): v for k, v in state["method"].items()
                 if k.startswith("encoder.")}  # an anyssl run checkpoint
    for key in WRAPPER_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state or not all(
            isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"--init {path} holds no state dict (name -> tensor); give an anyssl "
                         "export, a run checkpoint or a model's state_dict() file")
    return dict(state)


def _strip_prefix(state: dict[str, Tensor], own: Mapping[str, Any]) -> dict[str, Tensor]:
    """``state`` without a wrapper prefix that every key has, when the encoder has none."""
    for prefix in PREFIXES:
        if all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in own):
            return {k.removeprefix(prefix): v for k, v in state.items()}
    return state


def load_into(encoder: nn.Module, state: dict[str, Tensor], source: str) -> None:
    """Load ``state`` (own or plain key names) into ``encoder``; a one-line ``ValueError``
    names the first key that fits nowhere, is missing, or has the wrong shape."""
    own = encoder.state_dict()
    state = _strip_prefix(state, own)
    keep = _norm_keys(encoder)
    key_map: dict[str, str | None] = {k: k for k in state if k in own}
    if not set(state) <= set(own):  # plain names (torchvision, timm): the layout maps them
        key_map = {**{k: k for k in state if k in keep}, **layout_of(encoder).key_map(
            encoder, state)}
    kind = f"encoder ({type(encoder).__name__})"
    loaded: dict[str, Tensor] = {}
    for key, value in state.items():
        if key not in key_map:
            raise ValueError(f"--init {source}: key {key!r} fits no weight of the {kind}; "
                             "is the file from another architecture?")
        target = key_map[key]
        if target is None:
            continue
        if tuple(value.shape) != tuple(own[target].shape):
            raise ValueError(f"--init {source}: key {key!r} has shape {tuple(value.shape)} but "
                             f"the {kind} has {target!r} of shape {tuple(own[target].shape)}")
        loaded[target] = value
    _check_norm(encoder, {k: v for k, v in loaded.items() if k in keep}, source)
    missing = [k for k in own if k not in loaded and k not in keep
               and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"--init {source} has no weights for "
                         f"{missing[0]!r} of the {kind} "
                         f"({len(missing)} missing); is it from a smaller model?")
    encoder.load_state_dict({**own, **{k: v for k, v in loaded.items() if k not in keep}})


def _norm_keys(encoder: nn.Module) -> set[str]:
    """The state keys of the encoder's input normalization (kept, not loaded)."""
    norm = getattr(encoder, "normalize", None)
    if not isinstance(norm, nn.Module):
        return set()
    return {f"normalize.{k}" for k in norm.state_dict()}


def _check_norm(encoder: nn.Module, given: Mapping[str, Tensor] | Mapping[str, Any],
                source: str) -> None:
    """The file's normalization (its buffers or its JSON's) must be the encoder's."""
    own = normalization(encoder)
    if own is None or not given:
        return
    values = {k.removeprefix("normalize."): v for k, v in given.items()}
    for name in ("mean", "std"):
        theirs = values.get(name)
        if theirs is None:
            continue
        theirs = [round(float(x), 6) for x in torch.as_tensor(theirs).flatten()]
        if theirs != own[name]:
            raise ValueError(
                f"--init {source} was trained with input {name} {theirs} but the encoder uses "
                f"{own[name]}; pass -e mean=[...] -e std=[...] as the file's JSON gives them")


def apply_init(method: nn.Module, path: str | Path) -> str:
    """Load ``path`` into ``method.encoder`` (for a two-tower encoder, the tower its JSON
    names, else the primary one), then restart every momentum target from the new weights
    (MoCo's key encoder, BYOL's target: they copied the encoder at construction). Returns a
    note to print."""
    state, info = read_weights(path)
    encoder = cast(nn.Module, method.encoder)
    named = ((info or {}).get("encoder") or {}).get("tower")
    module, tower = pick_tower(encoder, named if isinstance(encoder, PairEncoder) else None)
    json_norm = ((info or {}).get("input") or {}).get("normalization") or {}
    _check_norm(module, {k: json_norm[k] for k in ("mean", "std") if k in json_norm}, str(path))
    load_into(module, state, str(path))
    for target in method.modules():
        if isinstance(target, MomentumTarget):
            target.module.load_state_dict(target.online.state_dict())
    where = f" ({tower} tower)" if tower else ""
    return f"encoder{where} initialized from {path}"
