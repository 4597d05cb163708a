"""``anyssl list``: what is registered, one line each.

Read from the registry listing (``anyssl.registry_cache``): the cached one when the install has
not changed since it was written, so that listing imports no plugin and no torch.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from anyssl.cli.errors import cli_errors

if TYPE_CHECKING:
    from anyssl.registry_cache import Snapshot


class Kind(str, Enum):
    """The registries that ``anyssl list`` shows."""

    modalities = "modalities"
    methods = "methods"
    encoders = "encoders"
    augmentations = "augmentations"
    datasets = "datasets"
    objectives = "objectives"
    protocols = "protocols"
    recipes = "recipes"  # training recipes (anyssl.train.recipes), not --views recipe:NAME


#: Each listed kind's registry kind (``Registry.kind``).
REGISTRY_KINDS: dict[Kind, str] = {
    Kind.modalities: "modality",
    Kind.methods: "method",
    Kind.encoders: "encoder",
    Kind.augmentations: "augmentation",
    Kind.datasets: "dataset",
    Kind.objectives: "objective",
    Kind.protocols: "evaluation protocol",
}

PluginOption = Annotated[list[str] | None, typer.Option(
    help="A module to import first (registers custom parts; repeatable): a module name, found "
         "in the current folder first, then on PYTHONPATH, or the path of a .py file.")]


def import_plugins(plugin: list[str] | None) -> None:
    """``--plugin`` modules, imported before anything is looked up."""
    from anyssl.registry import import_plugin

    for module in plugin or []:
        import_plugin(module)


def listing_lines(kind: Kind, modality: str | None = None,
                  snap: Snapshot | None = None) -> list[str]:
    """``name  [modality]  description`` lines for one registry, aligned."""
    from anyssl.registry_cache import snapshot

    snap = snap or snapshot()
    if kind is Kind.recipes:  # training recipes: name, description, source (cached lines)
        if snap.recipes:
            return snap.recipes.get(modality or "", [])
        from anyssl.train.recipes import recipe_lines

        return recipe_lines(modality)
    entries: list[Any] = snap.entries.get(REGISTRY_KINDS[kind], [])
    if kind is Kind.protocols and not entries:  # a listing that does not hold them: live
        from anyssl.eval import EvalProtocol  # noqa: F401  (registers the built-in ones)
        from anyssl.registry import EVAL_PROTOCOLS

        entries = EVAL_PROTOCOLS.entries(all_scopes=True)
    if modality is not None:
        entries = [e for e in entries if e.scope in (None, modality)]
        if kind is Kind.methods:  # generic methods the modality cannot serve (clip) drop out
            served = set(snap.methods_of.get(modality, []))
            entries = [e for e in entries if e.name in served]
    width = max((len(e.name) for e in entries), default=0)
    scope_w = max((len(e.scope or "any") for e in entries), default=0)
    return [f"  {e.name:<{width}}  {e.scope or 'any':<{scope_w}}  {e.description}" for e in entries]


def installed_names(kind: str) -> str:
    """``a, b, c`` (the unscoped names), then ``; scope: d, e`` per modality, for help texts."""
    from anyssl.registry_cache import snapshot

    entries = snapshot().entries.get(kind, [])
    scopes = sorted({e.scope for e in entries if e.scope is not None})
    parts = [", ".join(sorted({e.name for e in entries if e.scope is None}))]
    parts += [f"{s}: " + ", ".join(sorted({e.name for e in entries if e.scope == s}))
              for s in scopes]
    return "; ".join(p for p in parts if p)


@cli_errors
def list_command(
    kind: Annotated[Kind | None, typer.Argument(help="What to list (default: everything).")] = None,
    modality: Annotated[
        str | None, typer.Option(help="Only entries usable with this modality.")
    ] = None,
    plugin: PluginOption = None,
) -> None:
    """List registered modalities, methods, encoders, augmentations, datasets, objectives,
    evaluation protocols or training recipes (anyssl train --config recipe:MODALITY/NAME)."""
    from anyssl.registry_cache import snapshot

    import_plugins(plugin)
    snap = snapshot()
    if modality is not None:
        snap.check_modality(modality)  # a bad name gets the list of valid ones
    kinds = [kind] if kind is not None else list(Kind)
    for k in kinds:
        if len(kinds) > 1:
            typer.echo(f"{k.value}:")
        for line in listing_lines(k, modality, snap):
            typer.echo(line)
