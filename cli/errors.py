"""Bad input on the command line: a one-line message on stderr and exit code 2, no traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer
import yaml

F = TypeVar("F", bound=Callable[..., Any])

#: Exceptions that mean "the user asked for something that cannot be done" (exit 2).
#: (``CheckpointError``, ``ConfigError`` and the other anyssl input errors are ``ValueError``s.)
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
               IsADirectoryError, PermissionError, KeyError)


def worker_message(message: str) -> str:
    """The original message of an error raised in a DataLoader worker, which reaches the main
    process as ``Caught X in DataLoader worker process N.\nOriginal Traceback ...`` ending in
    ``module.X: message``; other messages unchanged."""
    if message.startswith("Caught ") and "\nOriginal Traceback" in message:
        last = message.rstrip().splitlines()[-1]
        return last.split(": ", 1)[1] if ": " in last else last
    return message


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` (one line) to stderr and exit with ``code``."""
    first = " ".join(worker_message(str(message)).strip().strip("'\"").split("\n")[0].split())
    typer.echo(f"error: {first}", err=True)
    raise typer.Exit(code)


def cli_errors(fn: F) -> F:
    """Turn user errors raised by a command into ``fail`` (exit 2); a training run that diverged
    (a ``RuntimeError`` such as a non-finite loss) exits 1 with its one-line message."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except USER_ERRORS as err:
            fail(str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err))
        except yaml.YAMLError as err:  # YAML parsed without anyssl's loader (a key=value flag)
            fail(f"not valid YAML: {' '.join(str(err).split())}")
        except ImportError as err:
            fail(f"{err}; install the extra that provides it, e.g. pip install 'anyssl[all]'")
        except ArithmeticError as err:
            fail(str(err), code=1)

    return wrapper  # type: ignore[return-value]
