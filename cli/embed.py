"""``anyssl embed CHECKPOINT --data PATH --out embeddings.npy``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from anyssl.cli.errors import cli_errors
from anyssl.cli.listing import PluginOption, import_plugins


@cli_errors
def embed_command(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by anyssl train.")],
    out: Annotated[Path, typer.Option(help="Where to write the N x D features (.npy).")],
    data: Annotated[str | None, typer.Option(help="Data to embed (default: the run's).")] = None,
    data_arg: Annotated[
        list[str] | None,
        typer.Option("--data-arg", "-d", help="Dataset argument key=value for --data (adds to "
                     "or overrides the run's); repeatable."),
    ] = None,
    split: Annotated[str, typer.Option(help="train, test or all.")] = "all",
    device: Annotated[str | None, typer.Option(
        help="auto (CUDA when available), cpu, cuda, cuda:N.", show_default="auto")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Batch size.")] = 256,
    plugin: PluginOption = None,
) -> None:
    """Write a dataset's features under a trained encoder to a .npy file (labels beside it)."""
    import numpy as np

    from anyssl.api import embed_checkpoint

    import_plugins(plugin)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    if out.suffix != ".npy":
        raise ValueError(f"--out must end in .npy, got {out}")
    if out.exists():
        raise ValueError(f"{out} already exists; choose another --out (nothing is overwritten)")
    from anyssl.cli.train import parse_key_values

    feats, labels = embed_checkpoint(
        checkpoint, data, split=split, device=device, batch_size=batch_size,
        data_args=parse_key_values(data_arg),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, feats)
    labels_path = out.with_name(out.stem + ".labels.npy")
    np.save(labels_path, labels)
    typer.echo(
        f"wrote {feats.shape[0]} x {feats.shape[1]} features to {out} (labels: {labels_path})"
    )
