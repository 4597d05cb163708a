"""Any timm model (Wightman, pytorch-image-models) as an image encoder: ``--encoder timm
-e name=NAME`` (``timm:NAME`` once the modality resolves ``family:name`` encoders).

timm is the optional extra ``anyssl[timm]``. The classifier is dropped with ``num_classes=0``
(timm's documented way to get pooled features) and ``out_dim`` is ``model.num_features``.
Pretrained weights are read only from local files, so a training job never waits on the
network: ``pretrained=true`` looks in the Hugging Face cache and torch hub's cache, where timm
itself downloads them; ``pretrained=PATH`` loads a weights file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from torch import Tensor, nn

from anyssl.modalities.image.encoders import Normalize, _check_shape_args
from anyssl.registry import ENCODERS

__all__ = ["TimmEncoder", "timm_encoder"]

INSTALL_HINT = 'timm is not installed: pip install "anyssl[timm]"'


def _import_timm() -> Any:
    try:
        import timm
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return timm


def local_weights(timm: Any, name: str) -> str:
    """The path of ``name``'s pretrained weights in the Hugging Face cache or torch hub's
    checkpoint cache (timm's two download places), or a one-line ``ValueError`` naming them."""
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        raise ValueError(f"timm has no pretrained weights for {name!r}; drop -e pretrained, or "
                         "pass -e pretrained=PATH to a weights file")
    import torch.hub
    from huggingface_hub import constants, try_to_load_from_cache

    candidates: list[str] = [cfg.file] if cfg.file else []
    if cfg.hf_hub_id:
        for filename in (cfg.hf_hub_filename, "model.safetensors", "pytorch_model.bin"):
            found = try_to_load_from_cache(cfg.hf_hub_id, filename) if filename else None
            candidates += [found] if isinstance(found, str) else []
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    if cfg.url:
        candidates.append(str(hub / os.path.basename(urlparse(cfg.url).path)))
    for path in candidates:
        if os.path.isfile(path):
            return path
    where = f"hf download {cfg.hf_hub_id}" if cfg.hf_hub_id else f"download {cfg.url}"
    raise ValueError(
        f"no local weights for timm model {name!r} (training reads no network): put them in "
        f"the Hugging Face cache {constants.HF_HUB_CACHE} ({where}) or in {hub}, or pass "
        "-e pretrained=PATH to a weights file")


class TimmEncoder(nn.Module):
    """A timm model without its classifier (``num_classes=0``), with anyssl's input
    normalization in front (the weights' mean / std when pretrained RGB weights are loaded).

    Shape:
        ``B x in_channels x H x W`` float [0, 1] or uint8 -> ``B x model.num_features``.
    """

    def __init__(self, model: nn.Module, in_channels: int, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> None:
        super().__init__()
        self.normalize = Normalize(in_channels, mean, std)
        self.model = model
        self.out_dim: int = int(model.num_features)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> Tensor:
        return self.model(self.normalize(x))  # B x out_dim


@ENCODERS.register("timm", scope="image")
def timm_encoder(name: str | None = None, in_channels: int = 3, image_size: int = 224,
                 pretrained: bool | str = False, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, **kwargs: Any) -> TimmEncoder:
    """Any timm model (-e name=NAME, e.g. resnet10t; -e pretrained=true reads local weights);
    needs the anyssl[timm] extra."""
    timm = _import_timm()
    _check_shape_args(in_channels, image_size)
    if not name:
        raise ValueError("the timm encoder needs a model name: -e name=NAME (e.g. resnet10t; "
                         "timm.list_models() lists them)")
    if not timm.is_model(name.split(".")[0]):
        raise ValueError(f"unknown timm model {name!r}; timm.list_models('{name[:4]}*') lists "
                         "close names")
    if pretrained:
        path = pretrained if isinstance(pretrained, str) else local_weights(timm, name)
        if not os.path.isfile(path):
            raise ValueError(f"timm weights file {path!r} does not exist")
        kwargs["pretrained_cfg_overlay"] = {"file": path, "source": "timm"}
    kwargs = {"in_chans": in_channels, "num_classes": 0, **kwargs}
    model = _create(timm, name, bool(pretrained), image_size, kwargs)
    if pretrained and in_channels == 3 and mean is None and std is None:
        cfg: dict[str, Any] = getattr(model, "pretrained_cfg", None) or {}
        mean, std = cfg.get("mean"), cfg.get("std")
    return TimmEncoder(model, in_channels, mean, std)


def _create(timm: Any, name: str, pretrained: bool, image_size: int,
            kwargs: dict[str, Any]) -> nn.Module:
    """``timm.create_model``; models that take ``img_size`` (ViTs, Swin ...) are built for the
    dataset's image size unless ``-e img_size=`` says otherwise, the others without it."""
    if "img_size" in kwargs:
        return timm.create_model(name, pretrained=pretrained, **kwargs)
    try:
        return timm.create_model(name, pretrained=pretrained, img_size=image_size, **kwargs)
    except TypeError as err:
        if "img_size" not in str(err):
            raise
    return timm.create_model(name, pretrained=pretrained, **kwargs)
