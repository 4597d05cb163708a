"""The ``anyssl`` command: one Typer app, one module per command group, each imported only when
its command runs (``anyssl --help`` imports none of them, nor torch).

A new command is one line in ``COMMANDS``: its name, ``module:attribute`` (a command function
or a ``typer.Typer`` group) and the one-line help ``anyssl --help`` shows.
"""

from __future__ import annotations

import difflib
import importlib
import os
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

#: name -> (``module:attribute``, one-line help), in the order ``anyssl --help`` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("anyssl.cli.train:train_command",
              "Pre-train a method on a modality's data, then evaluate it."),
    "eval": ("anyssl.cli.evaluate:app",
             "Evaluate a checkpoint's encoder (always next to its random init)."),
    "embed": ("anyssl.cli.embed:embed_command",
              "Write a dataset's features under a trained encoder to a .npy file."),
    "export": ("anyssl.cli.export:export_command",
               "Export a run's encoder: state_dict, safetensors, TorchScript or ONNX, with a "
               "JSON."),
    "shards": ("anyssl.cli.shards:shards_command",
               "Write a dataset as WebDataset shards (tar) with a manifest; re-running resumes."),
    "list": ("anyssl.cli.listing:list_command",
             "List registered modalities, methods, encoders, augmentations, datasets, objectives."),
    "report": ("anyssl.cli.report:report_command",
               "Write a self-contained HTML report of one run, or compare several."),
}
HELP = "Contrastive self-supervised learning on any modality."
DEBUG_HELP = ("Show the full traceback of any error (also ANYSSL_DEBUG=1); by default only "
              "errors raised outside anyssl's own checks show one.")


def _set_debug(value: bool) -> bool:
    if value:  # an environment variable: processes started by --devices inherit it
        os.environ["ANYSSL_DEBUG"] = "1"
    return value


def _typer_command(name: str, fn: Any, **kwargs: Any) -> Any:
    """The click command Typer builds for the function ``fn``."""
    single = typer.Typer(add_completion=False)
    single.command(name, **kwargs)(fn)
    return typer.main.get_command(single)


def _debug_option() -> Any:
    """A ``--debug`` flag for every command (``anyssl train ... --debug``)."""

    def flag(debug: Annotated[bool, typer.Option(
            "--debug", help=DEBUG_HELP, callback=_set_debug, expose_value=False,
            is_eager=True)] = False) -> None:
        """Unused."""

    return _typer_command("debug", flag).params[0]


class LazyGroup(TyperGroup):
    """A group whose commands (``COMMANDS``) are imported when used; ``--help`` lists them from
    the table, and its text names the installed modalities and methods."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(n for n in self.commands if n not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return self.commands.get(cmd_name)
        if self._listing:  # the root --help: the table's line, nothing imported
            return _typer_command(cmd_name, lambda: None, help=COMMANDS[cmd_name][1])
        self.commands[cmd_name] = load_command(cmd_name)
        return self.commands[cmd_name]

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except Exception as err:  # click's UsageError: suggest a command not yet imported
            message = getattr(err, "message", None)
            close = difflib.get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if isinstance(message, str) and close and "Did you mean" not in message:
                err.message = f"{message.rstrip('.')}. Did you mean {close[0]!r}?"  # type: ignore[attr-defined]
            raise

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.help = f"{HELP}\n\n{registry_help()}"
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def load_command(name: str) -> Any:
    """Import command ``name``'s module and build its click command, with ``--debug`` and the
    installed modalities and methods in its ``--help``."""
    module, attr = COMMANDS[name][0].split(":")
    obj = getattr(importlib.import_module(module), attr)
    cmd = typer.main.get_command(obj) if isinstance(obj, typer.Typer) else _typer_command(name, obj)
    cmd.name = name
    cmd.params = [p for p in cmd.params  # a sub-app's own completion flags: not per group
                  if p.name not in ("install_completion", "show_completion")]
    for sub in [cmd, *getattr(cmd, "commands", {}).values()]:
        if not any(p.name == "debug" for p in sub.params):
            sub.params.append(_debug_option())
        _with_registry_help(sub)
    return cmd


def _with_registry_help(cmd: Any) -> None:
    """Append the installed names to ``--modality``/``--method`` help when help is shown."""
    targets = [p for p in cmd.params if p.name in ("modality", "method") and p.help]
    if not targets:
        return
    show = cmd.format_help

    def format_help(ctx: typer.Context, formatter: Any) -> None:
        from anyssl.cli.listing import installed_names

        for param in targets:
            names = installed_names(param.name)
            if names and names not in param.help:
                param.help = f"{param.help} Installed: {names}."
        show(ctx, formatter)

    cmd.format_help = format_help


def registry_help() -> str:
    """Paragraphs naming the installed modalities and methods (from the listing cache)."""
    from anyssl.cli.listing import installed_names

    try:
        modalities, methods = installed_names("modality"), installed_names("method")
    except Exception:  # help must work whatever a plugin does
        return "anyssl list shows the modalities and methods."
    return (f"Modalities: {modalities}.\n\nMethods: {methods}.\n\n"
            "anyssl list shows encoders, augmentations, datasets and objectives too; "
            "anyssl COMMAND --help shows a command's options.")


def _version(value: bool) -> None:
    if value:
        import anyssl

        typer.echo(f"anyssl {anyssl.__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="anyssl",
    cls=LazyGroup,
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    version: Annotated[bool, typer.Option(
        "--version", help="Print anyssl's version and exit.", callback=_version,
        is_eager=True)] = False,
    debug: Annotated[bool, typer.Option(
        "--debug", help=DEBUG_HELP, callback=_set_debug)] = False,
) -> None:
    """Contrastive self-supervised learning on any modality."""


def main() -> None:
    """Console-script entry point (also ``python -m anyssl``)."""
    app(prog_name="anyssl")
