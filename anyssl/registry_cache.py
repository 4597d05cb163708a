"""A listing of every registry entry, cached on disk so that ``anyssl list`` and ``anyssl --help``
need not import every plugin (torch, torchvision and torch_geometric cost seconds).

After a full load of the core and the ``anyssl.plugins`` entry points, ``snapshot()`` writes each
listed registry's entries (name, scope, description, registering module), the methods each
modality serves and the plugins that failed, atomically, to
``$XDG_CACHE_HOME/anyssl/registry-<install>.json`` (default ``~/.cache/anyssl``). The file is
keyed by a fingerprint of the install: the entry points and their distributions, the packages
installed on ``sys.path`` (``*.dist-info`` names: an install, upgrade or removal changes them) and
the size and mtime of every file of the plugins' and the core's source folders (an edit changes
them). A cache whose fingerprint differs is ignored and rewritten. ``ANYSSL_NO_CACHE=1`` turns it
off; a process that imported ``--plugin`` modules or registered parts itself lists live.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

from anyssl import registry_plugins as plugins
from anyssl.registry import (
    AUGMENTATIONS,
    DATASETS,
    ENCODERS,
    EVAL_PROTOCOLS,
    METHODS,
    MODALITIES,
    OBJECTIVES,
    Entry,
    Registry,
    UnknownNameError,
    unknown_message,
)

FORMAT = 2
#: The registries a listing shows, by kind.
LISTED: dict[str, Registry[Any]] = {r.kind: r for r in (
    MODALITIES, METHODS, ENCODERS, AUGMENTATIONS, DATASETS, OBJECTIVES, EVAL_PROTOCOLS)}
#: Core modules that register listed parts outside ``registry_plugins.CORE_MODULES``.
LISTED_MODULES = ("anyssl.eval",)
log = logging.getLogger("anyssl.registry")


@dataclass(frozen=True)
class Listed:
    """One registry entry as a listing shows it."""

    name: str
    scope: str | None
    description: str
    module: str


@dataclass
class Snapshot:
    """Every listed entry (per registry kind, sorted by scope then name), the methods each
    modality serves, the plugins that are unavailable (missing dependency) or broken, and the
    training recipes' listing lines (``""``: all, else per modality)."""

    entries: dict[str, list[Listed]]
    methods_of: dict[str, list[str]]
    unavailable: dict[str, str] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)
    plugin_values: dict[str, str] = field(default_factory=dict)
    recipes: dict[str, list[str]] = field(default_factory=dict)

    def names(self, kind: str, scope: str | None = None) -> list[str]:
        """Sorted names of ``kind`` visible in ``scope`` (its own and the unscoped ones)."""
        return sorted({e.name for e in self.entries.get(kind, []) if e.scope in (None, scope)})

    def check_modality(self, name: str) -> None:
        """Raise the error ``MODALITIES.get(name)`` raises when ``name`` is not a modality."""
        if name in self.names("modality"):
            return
        plugins.plugin_values.update(self.plugin_values)
        if name in self.broken:
            raise UnknownNameError(plugins.unavailable_message(
                "modality", name, self.broken[name], broken=True))
        if name in self.unavailable:
            raise UnknownNameError(plugins.unavailable_message(
                "modality", name, self.unavailable[name]))
        raise UnknownNameError(unknown_message("modality", name, None, self.names("modality")))


def snapshot() -> Snapshot:
    """The listing: from the cache when it is valid and this process registered nothing of its
    own, else from a full load of the registries (then written to the cache when it holds only
    installed parts)."""
    if cache_enabled() and not plugins.user_plugins and not _runtime_entries():
        cached = read_cache()
        if cached is not None:
            for name in sorted(cached.broken):  # the warnings a full load would print
                plugins.plugin_values.setdefault(name, cached.plugin_values.get(name, "?"))
                plugins.broken_plugins.setdefault(name, cached.broken[name])
                log.warning("%s", plugins.broken_warning(name))
            return cached
    snap = live_snapshot()
    if cache_enabled() and not plugins.user_plugins and not _runtime_entries():
        write_cache(snap)
    return snap


def live_snapshot() -> Snapshot:
    """The listing of the registries as loaded now, after loading every plugin."""
    from anyssl.modality import get_modality

    for module in LISTED_MODULES:
        importlib.import_module(module)
    plugins.load_plugins()
    entries = {kind: [_listed(e) for e in reg.entries(all_scopes=True)]
               for kind, reg in LISTED.items()}
    methods_of: dict[str, list[str]] = {}
    for e in entries["modality"]:
        try:
            methods_of[e.name] = sorted(get_modality(e.name).available_methods())
        except Exception as err:  # a plugin's modality that cannot say: list its name only
            log.debug("methods of modality %s: %s", e.name, err)
            methods_of[e.name] = []
    return Snapshot(entries, methods_of, dict(plugins.unavailable_plugins),
                    dict(plugins.broken_plugins), dict(plugins.plugin_values),
                    _recipe_lines(list(methods_of)))


