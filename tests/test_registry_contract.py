"""Contract tests over the registries: every built-in modality, and every encoder, dataset,
augmentation and method it serves, gets these checks for free when it registers."""

from __future__ import annotations

import importlib.util
import inspect
from importlib.metadata import entry_points
from typing import Any

import pytest
import torch

from anyssl.build import build_views
from anyssl.modality import get_modality
from anyssl.registry import (
    AUGMENTATIONS,
    DATASETS,
    ENCODERS,
    METHODS,
    MODALITIES,
    OBJECTIVES,
    Registry,
)

BUILTIN = sorted(ep.name for ep in entry_points(group="anyssl.plugins"))
ALL_REGISTRIES = [MODALITIES, METHODS, ENCODERS, AUGMENTATIONS, OBJECTIVES, DATASETS]


def small_batch(modality: str, n: int = 8, method: str | None = None) -> tuple[Any, Any]:
    """A collated batch of the default data (of ``method``, when it has its own default) and
    the dataset; a node-level dataset holds one graph, so ``n`` is capped at its length."""
    mod = get_modality(modality)
    data = mod.dataset(mod.default_data(method) if method else None, "train")
    return mod.collate([data[i] for i in range(min(n, len(data)))]), data


@pytest.mark.parametrize("registry", ALL_REGISTRIES, ids=lambda r: r.kind)
def test_every_entry_has_a_description(registry: Registry[Any]) -> None:
    for entry in registry.entries(all_scopes=True):
        assert entry.description.strip(), f"{registry.kind} {entry.name} has no description"


@pytest.mark.parametrize("modality", BUILTIN)
def test_default_dataset_yields_labelled_pairs(modality: str) -> None:
    mod = get_modality(modality)
    assert mod.name == modality
    for split in ("train", "test"):
        data = mod.dataset(None, split)
        assert len(data) > 0 and isinstance(data.encoder_kwargs, dict)
        _, label = data[0]
        labels = torch.as_tensor(label).view(-1)  # node-level data: one label per node
        assert labels.dtype == torch.long or isinstance(label, int)
        assert data.num_classes is None or bool((labels < data.num_classes).all())


#: Encoders that are a family of models need one member's name (``--encoder timm:NAME``).
FAMILY_ARGS: dict[str, dict[str, Any]] = {"timm": {"name": "resnet10t"}}


@pytest.mark.parametrize("modality", BUILTIN)
def test_every_encoder_fixes_out_dim_at_construction(modality: str) -> None:
    (x, _), data = small_batch(modality, n=4)
    for name in ENCODERS.names(modality):
        if name in FAMILY_ARGS and importlib.util.find_spec(name) is None:
            continue  # an optional extra that is not installed (its own tests say so)
        enc = get_modality(modality).encoder(name, data, **FAMILY_ARGS.get(name, {})).eval()
        assert isinstance(enc.out_dim, int) and enc.out_dim > 0, name
        with torch.no_grad():
            out = enc(x)
        assert out.shape == (4, enc.out_dim), name


@pytest.mark.parametrize("modality", BUILTIN)
def test_every_method_trains_a_step_on_default_data(modality: str) -> None:
    mod = get_modality(modality)
    for method in mod.available_methods():  # generic methods and the modality's own
        (x, y), data = small_batch(modality, method=method)
        mod.check_method(method)
        torch.manual_seed(0)
        params = inspect.signature(METHODS.get(method, modality)).parameters
        small = {k: v for k, v in {"hidden_dim": 32, "pred_hidden_dim": 32,
                                    "queue_size": 64}.items() if k in params}
        model = METHODS.build(method, modality, encoder=mod.encoder(None, data),
                              views=build_views(mod, method, data), **small)
        loss, logs = model.training_step((x, y))
        assert loss.ndim == 0 and torch.isfinite(loss), method
        loss.backward()
        assert all(not v.requires_grad for v in logs.values()), method
