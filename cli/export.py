"""``anyssl export``: write a run's encoder alone, with a JSON file beside it."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from anyssl.cli.errors import cli_errors
from anyssl.cli.listing import PluginOption, import_plugins


class ExportFormat(str, Enum):
    """The file formats ``anyssl export`` writes (``anyssl.export.FORMATS``)."""

    state_dict = "state_dict"
    safetensors = "safetensors"
    torchscript = "torchscript"
    onnx = "onnx"


@cli_errors
def export_command(
    checkpoint: Annotated[Path, typer.Argument(help="A run's checkpoint, e.g. RUN/last.pt.")],
    out: Annotated[Path, typer.Option(help="The file to write; FILE.json is written beside "
                                      "it. Neither may exist.")],
    format: Annotated[
        ExportFormat | None,
        typer.Option("--format", help="state_dict or safetensors (weights under the plain "
                     "model's names: torchvision's for ResNets), torchscript or onnx (the whole "
                     "encoder, normalization inside). Default: from --out's suffix (.pt, "
                     ".safetensors, .ts, .onnx)."),
    ] = None,
    tower: Annotated[
        str | None,
        typer.Option(help="Two-tower runs (CLIP): the tower to export, image or text "
                          "(default: the primary one, image)."),
    ] = None,
    plugin: PluginOption = None,
) -> None:
    """Export the encoder of a run (no heads, no method) for use outside anyssl.

    FILE.json beside it: encoder, input shape and normalization, how to load, the evaluation."""
    from anyssl.export import export_encoder

    import_plugins(plugin)
    done = export_encoder(checkpoint, out, format.value if format else None, tower=tower)
    weights = done.info.get("weights") or {}
    model = f" ({weights['layout']} layout: {weights['model']})" if weights else ""
    typer.echo(f"wrote {done.path}{model} and {done.info_path}")
