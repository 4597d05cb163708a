"""``anyssl report RUN [RUN ...] --out report.html``: one self-contained HTML page of a run, or
of several runs compared."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from anyssl.cli.errors import cli_errors
from anyssl.cli.listing import PluginOption, import_plugins


@cli_errors
def report_command(
    runs: Annotated[list[Path], typer.Argument(
        metavar="RUN",
        help="Run folder(s) written by anyssl train --out; several are compared.")],
    out: Annotated[Path, typer.Option(help="The page to write (a new .html file).")] = Path(
        "report.html"),
    embeddings: Annotated[bool, typer.Option(
        "--embeddings/--no-embeddings",
        help="Embed the held-out split with each checkpoint for the 2-D maps and the "
             "modality's panels (--no-embeddings: curves and tables only, no checkpoint read)."),
    ] = True,
    max_points: Annotated[int, typer.Option(
        min=4, help="At most this many held-out samples (class-balanced) are embedded and "
                    "mapped.")] = 2000,
    tsne: Annotated[bool, typer.Option(
        "--tsne/--no-tsne", help="Add a t-SNE map next to PCA (up to 3000 points).")] = True,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N.")] = None,
    seed: Annotated[int, typer.Option(help="Seeds the sampled points and shown queries.")] = 0,
    plugin: PluginOption = None,
) -> None:
    """Write an HTML report: training curves (loss, lr, kNN), the evaluation next to random
    init, a PCA / t-SNE map of the held-out embeddings by label and the modality's panels
    (image nearest neighbours, series with their neighbours, image-text retrievals). Several
    runs: curves overlaid and one table. Needs matplotlib (the report extra)."""
    from anyssl.report.build import build_report

    import_plugins(plugin)
    if out.exists():  # checked first: no embedding is wasted
        raise FileExistsError(f"{out} already exists; choose another --out (nothing is "
                              "overwritten)")
    path = build_report(runs, out, embeddings=embeddings, max_points=max_points, tsne=tsne,
                        device=device, seed=seed)
    size = path.stat().st_size
    typer.echo(f"wrote {path} ({size / 1024:.0f} KiB, {len(runs)} run{'s' * (len(runs) > 1)})")
