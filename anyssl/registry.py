"""One registry type for every pluggable kind: modalities, methods, encoders, augmentations,
objectives and datasets.

A name resolves to a factory (a class or function); ``build`` calls it, or passes an instance
straight through, so every pluggable argument takes a name or an object (as PyG's resolvers and
timm's ``create_model`` do). Entries may be *scoped* to a modality ("image", "graph", ...):
lookups in a scope see that scope's entries and the unscoped ones.

Third-party packages plug in through the entry-point group ``anyssl.plugins``; each entry point
names a module (imported) or a callable (called once). They load lazily, on the first lookup
that misses, or when a listing needs every name.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])  # a registered class or function keeps its own type
ENTRY_POINT_GROUP = "anyssl.plugins"
log = logging.getLogger(__name__)


class UnknownNameError(ValueError):
    """A name that no registry entry has; the message lists the valid names."""


class DuplicateNameError(ValueError):
    """A name registered twice without ``override=True``."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered factory with its one-line description and optional modality scope."""

    name: str
    factory: Callable[..., T]
    description: str
    scope: str | None


_plugins_loaded = False
#: Plugins (by entry-point name, e.g. ``image-text``) whose import failed: name -> the error.
unavailable_plugins: dict[str, str] = {}


def load_plugins(force: bool = False) -> None:
    """Import every ``anyssl.plugins`` entry point once (built-in modalities register this way)."""
    global _plugins_loaded
    if _plugins_loaded and not force:
        return
    _plugins_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except ImportError as err:  # an optional extra that is not installed
            log.debug("anyssl plugin %s not loaded: %s", ep.name, err)
            unavailable_plugins[ep.name] = str(err)
            continue
        if callable(obj):
            obj()


def import_plugin(module: str) -> None:
    """Import a user module that registers things (``anyssl train --plugin my_module``)."""
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise ValueError(
            f"cannot import plugin module {module!r} ({err}); put it on PYTHONPATH or install it"
        ) from err


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n", 1)[0].strip()


class Registry(Generic[T]):
    """A named collection of factories of one kind (``kind`` is used in error messages).

    Example::

        METHODS = Registry("method")

        @METHODS.register("simclr")
        class SimCLR: ...

        METHODS.build("simclr", encoder=enc)   # or METHODS.build(SimCLR(encoder=enc))
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[tuple[str | None, str], Entry[T]] = {}

    # -- registration -------------------------------------------------------------------------
    def register(
        self,
        name: str | None = None,
        *,
        scope: str | None = None,
        description: str | None = None,
        override: bool = False,
    ) -> Callable[[F], F]:
        """Decorator: register a class or factory under ``name`` (default: its lower-cased name)."""

        def deco(factory: F) -> F:
            key = name or getattr(factory, "__name__", "").lower()
            self.add(key, factory, scope=scope, description=description, override=override)
            return factory

        return deco

    def add(
        self,
        name: str,
        factory: Callable[..., T],
        *,
        scope: str | None = None,
        description: str | None = None,
        override: bool = False,
    ) -> None:
        """Register ``factory`` under ``name``; a second registration needs ``override=True``."""
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"invalid {self.kind} name {name!r}: use letters, digits, '_', '-'")
        key = (scope, name)
        if key in self._entries and not override:
            where = f" for {scope}" if scope else ""
            raise DuplicateNameError(
                f"{self.kind} {name!r}{where} is already registered; "
                "pass override=True to replace it"
            )
        desc = description or _first_line(getattr(factory, "__doc__", None))
        self._entries[key] = Entry(name, factory, desc, scope)

    # -- lookup -------------------------------------------------------------------------------
    def _find(self, name: str, scope: str | None) -> Entry[T] | None:
        if scope is not None and (scope, name) in self._entries:
            return self._entries[(scope, name)]
        return self._entries.get((None, name))

    def entry(self, name: str, scope: str | None = None) -> Entry[T]:
        """The entry for ``name``; loads plugins on a miss, then raises ``UnknownNameError``."""
        found = self._find(name, scope)
        if found is None:
            load_plugins()
            found = self._find(name, scope)
        if found is None and name in unavailable_plugins and self.kind == "modality":
            raise UnknownNameError(
                f"modality {name!r} is not installed ({unavailable_plugins[name]}); install its "
                f"extra with pip install 'anyssl[{name}]' and retry")
        if found is None:
            raise UnknownNameError(self._unknown_message(name, scope))
        return found

    def get(self, name: str, scope: str | None = None) -> Callable[..., T]:
        """The factory registered under ``name``."""
        return self.entry(name, scope).factory

    def build(self, spec: str | T, scope: str | None = None, **kwargs: Any) -> T:
        """Build from a name (calling its factory with ``kwargs``) or return an instance as is."""
        if isinstance(spec, str):
            return self.get(spec, scope)(**kwargs)
        return spec

    def names(self, scope: str | None = None, *, all_scopes: bool = False) -> list[str]:
        """Sorted names visible in ``scope`` (its own plus unscoped ones), after loading plugins."""
        load_plugins()
        return sorted({e.name for e in self.entries(scope, all_scopes=all_scopes)})

    def entries(self, scope: str | None = None, *, all_scopes: bool = False) -> list[Entry[T]]:
        """Visible entries, scoped ones first; ``all_scopes`` lists every entry."""
        load_plugins()
        if all_scopes:
            return sorted(self._entries.values(), key=lambda e: (e.scope or "", e.name))
        unscoped = {n: e for (s, n), e in self._entries.items() if s is None}
        scoped = {n: e for (s, n), e in self._entries.items() if s is not None and s == scope}
        seen = {**unscoped, **scoped}
        return sorted(seen.values(), key=lambda e: e.name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._find(name, None) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _unknown_message(self, name: str, scope: str | None) -> str:
        valid = sorted({e.name for e in self.entries(scope)})
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        where = f" for modality {scope!r}" if scope else ""
        return f"unknown {self.kind} {name!r}{where}{hint}; valid: {', '.join(valid) or '(none)'}"


MODALITIES: Registry[Any] = Registry("modality")
METHODS: Registry[Any] = Registry("method")
ENCODERS: Registry[Any] = Registry("encoder")
AUGMENTATIONS: Registry[Any] = Registry("augmentation")
OBJECTIVES: Registry[Any] = Registry("objective")
DATASETS: Registry[Any] = Registry("dataset")
#: frozen-feature evaluation protocols added by plugins (the built-in ones are in
#: ``anyssl.eval.report``); register with ``anyssl.eval.report.register_protocol``
EVAL_PROTOCOLS: Registry[Any] = Registry("evaluation protocol")
