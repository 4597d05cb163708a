"""Loading what registers itself: the core's own parts, the ``anyssl.plugins`` entry points and
the user's ``--plugin`` modules.

Entry points load lazily. A lookup in one modality loads that modality's built-in plugin (the
entry point of the same name that anyssl itself ships) and every third-party plugin, not the
other built-in ones (torch_geometric costs seconds an image run does not need); a listing, or a
miss, loads all of them. A plugin whose dependency is missing (``ImportError``) is recorded in
``unavailable_plugins`` and skipped quietly; one that raises anything else is recorded in
``broken_plugins``, named in a one-line warning and skipped, so that it breaks no other command.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType

ENTRY_POINT_GROUP = "anyssl.plugins"
#: Core modules that register parts on import (methods, objectives, the identity augmentation).
CORE_MODULES = ("anyssl.methods", "anyssl.objectives", "anyssl.views")
#: Built-in plugins are the entry points whose module is under this package.
BUILTIN_PREFIX = "anyssl.modalities."
log = logging.getLogger("anyssl.registry")

#: Entry-point name -> why it is not available (a missing dependency), e.g. ``needs module
#: 'torch_geometric', which is not installed``.
unavailable_plugins: dict[str, str] = {}
#: Entry-point name -> what it raised on import (anything but ``ImportError``): skipped.
broken_plugins: dict[str, str] = {}
#: Entry-point name -> its value (``module`` or ``module:attr``), for messages.
plugin_values: dict[str, str] = {}
#: Modules imported with ``--plugin`` (``import_plugin``) in this process.
user_plugins: list[str] = []
#: The entry point being loaded now (innermost last): registrations note it as their provider.
loading: list[str] = []

_state = {"core": False, "all": False}
_attempted: set[str] = set()


def debug_enabled() -> bool:
    """``ANYSSL_DEBUG=1`` (or ``anyssl --debug``): full tracebacks instead of one-line errors."""
    return os.environ.get("ANYSSL_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def load_core() -> None:
    """Import the core modules that register parts (once; they import torch)."""
    if _state["core"]:
        return
    _state["core"] = True
    for module in CORE_MODULES:
        importlib.import_module(module)


def plugin_entry_points() -> list[EntryPoint]:
    """The ``anyssl.plugins`` entry points, each once, in a stable order."""
    seen: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        seen.setdefault(f"{ep.name}={ep.value}", ep)
    return sorted(seen.values(), key=lambda ep: (ep.name, ep.value))


def is_builtin(ep: EntryPoint) -> bool:
    """True for the modality plugins anyssl ships itself."""
    return ep.value.startswith(BUILTIN_PREFIX)


def all_loaded() -> bool:
    """True once every entry point has been tried."""
    return _state["all"]


def load_plugins(name: str | None = None) -> None:
    """Load entry points: every one (``name`` None), or the built-in plugin ``name`` plus every
    third-party one. Each is tried once per process; the core loads first, so that a plugin's
    ``override=True`` registration replaces a core part rather than preceding it."""
    if _state["all"]:
        return
    load_core()
    for ep in plugin_entry_points():
        if name is None or ep.name == name or not is_builtin(ep):
            _load_one(ep)
    if name is None:
        _state["all"] = True


def reset_plugins() -> None:
    """Forget which entry points were tried (tests; entries already registered stay)."""
    _state["all"] = False
    _attempted.clear()


def _load_one(ep: EntryPoint) -> None:
    key = f"{ep.name}={ep.value}"
    if key in _attempted:
        return
    _attempted.add(key)
    plugin_values[ep.name] = ep.value
    loading.append(ep.name)
    try:
        obj = ep.load()
        if callable(obj) and not isinstance(obj, ModuleType):
            obj()
    except ImportError as err:  # an optional extra (or the plugin's own dependency) is missing
        log.debug("anyssl plugin %s not loaded: %s", ep.name, err)
        unavailable_plugins[ep.name] = missing_reason(err)
    except Exception as err:  # a plugin's bug must not stop commands that do not need it
        broken_plugins[ep.name] = f"{type(err).__name__}: {err}".split("\n")[0]
        log.warning("%s", broken_warning(ep.name), exc_info=debug_enabled())
    finally:
        loading.pop()


def broken_warning(name: str) -> str:
    """The one-line warning for a plugin that raised on import."""
    value = plugin_values.get(name, "?")
    return (f"warning: anyssl plugin {name!r} ({value}) raised {broken_plugins[name]} on "
            "import and is skipped (ANYSSL_DEBUG=1 shows the traceback)")


def missing_reason(err: ImportError) -> str:
    """``needs module 'x', which is not installed`` for a missing module, else the message."""
    if isinstance(err, ModuleNotFoundError) and err.name:
        return f"needs module {err.name!r}, which is not installed"
    return str(err).split("\n")[0]


def anyssl_extras() -> list[str]:
    """The extras anyssl's own package metadata declares (``pip install 'anyssl[NAME]'``)."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        return list(metadata("anyssl").get_all("Provides-Extra") or [])
    except PackageNotFoundError:
        return []


def unavailable_message(kind: str, name: str, reason: str, broken: bool = False) -> str:
    """Why the plugin ``name`` gives no ``kind`` named ``name``, and what to do about it."""
    value = plugin_values.get(name)
    plugin = f"its plugin (entry point {name!r} = {value})" if value else f"plugin {name!r}"
    if broken:
        return (f"{kind} {name!r} is not available: {plugin} raised {reason} on import; fix or "
                "uninstall it (ANYSSL_DEBUG=1 shows the traceback)")
    fix = (f"pip install 'anyssl[{name}]'" if name in anyssl_extras()
           else "install it and retry")
    return f"{kind} {name!r} is not available: {plugin} {reason}; {fix}"


# ---- --plugin modules ----------------------------------------------------------------------------
def import_plugin(spec: str) -> None:
    """Import a user module that registers things (``anyssl train --plugin my_augs``): a module
    name, looked up in the current folder first and then on ``sys.path`` (as ``python -m``
    does), or the path of a ``.py`` file."""
    user_plugins.append(spec)
    if spec.endswith(".py") or os.sep in spec or "/" in spec:
        _import_file(Path(spec))
        return
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        importlib.import_module(spec)
    except ModuleNotFoundError as err:
        if err.name is not None and spec != err.name and not spec.startswith(err.name + "."):
            raise ValueError(f"plugin module {spec!r} {missing_reason(err)}; install it and "
                             "retry") from err
        raise ValueError(f"cannot import plugin module {spec!r} ({err}); put it in the current "
                         "folder or on PYTHONPATH, install it, or pass the path of its .py "
                         "file") from err
    except ImportError as err:
        raise ValueError(f"cannot import plugin module {spec!r} ({err})") from err


def _import_file(path: Path) -> None:
    """Import ``path`` (a ``.py`` file) as the module named by its stem, its folder first on
    ``sys.path`` so that it can import its neighbours."""
    if path.suffix != ".py" or not path.is_file():
        raise ValueError(f"plugin file {path} does not exist or is not a .py file; pass a "
                         "module name or the path of a .py file")
    path = path.resolve()
    name = path.stem
    loaded = sys.modules.get(name)
    if loaded is not None:
        if getattr(loaded, "__file__", None) and Path(loaded.__file__ or "").resolve() == path:
            return
        raise ValueError(f"plugin file {path}: a module named {name!r} is already imported "
                         f"(from {getattr(loaded, '__file__', None) or 'built-in'}); rename "
                         "the file")
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import plugin file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
