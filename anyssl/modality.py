"""What a modality plugin tells the core: its default dataset and encoder, how to collate and
move a batch, and the view recipe of each method. A plugin builds one ``Modality`` and registers
it with ``MODALITIES``; datasets, encoders and augmentations register in their own registries
with ``scope=<modality name>``.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.utils.data import Dataset, default_collate

from anyssl.registry import DATASETS, ENCODERS, METHODS, MODALITIES
from anyssl.shards.spec import is_shard_spec


class SSLDataset(Protocol):
    """A map-style dataset of ``(input, label)`` pairs (label ``-1`` when unknown).

    ``encoder_kwargs`` are the shape facts an encoder needs at construction (``in_channels``,
    ``image_size``, ``in_dim`` ...); ``num_classes`` is None for unlabeled data. A dataset may
    also carry ``suggested_epochs`` (an int): the run length used when the config sets none.
    """

    encoder_kwargs: dict[str, Any]
    num_classes: int | None

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[Any, int]: ...


def move_to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Move tensors (and anything with ``.to``) inside tuples, lists and dicts to ``device``."""
    if isinstance(batch, Tensor) or (hasattr(batch, "to") and not isinstance(batch, type)):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, dict):
        return {k: move_to_device(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device, non_blocking) for v in batch)
    return batch


#: ``recipe(method, dataset) -> view specs``: one text spec (or pipeline) per view, or a ready
#: view source (``n_views``, ``manual_seed``, called on a batch) that makes the views jointly,
#: or an ``anyssl.multicrop.MultiCrop`` (global and local views: DINO, SwAV).
Recipe = Callable[[str, SSLDataset], Any]


