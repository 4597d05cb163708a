"""Errors on the command line: bad input gets a one-line message on stderr and exit code 2; a
crash in code outside anyssl (a plugin, torch, a library) gets its full traceback.

Which is which is decided by where the exception was raised: its innermost traceback frame in
anyssl's own packages (``anyssl``, ``anyssl.modalities``, ``anyssl.cli``) means one of anyssl's
input checks rejected the input, so one line says why; raised anywhere else, the traceback is
what a plugin author or a bug report needs. ``anyssl --debug`` (or ``ANYSSL_DEBUG=1``) shows the
traceback always. Imports nothing heavy: it runs in every command's start-up.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer

from anyssl.registry_plugins import anyssl_extras, debug_enabled, missing_reason

F = TypeVar("F", bound=Callable[..., Any])

#: Exceptions that mean "the user asked for something that cannot be done" (exit 2) when one of
#: anyssl's checks raises them. (``CheckpointError``, ``ConfigError`` and the other anyssl input
#: errors are ``ValueError``s.)
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
               IsADirectoryError, PermissionError, KeyError)
_WORKER_FILE = re.compile(r'File "([^"]+)", line \d+')


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


def _own_roots() -> list[str]:
    """The folders of anyssl's own packages (an editable install maps them apart)."""
    roots = []
    for name in ("anyssl", "anyssl.modalities", "anyssl.cli"):
        module = sys.modules.get(name)
        for folder in getattr(module, "__path__", None) or []:
            roots.append(os.path.join(os.path.realpath(folder), ""))
    return roots


def raised_file(err: BaseException) -> str | None:
    """The source file of the innermost frame that raised ``err`` (for an error re-raised from
    a DataLoader worker, the worker's innermost frame, read from its message)."""
    text = str(err.args[0]) if err.args else ""
    if text.startswith("Caught ") and "\nOriginal Traceback" in text:
        files = _WORKER_FILE.findall(text)
        return files[-1] if files else None
    tb = err.__traceback__
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename


def is_input_check(err: BaseException) -> bool:
    """True when ``err`` was raised by anyssl's own code (an input check): one line will do.
    False under ``--debug``/``ANYSSL_DEBUG=1``, or when raised in a plugin, torch or a library."""
    if debug_enabled():
        return False
    where = raised_file(err)
    if where is None:
        return False
    where = os.path.realpath(where)
    return any(where.startswith(root) for root in _own_roots())


def _is_yaml_error(err: BaseException) -> bool:
    yaml = sys.modules.get("yaml")  # not imported: not a YAML error
    return yaml is not None and isinstance(err, yaml.YAMLError)


def missing_module_message(err: ImportError) -> str:
    """``module 'p' needs module 'x', which is not installed; pip install 'anyssl[extra]'`` when
    an extra of anyssl's own provides ``x``, else a plain instruction to install it."""
    name = (getattr(err, "name", None) or "").split(".")[0]
    extra = _extra_providing(name) if name else None
    fix = (f"pip install 'anyssl[{extra}]'" if extra
           else "install the package that provides it and retry")
    if not isinstance(err, ModuleNotFoundError) or not err.name:
        return f"{err}; {fix}"
    who = _importer(err)
    if who is None:
        return f"module {err.name!r} is not installed; {fix}"
    return f"{who} {missing_reason(err)}; {fix}"


def _importer(err: ImportError) -> str | None:
    """``module 'x'``: the innermost module whose import statement failed (not importlib's)."""
    tb, found = err.__traceback__, None
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module and not module.startswith("importlib") and not module.startswith("anyssl.cli"):
            found = module
        tb = tb.tb_next
    return f"module {found!r}" if found else None


def _extra_providing(module: str) -> str | None:
    """The anyssl extra whose requirements name ``module`` (``torch_geometric`` -> graph)."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        requires = metadata("anyssl").get_all("Requires-Dist") or []
    except PackageNotFoundError:
        return None
    key = module.lower().replace("-", "_")
    for req in requires:
        dist = re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0].lower().replace("-", "_")
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", req)
        if dist == key and extra and extra.group(1) in anyssl_extras():
            return extra.group(1)
    return None


def cli_errors(fn: F) -> F:
    """Turn errors raised by anyssl's input checks into ``fail`` (exit 2, one line); a training
    run that diverged (an ``ArithmeticError`` such as a non-finite loss) exits 1 with its one
    line; a missing module names itself and the extra that provides it. Anything raised outside
    anyssl's own code propagates with its traceback (exit 1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except Exception as err:
            handle(err)
            raise

    return wrapper  # type: ignore[return-value]


def handle(err: Exception) -> None:
    """``fail`` for an input error (see ``cli_errors``); returns for one to re-raise."""
    if _is_yaml_error(err) and not debug_enabled():  # YAML parsed by a key=value flag
        fail(f"not valid YAML: {' '.join(str(err).split())}")
    if isinstance(err, ModuleNotFoundError) and err.name and not debug_enabled():
        fail(missing_module_message(err))
    if not is_input_check(err):
        return
    if isinstance(err, ImportError):
        fail(missing_module_message(err))
    if isinstance(err, USER_ERRORS):
        fail(str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err))
    if isinstance(err, ArithmeticError):
        fail(str(err), code=1)
