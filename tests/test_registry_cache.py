"""The registry listing cache: what a full load lists, read back without importing plugins, and
ignored as soon as the install changes."""

from __future__ import annotations

import os
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from anyssl import registry_cache as cache
from anyssl import registry_plugins as plugins
from anyssl.registry import METHODS

RUNTIME_ENTRIES = cache._runtime_entries  # the real check (the fixture stubs it)


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``$XDG_CACHE_HOME``; the cache on; this process counted as registering nothing
    of its own (other tests register parts in the shared registries)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("ANYSSL_NO_CACHE", raising=False)
    monkeypatch.setattr(cache, "_runtime_entries", lambda: False)
    monkeypatch.setattr(plugins, "user_plugins", [])
    return tmp_path / "cache"


def test_the_cached_listing_is_what_a_full_load_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    live = cache.live_snapshot()
    assert not cache.cache_path().exists()
    assert cache.snapshot() == live  # computed, then written
    assert cache.cache_path().is_file()

    def no_load() -> cache.Snapshot:
        raise AssertionError("a valid cache must not load the registries")

    monkeypatch.setattr(cache, "live_snapshot", no_load)
    assert cache.snapshot() == live
    methods = {e.name for e in live.entries["method"]}
    assert {"simclr", "mocov2", "grace"} <= methods
    assert "clip" in live.methods_of["image-text"] and "clip" not in live.methods_of["image"]


def test_a_changed_install_or_source_file_invalidates_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    (site / "fakeplug").mkdir(parents=True)
    source = site / "fakeplug" / "__init__.py"
    source.write_text("X = 1\n")
    monkeypatch.setattr(sys, "path", [*sys.path, str(site)])
    ep = EntryPoint(name="fake", value="fakeplug", group=plugins.ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [ep])
    first = cache.fingerprint()
    assert cache.fingerprint() == first  # stable while nothing changes
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    edited = cache.fingerprint()
    assert edited != first  # an edit of a plugin's source
    (site / "torch_geometric-9.9.dist-info").mkdir()
    assert cache.fingerprint() != edited  # an install on sys.path


def test_a_stale_or_corrupt_file_is_ignored_and_rewritten(monkeypatch: pytest.MonkeyPatch) -> None:
    live = cache.live_snapshot()
    cache.write_cache(live)
    monkeypatch.setattr(cache, "fingerprint", lambda: "another install")
    assert cache.read_cache() is None
    assert cache.snapshot() == live  # a full load ...
    assert cache.read_cache() == live  # ... rewritten with the new fingerprint
    cache.cache_path().write_text("{not json")
    assert cache.read_cache() is None


def test_no_cache_variable_and_own_registrations_bypass_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANYSSL_NO_CACHE", "1")
    cache.snapshot()
    assert not cache.cache_path().exists()
    monkeypatch.delenv("ANYSSL_NO_CACHE")
    monkeypatch.setattr(cache, "_runtime_entries", RUNTIME_ENTRIES)
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    METHODS.add("cache_test_method", lambda: None, description="registered by this program")
    assert cache._runtime_entries()
    snap = cache.snapshot()
    assert "cache_test_method" in snap.names("method")  # listed live ...
    assert not cache.cache_path().exists()  # ... and not written
