"""One registry type for every pluggable kind: modalities, methods, encoders, augmentations,
objectives and datasets.

A name resolves to a factory (a class or function); ``build`` calls it, or passes an instance
straight through, so every pluggable argument takes a name or an object (as PyG's resolvers and
timm's ``create_model`` do). Entries may be *scoped* to a modality ("image", "graph", ...):
lookups in a scope see that scope's entries and the unscoped ones.

Third-party packages plug in through the entry-point group ``anyssl.plugins``; each entry point
names a module (imported) or a callable (called once). They load lazily (see
``anyssl.registry_plugins``): a lookup in one modality loads that modality's plugin, a miss or a
listing loads all of them. ``anyssl.registry_cache`` keeps a listing of every entry for the CLI.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from anyssl import registry_plugins as plugins
from anyssl.registry_plugins import (
    ENTRY_POINT_GROUP,
    broken_plugins,
    import_plugin,
    load_plugins,
    unavailable_plugins,
)

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])  # a registered class or function keeps its own type

__all__ = ["AUGMENTATIONS", "DATASETS", "ENCODERS", "ENTRY_POINT_GROUP", "EVAL_PROTOCOLS",
           "METHODS", "MODALITIES", "OBJECTIVES", "DuplicateNameError", "Entry", "Registry",
           "UnknownNameError", "broken_plugins", "import_plugin", "load_plugins",
           "unavailable_plugins", "unknown_message"]


class UnknownNameError(ValueError):
    """A name that no registry entry has; the message lists the valid names."""


class DuplicateNameError(ValueError):
    """A name registered twice without ``override=True``."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered factory with its one-line description and optional modality scope;
    ``module`` is the module that registered it, ``plugin`` the entry point being loaded then."""

    name: str
    factory: Callable[..., T]
    description: str
    scope: str | None
    module: str = ""
    plugin: str | None = None


def _registering_module() -> str:
    """The module whose code registers: the first frame outside this module and outside
    anyssl's ``register*`` helpers (``register_modality``, ``register_protocol`` ...)."""
    frame = sys._getframe(1)
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        helper = module.startswith("anyssl.") and frame.f_code.co_name.startswith("register")
        if module != __name__ and not helper:
            return module
        frame = frame.f_back  # type: ignore[assignment]
    return ""


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
        module = _registering_module()
        if module != "anyssl" and not module.startswith("anyssl."):
            plugins.load_core()  # a plugin's part then clashes with (or overrides) the core's
        if key in self._entries and not override:
            where = f" for {scope}" if scope else ""
            old = self._entries[key].module or "?"
            again = ("registers it a second time (imported twice?)" if old == module
                     else f"registers it again in module {module or '?'}")
            raise DuplicateNameError(
                f"{self.kind} {name!r}{where} is already registered by module {old}; {again}: "
                "rename one, or pass override=True to replace it"
            )
        desc = description or _first_line(getattr(factory, "__doc__", None))
        plugin = plugins.loading[-1] if plugins.loading else None
        self._entries[key] = Entry(name, factory, desc, scope, module, plugin)

    # -- lookup -------------------------------------------------------------------------------
    def _find(self, name: str, scope: str | None) -> Entry[T] | None:
        if scope is not None and (scope, name) in self._entries:
            return self._entries[(scope, name)]
        return self._entries.get((None, name))

    def entry(self, name: str, scope: str | None = None) -> Entry[T]:
        """The entry for ``name``; loads plugins on a miss, then raises ``UnknownNameError``."""
        found = self._find(name, scope)
        if found is None:
            found = self._load_and_find(name, scope)
        if found is None and self.kind == "modality" and name in broken_plugins:
            raise UnknownNameError(plugins.unavailable_message(
                self.kind, name, broken_plugins[name], broken=True))
        if found is None and self.kind == "modality" and name in unavailable_plugins:
            raise UnknownNameError(plugins.unavailable_message(
                self.kind, name, unavailable_plugins[name]))
        if found is None:
            raise UnknownNameError(self._unknown_message(name, scope))
        return found

    def _load_and_find(self, name: str, scope: str | None) -> Entry[T] | None:
        """After a miss: load the core, then the modality's own plugin (a modality lookup, or a
        scoped one), then every plugin, until ``name`` is found."""
        plugins.load_core()
        found = self._find(name, scope)
        if found is None and (self.kind == "modality" or scope is not None):
            load_plugins(name if self.kind == "modality" else scope)
            found = self._find(name, scope)
        if found is None:
            load_plugins()
            found = self._find(name, scope)
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
        if not isinstance(name, str):
            return False
        if self._find(name, None) is None:
            plugins.load_core()
        return self._find(name, None) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _unknown_message(self, name: str, scope: str | None) -> str:
        return unknown_message(self.kind, name, scope, [e.name for e in self.entries(scope)])


def unknown_message(kind: str, name: str, scope: str | None, valid: list[str]) -> str:
    """``unknown KIND 'NAME' (did you mean ...?); valid: ...`` for a name not in ``valid``."""
    valid = sorted(set(valid))
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    where = f" for modality {scope!r}" if scope else ""
    return f"unknown {kind} {name!r}{where}{hint}; valid: {', '.join(valid) or '(none)'}"


MODALITIES: Registry[Any] = Registry("modality")
METHODS: Registry[Any] = Registry("method")
ENCODERS: Registry[Any] = Registry("encoder")
AUGMENTATIONS: Registry[Any] = Registry("augmentation")
OBJECTIVES: Registry[Any] = Registry("objective")
DATASETS: Registry[Any] = Registry("dataset")
#: frozen-feature evaluation protocols added by plugins (the built-in ones are in
#: ``anyssl.eval.report``); register with ``anyssl.eval.report.register_protocol``
EVAL_PROTOCOLS: Registry[Any] = Registry("evaluation protocol")