@dataclass
class Modality:
    """A modality plugin's description of itself.

    Attributes:
        name: registry name (``image``, ``timeseries`` ...), also the scope of its entries.
        description: one line for ``anyssl list``.
        default_dataset: dataset name used when ``--data`` is not given (must be offline).
        default_encoder: encoder name used when ``--encoder`` is not given.
        recipe: the default view specs of a method for a dataset.
        collate: batches a list of samples (default: ``torch.utils.data.default_collate``).
        to_device: moves a collated batch to the device once.
        methods: method names this modality can serve (None: every generic method).
        conv_encoder: True when ``channels_last`` helps its encoders on CUDA.
        eval_protocols: the protocols a run evaluates when neither the config nor the dataset
            names any (the ones its field reports: linear and kNN for images, the SVM for UCR
            time series); any name of ``anyssl list protocols``, a plugin's own included.
        eval_options: keywords per protocol (``{"knn": {"k": 20}}``), under the dataset's
            ``eval_options`` and the caller's.
        method_defaults: training config values per method (``{"simclr": {"epochs": 50,
            "batch_size": 64, "lr": 0.1}}``; keys of ``TrainConfig`` that default to None or a
            dict, whose dicts are merged): applied where the user's flags and config leave a
            value unset, noted, and recorded in ``config.yaml``. They win over a dataset's
            ``suggested_epochs`` and the method's own ``train_defaults``.
        method_datasets: the default dataset of particular methods (a node-level method needs
            a node-level graph); other methods use ``default_dataset``.
        method_data_args: data arguments of a method's protocol, given to every data set
            that takes them unless the user sets them (``-d``) and recorded in the run's
            config: GRACE's random 10/10/80 node split on Planetoid,
            ``{"grace": {"split_mode": "random"}}``.
        data_scale: the scale of a dataset (``"small"``, ``"large"``: images below 64 px are
            small, the CIFAR setting) when it decides a method's defaults: a method's
            ``scale_defaults`` entry for it overrides the method's train defaults and arguments.
            ``None``: by the number of samples (``anyssl.build.size_scale``).

    A dataset may refine the defaults with ``suggested_encoder`` (an encoder name),
    ``eval_protocols`` (names) and ``eval_options`` (keywords per protocol, e.g. GraphCL's
    ``{"svm": {"folds": 10}}``).
    """

    name: str
    description: str
    default_dataset: str
    default_encoder: str
    recipe: Recipe
    collate: Callable[[list[Any]], Any] = default_collate
    to_device: Callable[[Any, torch.device, bool], Any] = move_to_device
    methods: tuple[str, ...] | None = None
    conv_encoder: bool = False
    eval_protocols: tuple[str, ...] = ("linear", "knn")
    method_datasets: dict[str, str] = field(default_factory=dict)
    method_data_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_scale: Callable[[Any], str | None] | None = None
    eval_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    method_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from anyssl.modality_defaults import check_method_defaults  # it imports this module

        for method, values in self.method_defaults.items():
            check_method_defaults(self.name, method, values)

    def default_data(self, method: str) -> str:
        """The dataset a run of ``method`` uses when ``--data`` is not given."""
        return self.method_datasets.get(method, self.default_dataset)

    def accelerator_encoder(self, method: str, device: str | None) -> str | None:
        """The encoder ``method``'s recipe uses on a GPU (``extra["accelerator_encoders"]``,
        e.g. image DINO's ViT-S), when ``device`` is CUDA (``None``/``"auto"``: when one is
        available); None otherwise, leaving the CPU-sized default."""
        name = dict(self.extra.get("accelerator_encoders") or {}).get(method)
        if name is None:
            return None
        cuda = torch.cuda.is_available() if device in (None, "auto") else (
            torch.device(device).type == "cuda")
        return str(name) if cuda else None

    def evaluation(self, dataset: Any) -> tuple[tuple[str, ...], dict[str, dict[str, Any]]]:
        """The default evaluation protocols and their options for ``dataset``."""
        protocols = tuple(getattr(dataset, "eval_protocols", None) or self.eval_protocols)
        options = {p: dict(o) for p, o in self.eval_options.items()}
        for p, o in (getattr(dataset, "eval_options", None) or {}).items():
            options[p] = {**options.get(p, {}), **o}  # the dataset's win over the modality's
        return protocols, options

    def available_methods(self) -> list[str]:
        """The methods this modality serves: its ``methods`` when set, else every generic
        method and its own, less those that need paired inputs (``needs_pair``, e.g. clip)."""
        if self.methods is not None:
            return list(self.methods)
        return [m for m in METHODS.names(self.name) if not _needs_pair(m, self.name)]

    def check_method(self, method: str) -> None:
        """Raise ``ValueError`` when this modality cannot serve ``method``."""
        if self.methods is None and _needs_pair(method, self.name):
            raise ValueError(
                f"method {method!r} trains two towers on paired inputs; modality {self.name!r} "
                "has single inputs: use --modality image-text, or a paired modality of your own"
            )
        if self.methods is not None and method not in self.methods:
            raise ValueError(
                f"method {method!r} is not available for modality {self.name!r}; "
                f"choose one of: {', '.join(self.methods)}"
            )

    def _factory(self, spec: str | None) -> tuple[tuple[str, str], dict[str, Any]]:
        """The dataset factory ``--data spec`` names (``(name, scope)``) and the arguments the
        spec itself gives it (``name=`` of ``family:name``, ``root=`` of a path)."""
        spec = spec or self.default_dataset
        family, sep, name = spec.partition(":")
        if sep and name and family in DATASETS.names(self.name):
            return (family, self.name), {"name": name}
        names = DATASETS.names(self.name)
        if "shards" in names and is_shard_spec(spec):  # WebDataset tars (anyssl.shards); a
            return ("shards", self.name), {"root": spec}  # folder named "shards" too
        if spec not in names and "path" in DATASETS.names(self.name) and (
                _looks_like_path(spec)):
            return ("path", self.name), {"root": spec}
        DATASETS.get(spec, self.name)  # an unknown name raises, listing the valid ones
        return (spec, self.name), {}

    def data_defaults(self, spec: str | None, method: str) -> dict[str, Any]:
        """``method``'s ``method_data_args`` that the data set ``spec`` takes (GRACE's random
        split on Planetoid, nothing on a data set without ``split_mode``)."""
        wanted = self.method_data_args.get(method, {})
        if not wanted:
            return {}
        params = inspect.signature(DATASETS.get(*self._factory(spec)[0])).parameters
        return {k: v for k, v in wanted.items() if k in params}

    def dataset(self, spec: str | None, split: str, seed: int = 0, *, device: str | None = None,
                **kwargs: Any) -> SSLDataset:
        """Resolve ``--data``: a registered dataset name; ``family:name`` (``ucr:ArrowHead``),
        which calls the registered ``family`` dataset with ``name=...``; WebDataset shards
        (``dir/train-{000000..000127}.tar``, a folder of ``.tar``, one ``.tar``: the modality's
        ``shards`` dataset, when it has one); or a path the modality's ``path`` dataset
        understands. ``None`` is the default dataset. ``kwargs``
        (``--data-arg``) go to the dataset factory; ``device`` (the run's ``--device``) too when
        the factory takes one (image folders choose their stored size by it)."""
        key, given = self._factory(spec)
        return _build_dataset(key, device, **given, split=split, seed=seed, **kwargs)

    def encoder(self, spec: Any, dataset: SSLDataset, **kwargs: Any) -> torch.nn.Module:
        """Build an encoder by name (or pass an instance), shaped for ``dataset``; a name
        ``family:NAME`` calls the registered ``family`` encoder with ``name=NAME`` (as
        ``--data family:name`` does for datasets), e.g. ``timm:resnet10t``."""
        if not isinstance(spec, (str, type(None))):
            return spec
        name = spec or getattr(dataset, "suggested_encoder", None) or self.default_encoder
        family, sep, rest = name.partition(":")
        if sep and rest and family in ENCODERS.names(self.name):  # timm:resnet10t
            name, kwargs = family, {"name": rest, **kwargs}
        factory = ENCODERS.get(name, self.name)
        try:
            return factory(**{**_encoder_kwargs(dataset), **kwargs})
        except TypeError as err:
            raise ValueError(
                f"encoder {name!r} cannot be built with {sorted(kwargs)}: {err}"
            ) from None


