"""Registry: registration, build by name or instance, errors that list valid names, scopes and
entry-point plugins."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any

import pytest

from anyssl import registry as reg_mod
from anyssl.registry import DuplicateNameError, Registry, UnknownNameError


class Thing:
    """A thing for tests."""

    def __init__(self, size: int = 1) -> None:
        self.size = size


def make_registry() -> Registry[Any]:
    r: Registry[Any] = Registry("widget")
    r.register("thing")(Thing)
    r.add("other", lambda: "other", description="another one")
    return r


def test_build_by_name_passes_kwargs() -> None:
    r = make_registry()
    obj = r.build("thing", size=3)
    assert isinstance(obj, Thing) and obj.size == 3


def test_build_passes_instances_through() -> None:
    r = make_registry()
    t = Thing(5)
    assert r.build(t) is t


def test_unknown_name_lists_valid_and_closest() -> None:
    r = make_registry()
    with pytest.raises(UnknownNameError) as err:
        r.get("thingg")
    msg = str(err.value)
    assert "unknown widget 'thingg'" in msg
    assert "did you mean 'thing'" in msg
    assert "valid: other, thing" in msg


def test_duplicate_needs_override() -> None:
    r = make_registry()
    with pytest.raises(DuplicateNameError, match="override=True"):
        r.add("thing", Thing)
    r.add("thing", lambda: 42, override=True)
    assert r.build("thing") == 42


def test_descriptions_default_to_docstring_first_line() -> None:
    r = make_registry()
    descs = {e.name: e.description for e in r.entries()}
    assert descs == {"thing": "A thing for tests.", "other": "another one"}


def test_scoped_entries_shadow_unscoped_and_stay_private() -> None:
    r = make_registry()
    r.add("thing", lambda: "image-thing", scope="image")
    r.add("only_graph", lambda: "g", scope="graph")
    assert r.build("thing", scope="image") == "image-thing"
    assert isinstance(r.build("thing", scope="graph"), Thing)
    assert r.names("image") == ["other", "thing"]
    assert r.names("graph") == ["only_graph", "other", "thing"]
    with pytest.raises(UnknownNameError, match="for modality 'image'"):
        r.get("only_graph", scope="image")


def test_bad_names_rejected() -> None:
    r = make_registry()
    with pytest.raises(ValueError, match="invalid widget name"):
        r.add("has space", Thing)


def test_entry_point_plugins_load_lazily_on_miss(monkeypatch: pytest.MonkeyPatch) -> None:
    r = make_registry()
    calls: list[str] = []

    def plugin() -> None:
        calls.append("loaded")
        r.add("from_plugin", lambda: "plugged")

    ep = EntryPoint(name="p", value="x:y", group=reg_mod.ENTRY_POINT_GROUP)
    monkeypatch.setattr(EntryPoint, "load", lambda self: plugin)
    monkeypatch.setattr(reg_mod, "entry_points", lambda group: [ep])
    monkeypatch.setattr(reg_mod, "_plugins_loaded", False)
    assert r.build("thing").size == 1
    assert calls == []  # a hit does not load plugins
    assert r.build("from_plugin") == "plugged"
    assert calls == ["loaded"]
    with pytest.raises(UnknownNameError):
        r.get("still_missing")
    assert calls == ["loaded"]  # loaded once only


def test_builtin_image_modality_is_found_through_entry_points() -> None:
    from anyssl.registry import MODALITIES

    assert "image" in MODALITIES.names()


def test_import_plugin_error_is_one_line() -> None:
    with pytest.raises(ValueError, match="cannot import plugin module 'no_such_mod_xyz'"):
        reg_mod.import_plugin("no_such_mod_xyz")


def test_a_modality_whose_extra_is_missing_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from anyssl import registry

    monkeypatch.setitem(registry.unavailable_plugins, "sonar",
                        "No module named 'sonarlib'")
    with pytest.raises(registry.UnknownNameError,
                       match=r"modality 'sonar' is not installed \(No module named 'sonarlib'\); "
                             r"install its extra with pip install 'anyssl\[sonar\]' and retry"):
        registry.MODALITIES.get("sonar")
