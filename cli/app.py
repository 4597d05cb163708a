"""The ``anyssl`` command: one Typer app, one module per command group."""

from __future__ import annotations

import typer

from anyssl.cli.embed import embed_command
from anyssl.cli.evaluate import app as eval_app
from anyssl.cli.listing import list_command
from anyssl.cli.train import train_command

app = typer.Typer(
    name="anyssl",
    help="Contrastive self-supervised learning on any modality.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("train")(train_command)
app.add_typer(eval_app, name="eval")
app.command("embed")(embed_command)
app.command("list")(list_command)


def main() -> None:
    """Console-script entry point (also ``python -m anyssl``)."""
    app(prog_name="anyssl")
