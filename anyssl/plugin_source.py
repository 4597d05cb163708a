"""Which installed package provides a modality, so that a checkpoint can say what to install.

A checkpoint records ``modality_source``: the module that registered its modality (the
registry entry's ``module``) and the distribution that ships it, found through the entry point of
group ``anyssl.plugins`` that names the module (or a package above it) or, failing that, through
``importlib.metadata.packages_distributions``. On a machine without that package, loading the
checkpoint says "this checkpoint's modality 'audio' comes from package anyssl-audio 0.2 (not
installed): pip install anyssl-audio" instead of an unknown-name error.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from anyssl.registry import ENTRY_POINT_GROUP, MODALITIES, import_plugin

__all__ = ["distribution_of", "missing_plugin_message", "modality_source", "require_modality"]


@functools.lru_cache(maxsize=64)
def distribution_of(module: str) -> tuple[str, str] | None:
    """``(distribution name, version)`` of the installed package that provides ``module``, or
    None (a module on ``sys.path`` that no distribution ships, a test's)."""
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        target = ep.value.split(":")[0].strip()
        if (module == target or module.startswith(target + ".")) and ep.dist is not None:
            return ep.dist.name, ep.dist.version
    names = metadata.packages_distributions().get(module.split(".")[0]) or []
    for name in names:
        try:
            return name, metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def modality_source(name: str) -> dict[str, str | None] | None:
    """``{"module", "package", "version"}`` of the registered modality ``name`` (None when no
    modality of that name is registered; plugins are not loaded to find it)."""
    if name not in MODALITIES:  # a run's modality is registered; no plugin loading here
        return None
    entry = MODALITIES.entry(name)
    module = entry.module or getattr(getattr(entry.factory(), "recipe", None), "__module__", None)
    if not module:
        return None
    dist = distribution_of(str(module))
    return {"module": str(module), "package": dist[0] if dist else None,
            "version": dist[1] if dist else None}


def missing_plugin_message(name: str, source: Any) -> str | None:
    """The one-line "comes from package X (not installed): pip install X" for a checkpoint's
    modality ``name``, when ``source`` (its ``modality_source``) names a package that is not
    installed; None otherwise (anyssl's own modalities say which extra to install)."""
    if not isinstance(source, Mapping):
        return None
    package, version = source.get("package"), source.get("version")
    if not isinstance(package, str) or not package or package == "anyssl":
        return None
    try:
        metadata.version(package)
    except metadata.PackageNotFoundError:
        ver = f" {version}" if isinstance(version, str) and version else ""
        return (f"this checkpoint's modality {name!r} comes from package {package}{ver} (not "
                f"installed): pip install {package}")
    return None


def require_modality(state: Mapping[str, Any], path: Any) -> None:
    """Make sure the modality of a loaded checkpoint ``state`` is registered (importing the
    run's ``plugins`` modules first); when it is not and the package it came from is not
    installed, raise the ``missing_plugin_message``; else the registry's own error."""
    name = state.get("modality")
    if not isinstance(name, str):
        return
    config = state.get("config")
    plugins = config.get("plugins") if isinstance(config, Mapping) else None
    try:
        for module in plugins if isinstance(plugins, list) else []:
            import_plugin(str(module))
        MODALITIES.entry(name)
    except ValueError:
        message = missing_plugin_message(name, state.get("modality_source"))
        if message is None:
            raise
        raise ValueError(f"{message} (checkpoint {path})") from None
