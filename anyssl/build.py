"""Composition from names: a modality's datasets, encoder, views and a method, resolved through
the registries. The CLI and the Python API both build runs here, so a name typed on the command
line and an object passed from Python end up in the same place."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from torch import nn

from anyssl.method_defaults import (
    apply_preset,
    method_encoder_args,
    scale_preset,
)
from anyssl.modality import Modality, SSLDataset, get_modality
from anyssl.multicrop import MultiCrop, parse_counts
from anyssl.registry import METHODS
from anyssl.train.config import DEFAULT_BATCH_SIZE
from anyssl.types import ViewSource
from anyssl.views import ViewGenerator, build_pipeline

#: MoCo's queue (65,536 keys, He et al. 2020) would hold several stale keys of every image of a
#: small dataset; below this many training samples the queue is scaled to fit.
PAPER_QUEUE_SIZE = 65_536


def build_views(
    modality: Modality,
    method: str,
    dataset: SSLDataset,
    aug: str | Any | None = None,
    views: int | str | Sequence[Any] | MultiCrop | None = None,
) -> ViewSource:
    """The view generator of a run.

    ``views`` is a view count, a ``;``-separated string of specs or a list of specs/pipelines
    (one per view) or ``recipe:NAME`` (the modality's recipe for NAME, e.g. ``recipe:tstcc``),
    or ``G+L`` / ``G+LxS`` for a multi-crop recipe (dino, swav): ``G`` global and ``L`` local
    views, local size ``S`` in the modality's unit (image px, else the share kept), or a
    ``MultiCrop``; ``aug`` is one spec used for every view. Neither: the modality's recipe for
    ``method``: view specs, a ``MultiCrop``, or a ready view source that makes them jointly.
    """
    if isinstance(views, MultiCrop):
        return views.view_generator(modality.name)
    if isinstance(views, str) and views.startswith("recipe:"):
        method, views = views.partition(":")[2].strip(), None  # another method's recipe
    if isinstance(views, str) and (counts := parse_counts(views)) is not None:
        if aug is not None:
            raise ValueError("give either --aug (one spec for all views) or --views G+L")
        return _multicrop(modality, method, dataset, views).override(*counts).view_generator(
            modality.name)
    if isinstance(views, str):
        views = (
            int(views) if views.strip().isdigit() else [v for v in views.split(";") if v.strip()]
        )
    if aug is not None or (isinstance(views, Sequence) and not isinstance(views, str)):
        _check_per_view_specs(modality, method, dataset)
    if isinstance(views, Sequence) and not isinstance(views, str):
        if aug is not None:
            raise ValueError("give either --aug (one spec for all views) or per-view --views specs")
        return ViewGenerator([build_pipeline(v, modality.name) for v in views])
    n = int(views) if views is not None else None
    if n is not None and n < 2:
        raise ValueError(f"--views must be at least 2 (got {n}): contrastive methods compare views")
    if aug is not None:
        return ViewGenerator(build_pipeline(aug, modality.name), n_views=n or 2)
    recipe: Any = modality.recipe(method, dataset)
    if isinstance(recipe, MultiCrop):
        if n is not None:
            raise ValueError(f"the {method} recipe makes {recipe.n_global} global + "
                             f"{recipe.n_local} local views; give --views G+L (e.g. 2+4)")
        return recipe.view_generator(modality.name)
    if _is_view_source(recipe):  # views made jointly (TS2Vec's overlapping crops)
        if n is not None and n != recipe.n_views:
            raise ValueError(f"the {method} recipe makes {recipe.n_views} views; --views {n} "
                             "needs explicit per-view specs")
        return recipe
    specs = list(recipe)
    if n is not None and n != len(specs):
        specs = [specs[i % len(specs)] for i in range(n)]
    return ViewGenerator([build_pipeline(s, modality.name) for s in specs])


def _multicrop(modality: Modality, method: str, dataset: SSLDataset, text: str) -> MultiCrop:
    """The multi-crop recipe of ``method``, or a one-line error naming what to use instead."""
    recipe = modality.recipe(method, dataset)
    if not isinstance(recipe, MultiCrop):
        raise ValueError(
            f"--views {text}: the {modality.name} recipe of {method!r} has no local views; "
            "G+L is for the multi-crop recipes of methods such as dino and swav; give a view "
            "count or per-view specs instead")
    return recipe


def _check_per_view_specs(modality: Modality, method: str, dataset: SSLDataset) -> None:
    """Per-view specs (``--aug``, ``--views "a; b"``) do not fit a modality whose views are per
    input (one view holding each tower's input, as image-text's): say what does."""
    recipe = modality.recipe(method, dataset)
    reason = getattr(recipe, "no_specs", None)  # a recipe that says why specs do not apply
    if isinstance(reason, str):
        raise ValueError(f"{method}: {reason}")
    if _is_view_source(recipe) and recipe.n_views == 1:
        raise ValueError(
            f"{modality.name} views are made per input (one pipeline per tower), so --aug and "
            "per-view --views specs do not apply; use --views recipe:NAME (e.g. "
            "recipe:clip-text-aug) or pass anyssl.pair.KeyedViews from Python"
        )


def _is_view_source(obj: Any) -> bool:
    return isinstance(getattr(obj, "n_views", None), int) and callable(obj) and hasattr(
        obj, "manual_seed")


def fit_batch_size(
    method: str, requested: int | None, train_size: int, scope: str | None = None
) -> tuple[int, list[str]]:
    """The batch size of a run and notes to print.

    An explicit ``requested`` size is kept. Otherwise the method's ``train_defaults`` batch
    (default 256) is used, halved while it exceeds half the training set, so that a small data
    set (UCR's 50-series GunPoint) still gets at least two steps per epoch.
    """
    if requested is not None:
        return requested, []
    defaults = getattr(METHODS.get(method, scope), "train_defaults", None) or {}
    batch = int(defaults.get("batch_size", DEFAULT_BATCH_SIZE))
    fitted = batch
    while fitted > 2 and fitted > train_size // 2:
        fitted //= 2
    if fitted == batch:
        return batch, []
    return fitted, [f"batch_size {batch} lowered to {fitted} for {train_size} training samples "
                    "(set it with --batch-size)"]


def scaled_queue_size(train_size: int, batch_size: int) -> int:
    """Largest queue (a multiple of the batch) that never holds a key of the current image:
    one epoch minus one batch, capped at MoCo's 65,536."""
    steps = max(1, train_size // batch_size - 1)
    return min(PAPER_QUEUE_SIZE, steps * batch_size)


def method_kwargs(
    method: str, method_args: dict[str, Any], train_size: int, batch_size: int,
    scope: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Method constructor kwargs with small-data adjustments; returns them and notes to print."""
    factory = METHODS.get(method, scope)
    params = inspect.signature(factory).parameters
    unknown = [k for k in method_args if k not in params and not _has_var_kw(params)]
    if unknown:
        valid = [k for k in params if k not in ("encoder", "views", "self")]
        raise ValueError(
            f"method {method!r} has no argument {unknown[0]!r}; valid: {', '.join(valid)}"
        )
    kwargs, notes = dict(method_args), []
    default_q = params["queue_size"].default if "queue_size" in params else None
    if isinstance(default_q, int) and "queue_size" not in kwargs and default_q >= train_size:
        kwargs["queue_size"] = scaled_queue_size(train_size, batch_size)
        notes.append(
            f"queue_size scaled from {default_q} to {kwargs['queue_size']} for {train_size} "
            "training samples (set it with --queue-size)"
        )
    return kwargs, notes


def _has_var_kw(params: Any) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def build_method(
    method: str | nn.Module, encoder: nn.Module, views: ViewSource, scope: str | None = None,
    **kwargs: Any,
) -> nn.Module:
    """A registered method by name (generic, or the modality ``scope``'s own), or an instance
    returned as is."""
    return METHODS.build(method, scope, encoder=encoder, views=views, **kwargs)


def pretrain_set(train_set: SSLDataset) -> SSLDataset:
    """What pre-training reads: the training split's ``pretrain_set`` when it has one (e.g.
    time series cut into sections of ``max_train_length`` steps, TS2Vec's ``fit``), else the
    split itself; evaluation always reads the split."""
    pre = getattr(train_set, "pretrain_set", None)
    return train_set if pre is None else cast(SSLDataset, pre)


def _not_empty(dataset: SSLDataset, data: str, split: str) -> SSLDataset:
    """``dataset``, or a one-line ``ValueError`` when it holds no samples (a plugin's dataset
    that found nothing would otherwise fail later, inside the trainer or an evaluation)."""
    if len(dataset) == 0:
        raise ValueError(f"the {split} split of dataset {data!r} holds no samples; give more "
                         "data, or a smaller -d test_fraction when the dataset takes one")
    return dataset


@dataclass
class Parts:
    """Everything a run is made of."""

    modality: Modality
    train_set: SSLDataset
    test_set: SSLDataset | None
    method: nn.Module
    notes: list[str]
    batch_size: int
    #: the encoder's arguments: the user's over the method's ``encoder_defaults``
    encoder_args: dict[str, Any] = field(default_factory=dict)
    #: the data arguments: the user's over the modality's ``method_data_args``
    data_args: dict[str, Any] = field(default_factory=dict)


def build_parts(
    modality: str | Modality,
    method: str,
    *,
    data: str | None = None,
    data_args: dict[str, Any] | None = None,
    encoder: str | nn.Module | None = None,
    encoder_args: dict[str, Any] | None = None,
    aug: str | None = None,
    views: int | str | Sequence[Any] | MultiCrop | None = None,
    method_args: dict[str, Any] | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    need_test: bool = True,
    device: str | None = None,
) -> Parts:
    """Resolve every name of a run into objects, checking the combination up front.
    ``batch_size=None`` takes the method's default, fitted to the data (``fit_batch_size``);
    ``device`` (the run's ``--device``) goes to dataset factories that take one."""
    mod = get_modality(modality)
    METHODS.get(method, mod.name)  # an unknown name raises, listing the modality's methods
    mod.check_method(method)
    data = data or mod.default_data(method)
    kw = {**mod.data_defaults(data, method), **(data_args or {})}  # the user's -d wins
    train_set = _not_empty(mod.dataset(data, "train", seed=seed, device=device, **kw), data,
                           "train")
    test_set = _not_empty(mod.dataset(data, "test", seed=seed, device=device, **kw), data,
                          "test") if need_test else None
    encoder_args, enc_notes = method_encoder_args(mod, method, encoder, train_set, encoder_args)
    enc = mod.encoder(encoder, train_set, **encoder_args)
    if not isinstance(getattr(enc, "out_dim", None), int):
        raise ValueError(f"encoder {type(enc).__name__} has no int out_dim; set it at construction")
    view_gen = build_views(mod, method, train_set, aug, views)
    n_pretrain = len(pretrain_set(train_set))
    batch, notes = fit_batch_size(method, batch_size, n_pretrain, mod.name)
    scale, preset = scale_preset(mod, method, train_set)
    args = {**preset.get("args", {}), **(method_args or {})}  # the user's arguments win
    kwargs, more = method_kwargs(method, args, n_pretrain, batch, mod.name)
    built = build_method(method, enc, view_gen, mod.name, **kwargs)
    more += apply_preset(built, method, scale, preset)
    data_notes = [n for ds in (train_set, test_set) for n in getattr(ds, "notes", None) or []]
    return Parts(mod, train_set, test_set, built,
                 list(dict.fromkeys(data_notes)) + enc_notes + notes + more, batch, encoder_args,
                 kw)
