"""``anyssl list``: what is registered, one line each."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import typer

from anyssl.cli.errors import cli_errors
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


class Kind(str, Enum):
    """The registries that ``anyssl list`` shows."""

    modalities = "modalities"
    methods = "methods"
    encoders = "encoders"
    augmentations = "augmentations"
    datasets = "datasets"
    objectives = "objectives"


REGISTRIES: dict[Kind, Registry[Any]] = {
    Kind.modalities: MODALITIES,
    Kind.methods: METHODS,
    Kind.encoders: ENCODERS,
    Kind.augmentations: AUGMENTATIONS,
    Kind.datasets: DATASETS,
    Kind.objectives: OBJECTIVES,
}


def listing_lines(kind: Kind, modality: str | None = None) -> list[str]:
    """``name  [modality]  description`` lines for one registry, aligned."""
    entries = REGISTRIES[kind].entries(all_scopes=True)
    if modality is not None:
        entries = [e for e in entries if e.scope in (None, modality)]
        if kind is Kind.methods:  # generic methods the modality cannot serve (clip) drop out
            served = set(get_modality(modality).available_methods())
            entries = [e for e in entries if e.name in served]
    width = max((len(e.name) for e in entries), default=0)
    scope_w = max((len(e.scope or "any") for e in entries), default=0)
    return [f"  {e.name:<{width}}  {e.scope or 'any':<{scope_w}}  {e.description}" for e in entries]


@cli_errors
def list_command(
    kind: Annotated[Kind | None, typer.Argument(help="What to list (default: everything).")] = None,
    modality: Annotated[
        str | None, typer.Option(help="Only entries usable with this modality.")
    ] = None,
) -> None:
    """List registered modalities, methods, encoders, augmentations, datasets or objectives."""
    if modality is not None:
        MODALITIES.get(modality)  # a bad name gets the list of valid ones
    kinds = [kind] if kind is not None else list(Kind)
    for k in kinds:
        if len(kinds) > 1:
            typer.echo(f"{k.value}:")
        for line in listing_lines(k, modality):
            typer.echo(line)