def _encoder_kwargs(dataset: Any) -> Mapping[str, Any]:
    """The dataset's ``encoder_kwargs``, or a one-line error saying what to define."""
    found = getattr(dataset, "encoder_kwargs", None)
    if not isinstance(found, Mapping):
        what = "has no encoder_kwargs" if found is None else (
            f"has encoder_kwargs of type {type(found).__name__}")
        raise ValueError(f"dataset {type(dataset).__name__} {what}: the dataset class must define "
                         "encoder_kwargs, a dict of what the encoder needs (e.g. "
                         "{'in_channels': 1}; {} when it needs nothing)")
    return found


def _needs_pair(method: str, scope: str) -> bool:
    """True for a method whose class says it needs a two-tower encoder (``needs_pair``)."""
    return bool(getattr(METHODS.get(method, scope), "needs_pair", False))


def _build_dataset(key: tuple[str, str], device: str | None = None, **kwargs: Any) -> SSLDataset:
    """Call the dataset factory ``key = (name, scope)`` (with ``device`` when it takes one); a
    keyword it does not take becomes a one-line ``ValueError``."""
    name, scope = key
    factory = DATASETS.get(name, scope)
    params = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if "device" in kwargs:
        raise ValueError("device is the run's --device, not a data argument; drop -d device=")
    if device is not None and "device" in params:
        kwargs["device"] = device
    unknown = sorted(k for k in kwargs if k not in params and not takes_any)
    if unknown:
        valid = [k for k in params if k not in ("split", "seed", "self", "device")]
        raise ValueError(f"dataset {name!r} has no argument {unknown[0]!r} (--data-arg); "
                         f"valid: {', '.join(valid) or '(none)'}")
    return factory(**kwargs)


def _looks_like_path(spec: str) -> bool:
    return os.path.exists(spec) or any(c in spec for c in "/\\.~")


def get_modality(name: str | Modality) -> Modality:
    """The registered modality named ``name`` (or ``name`` itself when already a Modality)."""
    return MODALITIES.build(name) if isinstance(name, str) else name


def register_modality(modality: Modality, override: bool = False) -> Modality:
    """Register a modality object (the registry stores a factory returning it, and the module
    that registered it: a checkpoint records the package that provides it)."""
    MODALITIES.add(modality.name, lambda: modality, description=modality.description,
                   override=override)
    return modality


__all__ = ["Modality", "SSLDataset", "Dataset", "get_modality", "move_to_device",
           "register_modality"]