def _recipe_lines(modalities: list[str]) -> dict[str, list[str]]:
    """``anyssl list recipes`` lines, for all recipes (``""``) and per modality."""
    try:
        from anyssl.train.recipes import recipe_lines
    except ImportError:  # a core without training recipes: the listing reads them live
        return {}
    return {m or "": recipe_lines(m) for m in [None, *modalities]}


def _listed(e: Entry[Any]) -> Listed:
    return Listed(e.name, e.scope, e.description, e.module)


def _installed(e: Entry[Any]) -> bool:
    """True for an entry of the core, a built-in modality or an entry point (not one that the
    running program or a ``--plugin`` module registered)."""
    return e.plugin is not None or e.module == "anyssl" or e.module.startswith("anyssl.")


def _runtime_entries() -> bool:
    """True when this process registered parts a cache cannot know of."""
    return any(not _installed(e) for reg in LISTED.values() for e in reg._entries.values())


# ---- the file -----------------------------------------------------------------------------------
def cache_enabled() -> bool:
    """False when ``ANYSSL_NO_CACHE`` is set (to anything but 0/false/no)."""
    return os.environ.get("ANYSSL_NO_CACHE", "").strip().lower() in ("", "0", "false", "no")


def cache_path() -> Path:
    """``$XDG_CACHE_HOME/anyssl/registry-<install>.json``; one file per environment."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "anyssl"
    spec = importlib.util.find_spec("anyssl")
    where = f"{sys.prefix}|{spec.origin if spec else ''}"
    return root / f"registry-{hashlib.sha256(where.encode()).hexdigest()[:16]}.json"


def read_cache() -> Snapshot | None:
    """The cached snapshot when the file exists, parses, and has this install's fingerprint."""
    try:
        data = json.loads(cache_path().read_text())
        if data.get("format") != FORMAT or data.get("fingerprint") != fingerprint():
            return None
        snap = data["snapshot"]
        entries = {kind: [Listed(**e) for e in items] for kind, items in snap["entries"].items()}
        return Snapshot(entries, snap["methods_of"], snap["unavailable"], snap["broken"],
                        snap["plugin_values"], snap["recipes"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.debug("registry cache not used: %s", err)
        return None


def write_cache(snap: Snapshot) -> None:
    """Write ``snap`` with this install's fingerprint (a temporary file renamed into place, so
    that a concurrent reader sees the old file or the new one); failures are ignored."""
    path = cache_path()
    payload = {"format": FORMAT, "fingerprint": fingerprint(), "snapshot": asdict(snap)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f)
        os.replace(tmp, path)
    except OSError as err:
        log.debug("registry cache not written: %s", err)
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(tmp)


# ---- the fingerprint ----------------------------------------------------------------------------
def fingerprint() -> str:
    """A hash of what decides the listing: Python, the entry points and their distributions,
    the installed distributions, and the plugins' and the core's source files."""
    eps = plugins.plugin_entry_points()
    parts = [sys.version, sys.prefix]
    for ep in eps:
        dist = getattr(ep, "dist", None)
        parts.append(f"{ep.name}={ep.value} {getattr(dist, 'name', '')} "
                     f"{getattr(dist, 'version', '')}")
    parts += _installed_distributions()
    parts += [f"{root} {_stamp(Path(root))}" for root in _source_roots(eps)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _installed_distributions() -> list[str]:
    """``*.dist-info`` / ``*.egg-info`` names on ``sys.path`` (not the current folder)."""
    cwd = os.getcwd()
    out: list[str] = []
    for entry in sys.path:
        if not entry or os.path.abspath(entry) == cwd or not os.path.isdir(entry):
            continue
        with contextlib.suppress(OSError):
            out += sorted(f"{entry}/{n}" for n in os.listdir(entry)
                          if n.endswith((".dist-info", ".egg-info", ".egg-link", ".pth")))
    return out


def _source_roots(eps: list[EntryPoint]) -> list[str]:
    """The folders (or single files) of the core and of every entry point's top package, found
    without importing them (anyssl's own sub-packages may map to other folders)."""
    names = {"anyssl"}
    for ep in eps:
        parts = ep.value.split(":")[0].strip().split(".")
        names.add(".".join(parts[:2]) if parts[0] == "anyssl" else parts[0])
    roots: set[str] = set()
    for name in sorted(names):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            roots.add(f"missing:{name}")
        elif spec.submodule_search_locations:
            roots.update(spec.submodule_search_locations)
        elif spec.origin:
            roots.add(spec.origin)
    return sorted(roots)


def _stamp(root: Path) -> str:
    """A hash of the path, size and mtime of every file under ``root`` (or of ``root``)."""
    h = hashlib.sha256()
    if root.is_file():
        st = root.stat()
        return f"{st.st_size}:{st.st_mtime_ns}"
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        for name in sorted(filenames):
            with contextlib.suppress(OSError):
                st = os.stat(os.path.join(dirpath, name))
                h.update(f"{dirpath}/{name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()
